package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// imageRun runs script on the test image in image mode and returns the
// host's result and the tag it asked for.
func imageRun(t *testing.T, ctx context.Context, script string, onEvent func(sdrt.Event)) (sdrt.HostResult, string) {
	t.Helper()
	busyboxImage(t)
	var b [4]byte
	rand.Read(b[:])
	tag := "star-deploy-test/deployed:" + hex.EncodeToString(b[:])
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	f := NewFactory()
	target, err := f.Parse(testImage, map[string]string{"docker_commit_tag": tag})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "deploy.star")
	os.WriteFile(file, []byte(script), 0o644)
	r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(f), OnEvent: onEvent})
	p, err := r.Compile(ctx, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Run(ctx, []*sdrt.Program{p}, []sdrt.Host{{Name: target.Name, Target: target}})
	return rep.Hosts[0], tag
}

// leftovers lists the image-mode containers of testImage still there (not
// those of other tests on the same engine: @dockerssh's image tests run at
// the same time, with images of their own).
func leftovers(t *testing.T) string {
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=star-deploy.image-mode="+testImage).Output()
	return strings.TrimSpace(string(out))
}

func TestImageModeCommits(t *testing.T) {
	res, tag := imageRun(t, t.Context(), `put("/etc/deployed", content = "by star-deploy\n")`, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if !strings.Contains(res.Output, "committed image sha256:") || !strings.Contains(res.Output, tag) {
		t.Errorf("output %q", res.Output)
	}
	out, err := exec.Command("docker", "run", "--rm", "--network", "none", tag, "cat", "/etc/deployed").CombinedOutput()
	if err != nil || string(out) != "by star-deploy\n" {
		t.Errorf("the committed image lacks the deployed file: %v %q", err, out)
	}
	// The image keeps its own command, not the keep-alive loop.
	cmd, _ := exec.Command("docker", "image", "inspect", "--format", "{{json .Config.Cmd}} {{json .Config.Entrypoint}}", tag).Output()
	if strings.Contains(string(cmd), "while") || !strings.Contains(string(cmd), "sleep") {
		t.Errorf("committed config %s", cmd)
	}
	if l := leftovers(t); l != "" {
		t.Errorf("containers left behind: %s", l)
	}
}

func TestImageModeFailureCommitsNothing(t *testing.T) {
	res, tag := imageRun(t, t.Context(), `shell("exit 3")`, nil)
	if res.Err == nil || res.Output != "" {
		t.Fatalf("err %v, output %q", res.Err, res.Output)
	}
	if exec.Command("docker", "image", "inspect", tag).Run() == nil {
		t.Error("a failed run committed an image")
	}
	if l := leftovers(t); l != "" {
		t.Errorf("containers left behind: %s", l)
	}
}

func TestImageModeCancelCleansUp(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	res, _ := imageRun(t, ctx, `shell("sleep 30")`, func(e sdrt.Event) {
		if e.Kind == builtins.KindOpStart {
			cancel()
		}
	})
	if res.Err == nil {
		t.Fatal("a cancelled run succeeded")
	}
	if l := leftovers(t); l != "" {
		t.Errorf("containers left behind: %s", l)
	}
}

func TestImageModeMissingImage(t *testing.T) {
	busyboxImage(t)
	f := NewFactory()
	target, _ := f.Parse("star-deploy-test/no-such-image:x", nil)
	_, err := f.Open(t.Context(), target)
	if err == nil || !strings.Contains(err.Error(), "no container and no image named") {
		t.Errorf("err = %v", err)
	}
}

// Two containers in one run, each in its own goroutine, one Engine client.
func TestTwoContainersShareOneClient(t *testing.T) {
	a, b := busyboxContainer(t), busyboxContainer(t)
	f := NewFactory()
	file := filepath.Join(t.TempDir(), "deploy.star")
	os.WriteFile(file, []byte(`put("/tmp/who", content = host.name)
print(shell("cat /tmp/who").stdout)`), 0o644)
	r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(f)})
	p, err := r.Compile(t.Context(), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []sdrt.Host
	for _, id := range []string{a, b} {
		target, _ := f.Parse(id, nil)
		hosts = append(hosts, sdrt.Host{Name: target.Name, Target: target})
	}
	rep := r.Run(t.Context(), []*sdrt.Program{p}, hosts)
	if rep.Failed() != 0 {
		t.Fatal(rep.Hosts)
	}
	for _, id := range []string{a, b} {
		out, _ := exec.Command("docker", "exec", id, "cat", "/tmp/who").Output()
		if string(out) != "@docker/"+id {
			t.Errorf("container %s holds %q", id[:12], out)
		}
	}
	if len(f.clients) != 1 {
		t.Errorf("%d Engine clients for two containers, want 1", len(f.clients))
	}
}

// The conformance suite in a realistic Debian container (the image of the
// SSH test fleet), and an upload that keeps an existing file's owner.
func TestConformanceDebian(t *testing.T) {
	ct := sshtest.Fleet(t, 1)[0]
	f := NewFactory()
	open := func(t *testing.T) connectors.Connector {
		target, _ := f.Parse(ct.Name, nil)
		c, err := f.Open(t.Context(), target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		c := open(t)
		res, err := c.Run(t.Context(), connectors.Command{Script: "mktemp -d"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("mktemp: %v %s", err, res.Stderr)
		}
		return c, strings.TrimSpace(string(res.Stdout))
	})
	t.Run("PutKeepsOwner", func(t *testing.T) {
		c := open(t)
		res, _ := c.Run(t.Context(), connectors.Command{Script: "echo old > /home/deploy/owned && chown deploy:deploy /home/deploy/owned"})
		if res.ExitCode != 0 {
			t.Fatalf("setup: %s", res.Stderr)
		}
		if err := c.Put(t.Context(), "/home/deploy/owned", strings.NewReader("new\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		res, _ = c.Run(t.Context(), connectors.Command{Script: "stat -c '%U:%G %a' /home/deploy/owned; cat /home/deploy/owned"})
		if got := string(res.Stdout); got != "deploy:deploy 640\nnew\n" {
			t.Errorf("after put: %q", got)
		}
	})
}

func TestImageModePlatform(t *testing.T) {
	f := NewFactory()
	if _, err := f.Parse(testImage, map[string]string{"docker_platform": "amd64"}); err == nil || !strings.Contains(err.Error(), "want os/arch") {
		t.Errorf("bad platform: err = %v", err)
	}
	busyboxImage(t)
	arch, _ := exec.Command("docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", testImage).Output()
	target, err := f.Parse(testImage, map[string]string{"docker_platform": strings.TrimSpace(string(arch))})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Open(t.Context(), target)
	if err != nil {
		t.Fatalf("platform %s: %v", arch, err)
	}
	if _, err := c.(*Conn).Finish(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if l := leftovers(t); l != "" {
		t.Errorf("containers left behind: %s", l)
	}
}
