package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// podmanLimits lower the container's rlimits below Podman's defaults
// (nofile and nproc 1048576 or more), which a machine without
// CAP_SYS_RESOURCE (a container, this CI's VM) cannot grant: runc fails
// with "error setting rlimits". They are harmless elsewhere.
var podmanLimits = []string{"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=32768:32768"}

// podmanService starts `podman system service` on a socket of its own for
// the test, with the Debian test image loaded from Docker (once: nothing
// is pulled), and returns the socket path and the image's name in Podman.
func podmanService(t *testing.T) (sock, image string) {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		sshtest.Skip(t, "podman is not installed (apt-get install podman)")
	}
	if os.Geteuid() != 0 {
		sshtest.Skip(t, "the podman tests run rootful podman, which needs root")
	}
	docker := sshtest.Image(t)
	image = "localhost/" + docker
	if exec.Command("podman", "image", "exists", image).Run() != nil {
		load := exec.Command("sh", "-c", "docker save "+docker+" | podman load -q")
		if out, err := load.CombinedOutput(); err != nil {
			t.Fatalf("docker save | podman load: %v\n%s", err, out)
		}
	}
	dir, err := os.MkdirTemp("", "sdtest-podman-") // short: a socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "podman.sock")
	// The same limits for containers the API creates (image mode).
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=32768:32768\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("podman", "system", "service", "--time=0", "unix://"+sock)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock, image
		}
		select {
		case <-done:
			t.Fatalf("podman system service exited: %s", log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if i == 400 {
			t.Fatalf("podman system service made no socket %s within 20s: %s", sock, log.String())
		}
	}
}

// podmanContainer starts a container of image with the podman CLI.
func podmanContainer(t *testing.T, image string) string {
	t.Helper()
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "sdtest-podman-" + hex.EncodeToString(rnd[:])
	args := append([]string{"run", "-d", "--name", name, "--network", "none"}, podmanLimits...)
	args = append(args, image, "sh", "-c", "trap 'exit 0' TERM; sleep infinity & wait")
	if out, err := exec.Command("podman", args...).CombinedOutput(); err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", "-t", "1", name).Run() })
	return name
}

func openPodman(t *testing.T, f *PodmanFactory, name string, data map[string]string) (connectors.Connector, error) {
	t.Helper()
	return sshtest.Open(t, connectors.NewRegistry(f), "@podman/"+name, data)
}

// TestPodmanConformance runs the connector suite in a Podman container,
// through Podman's Docker-compatible API.
func TestPodmanConformance(t *testing.T) {
	sock, image := podmanService(t)
	name := podmanContainer(t, image)
	f := NewPodmanFactory(Options{Warn: func(string) {}})
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		c, err := openPodman(t, f, name, map[string]string{"podman_socket": sock})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Run(t.Context(), connectors.Command{Script: "mktemp -d"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("mktemp -d: %v %+v", err, res)
		}
		return c, strings.TrimSpace(string(res.Stdout))
	})
}

// TestPodman checks what is Podman's own: the target, podman_user, the
// container being Podman's (not Docker's), and the errors.
func TestPodman(t *testing.T) {
	sock, image := podmanService(t)
	name := podmanContainer(t, image)
	f := NewPodmanFactory(Options{Warn: func(string) {}})
	c, err := openPodman(t, f, name, map[string]string{"podman_socket": "unix://" + sock, "podman_user": "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if tg := c.Target(); tg.Scheme != "podman" || tg.Name != "@podman/"+name {
		t.Errorf("target %+v", tg)
	}
	res, err := c.Run(t.Context(), connectors.Command{Script: "id -un; cat /run/.containerenv >/dev/null && echo podman"})
	if err != nil || string(res.Stdout) != "deploy\npodman\n" {
		t.Errorf("id -un and /run/.containerenv: %q %q, %v", res.Stdout, res.Stderr, err)
	}
	if exec.Command("docker", "inspect", name).Run() == nil {
		t.Errorf("docker knows the container %s: the test is not on Podman", name)
	}

	if _, err := openPodman(t, f, name, map[string]string{"podman_socket": filepath.Join(t.TempDir(), "none.sock")}); err == nil || !strings.Contains(err.Error(), "no Podman API socket") {
		t.Errorf("missing socket: %v", err)
	}
	if _, err := f.Parse(name, map[string]string{"podman_socket": "tcp://127.0.0.1:8080"}); err == nil || !strings.Contains(err.Error(), "want a unix socket") {
		t.Errorf("tcp socket: %v", err)
	}
	if _, err := openPodman(t, f, "sdtest-podman-none", map[string]string{"podman_socket": sock}); err == nil || !strings.Contains(err.Error(), "no container and no image") {
		t.Errorf("missing container: %v", err)
	}
}

// TestPodmanImageMode: @podman/IMAGE starts a container of the image,
// and Finish commits it to a new image in Podman's store and removes it.
func TestPodmanImageMode(t *testing.T) {
	sock, image := podmanService(t)
	f := NewPodmanFactory(Options{Warn: func(string) {}})
	var rnd [4]byte
	rand.Read(rnd[:])
	tag := "localhost/sdtest-podman-commit:" + hex.EncodeToString(rnd[:])
	c, err := openPodman(t, f, image, map[string]string{"podman_socket": sock, "podman_commit_tag": tag})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", tag).Run() })
	if res, err := c.Run(t.Context(), connectors.Command{Script: "echo built >/etc/star-deploy-image-mode"}); err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", err, res)
	}
	msg, err := c.(connectors.Finisher).Finish(t.Context(), true)
	if err != nil || !strings.Contains(msg, "committed image") || !strings.Contains(msg, tag) {
		t.Fatalf("Finish = %q, %v", msg, err)
	}
	// The image's own entrypoint and command are back, not the idle loop.
	out, err := exec.Command("podman", "image", "inspect", "--format", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", tag).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != `null ["/usr/sbin/sshd","-D","-e"]` {
		t.Errorf("the committed image's entrypoint and command: %q, %v", out, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err = exec.CommandContext(ctx, "podman", "run", "--rm", "--network", "none", podmanLimits[0], podmanLimits[1], podmanLimits[2], podmanLimits[3], tag, "cat", "/etc/star-deploy-image-mode").CombinedOutput()
	if err != nil || string(out) != "built\n" {
		t.Errorf("the committed image: %q, %v", out, err)
	}
	if out, _ := exec.Command("podman", "ps", "-a", "--filter", "label=star-deploy.image-mode", "--format", "{{.ID}}").Output(); len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("image-mode containers left: %s", out)
	}
}
