package docker

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

const testImage = "star-deploy-test/busybox:v1"

// busyboxContainer starts a container of the busybox test image.
func busyboxContainer(t *testing.T) string {
	t.Helper()
	busyboxImage(t)
	out, err := exec.Command("docker", "run", "-d", "--rm", "--init", "--network", "none", testImage).Output()
	if err != nil {
		t.Fatalf("docker run: %v", err)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	return id
}

// busyboxImage imports a busybox-static root file system as the test image,
// once. No image is pulled.
func busyboxImage(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		sshtest.Skip(t, "docker is not installed (apt-get install docker.io)")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		sshtest.Skip(t, "the Docker engine does not answer: "+strings.TrimSpace(string(out)))
	}
	if exec.Command("docker", "image", "inspect", testImage).Run() != nil {
		busybox, err := exec.LookPath("busybox")
		if err != nil {
			sshtest.Skip(t, "busybox is not installed (apt-get install busybox-static)")
		}
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "bin"), 0o755)
		os.MkdirAll(filepath.Join(root, "tmp"), 0o1777)
		os.Chmod(filepath.Join(root, "tmp"), 0o1777)
		os.MkdirAll(filepath.Join(root, "proc"), 0o755)
		b, err := os.ReadFile(busybox)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755)
		out, err := exec.Command(filepath.Join(root, "bin", "busybox"), "--list").Output()
		if err != nil {
			t.Fatalf("busybox --list: %v", err)
		}
		for _, applet := range strings.Fields(string(out)) {
			os.Symlink("busybox", filepath.Join(root, "bin", applet))
		}
		cmd := exec.Command("sh", "-c", fmt.Sprintf("tar -C %s -c . | docker import --change 'CMD [\"/bin/sleep\",\"3600\"]' - %s", root, testImage))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker import: %v\n%s", err, out)
		}
	}
}

func TestConformance(t *testing.T) {
	id := busyboxContainer(t)
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		c := openContainer(t, id, nil)
		t.Cleanup(func() { c.Close() })
		res, err := c.Run(t.Context(), connectors.Command{Script: "mktemp -d"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("mktemp: %v %s", err, res.Stderr)
		}
		return c, strings.TrimSpace(string(res.Stdout))
	})
}

func TestOpenErrors(t *testing.T) {
	busyboxImage(t)
	f := NewFactory()
	for _, tc := range []struct{ name, want string }{
		{"no-such-container-star-deploy", "no container and no image named"},
	} {
		target, _ := f.Parse(tc.name, nil)
		if _, err := f.Open(t.Context(), target); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("open %s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	// A stopped container (not removed on stop, unlike the --rm ones).
	out, err := exec.Command("docker", "create", "--network", "none", testImage).Output()
	if err != nil {
		t.Fatalf("docker create: %v", err)
	}
	stopped := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", stopped).Run() })
	target, _ := f.Parse(stopped, nil)
	if _, err := f.Open(t.Context(), target); err == nil || !strings.Contains(err.Error(), "is not running (start it with docker start") {
		t.Errorf("stopped container: err = %v", err)
	}
	target, _ = f.Parse("x", map[string]string{"docker_host": "unix:///nonexistent/docker.sock"})
	if _, err := f.Open(t.Context(), target); err == nil || !strings.Contains(err.Error(), "cannot reach the Docker engine") {
		t.Errorf("missing engine: err = %v", err)
	}
}

// DOCKER_HOST is honoured, and an engine that is not there is named.
func TestDockerHostFromEnvironment(t *testing.T) {
	id := busyboxContainer(t)
	t.Setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
	target, _ := NewFactory().Parse(id, nil)
	if _, err := NewFactory().Open(t.Context(), target); err != nil {
		t.Errorf("DOCKER_HOST=unix:///var/run/docker.sock: %v", err)
	}
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/star-deploy.sock")
	if _, err := NewFactory().Open(t.Context(), target); err == nil || !strings.Contains(err.Error(), "cannot reach the Docker engine") {
		t.Errorf("DOCKER_HOST to nowhere: err = %v", err)
	}
}

// A user who may not use the socket gets told how to fix it. The check
// runs this test binary again as nobody.
func TestDeniedSocket(t *testing.T) {
	if os.Getenv("STAR_DEPLOY_DENIED_SOCKET_CHILD") == "1" {
		target, _ := NewFactory().Parse("anything", nil)
		_, err := NewFactory().Open(t.Context(), target)
		if err == nil || !strings.Contains(err.Error(), "permission denied on the Docker socket") || !strings.Contains(err.Error(), "docker group") {
			t.Fatalf("err = %v", err)
		}
		return
	}
	busyboxImage(t) // the engine answers
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as nobody")
	}
	st, err := os.Stat("/var/run/docker.sock")
	if err != nil || st.Mode().Perm()&0o007 != 0 {
		t.Skip("the socket is not at /var/run/docker.sock or is open to everyone")
	}
	// nobody cannot reach the go build directory: copy the test binary out.
	dir, err := os.MkdirTemp("", "star-deploy-denied-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "docker.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestDeniedSocket$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "STAR_DEPLOY_DENIED_SOCKET_CHILD=1", "DOCKER_HOST=unix:///var/run/docker.sock", "HOME=/tmp")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

// A local file goes up as it is (its size from Stat), not spooled.
func TestPutLocalFileStreams(t *testing.T) {
	id := busyboxContainer(t)
	f := NewFactory()
	target, _ := f.Parse(id, nil)
	c, err := f.Open(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("from a file\n"), 0o644)
	fh, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	size, body, cleanup, err := sized(t.Context(), fh)
	if err != nil || size != 12 || body == nil {
		t.Fatalf("sized: %d %v", size, err)
	}
	cleanup()
	if _, isFile := body.(*os.File); isFile {
		t.Error("a local file was spooled to another file")
	}
	fh.Seek(0, 0)
	if err := c.Put(t.Context(), "/tmp/from-file", fh, 0o644); err != nil {
		t.Fatal(err)
	}
	res, _ := c.Run(t.Context(), connectors.Command{Script: "cat /tmp/from-file"})
	if string(res.Stdout) != "from a file\n" {
		t.Errorf("got %q", res.Stdout)
	}
}

// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH are read: a TLS setup whose
// certificates are missing fails naming them, before any connection.
func TestDockerTLSFromEnvironment(t *testing.T) {
	certs := filepath.Join(t.TempDir(), "no-certs-here")
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", certs)
	target, _ := NewFactory().Parse("x", nil)
	_, err := NewFactory().Open(t.Context(), target)
	if err == nil || !strings.Contains(err.Error(), certs) {
		t.Errorf("err = %v, want one naming %s", err, certs)
	}
}
