package sshtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// The pieces that tests of several packages put together around a server
// or a container: a known_hosts file, an idle container of the test image,
// an image name of the test's own, an open connector.

// KnownHostsFile writes lines (KnownHostsLine of a Server or a Container,
// one or more) to a known_hosts file in a directory of t's and returns its
// path.
func KnownHostsFile(t testing.TB, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return p
}

// IdleContainer starts a container of Image on this machine's engine,
// named prefix + "-" + random hex, with no network, whose PID 1 (sh) idles
// and ends on SIGTERM (so removing it takes no 10 s), and removes it when
// t ends. It returns the container's name. It skips t as Image does.
func IdleContainer(t testing.TB, prefix string) string {
	t.Helper()
	image := Image(t)
	name := prefix + "-" + randomHex(4)
	if out, err := exec.Command("docker", "run", "-d", "--name", name, "--network", "none", image,
		"sh", "-c", "trap 'exit 0' TERM; sleep infinity & wait").CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	return name
}

// TagImage gives Image the name repo + ":" + random hex, of t's own, so
// that the containers a test starts from it, labelled label=that name, are
// told apart from any other test's. When t ends it removes those
// containers and the name. It returns the name.
func TagImage(t testing.TB, repo, label string) string {
	t.Helper()
	base := Image(t)
	image := repo + ":" + randomHex(4)
	if out, err := exec.Command("docker", "tag", base, image).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if ids := Labelled(label, image); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		exec.Command("docker", "rmi", image).Run()
	})
	return image
}

// Labelled lists the IDs of the containers, running or not, labelled
// label=value, none when docker fails.
func Labelled(label, value string) []string {
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+label+"="+value).Output()
	return strings.Fields(string(out))
}

// Open opens the target that reg makes of name and data (Registry.Target;
// t fails when it refuses them) and closes the connector when t ends.
// The error is Open's.
func Open(t testing.TB, reg *connectors.Registry, name string, data map[string]string) (connectors.Connector, error) {
	t.Helper()
	tg, err := reg.Target(name, data)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := reg.Lookup(tg.Scheme)
	c, err := f.Open(t.Context(), tg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// RESTServer starts the REST API of examples/connectors/rest
// (dir/testserver.py, dir being that directory) on 127.0.0.1 with the API
// key key and the one resource resource, and returns its base URL. It
// stops it when t ends. It skips t (fails it under CI=true) when python3
// is not installed.
func RESTServer(t testing.TB, dir, key, resource string) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		Skip(t, "python3 is not installed")
	}
	cmd := exec.Command("python3", filepath.Join(dir, "testserver.py"), "--key", key, "--resource", resource)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("testserver.py printed %q, %v", line, err)
	}
	return url
}

// WriteFile writes content to path (mode 0644), making its directory, and
// fails t on an error.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
