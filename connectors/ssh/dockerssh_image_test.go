package ssh

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
	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// imageHost starts a loopback sshd and gives the Debian test image a name
// of this test's own on this machine's engine (the sshd's), so that the
// image-mode containers of this test, labelled with it, are told apart
// from any other test's. It returns the server, a known_hosts file and
// the image name.
func imageHost(t *testing.T) (*sshtest.Server, string, string) {
	t.Helper()
	image := sshtest.TagImage(t, "star-deploy-test/dockerssh", imageLabel)
	srv := sshtest.Start(t, sshtest.Options{})
	return srv, sshtest.KnownHostsFile(t, srv.KnownHostsLine("")), image
}

func randHex() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// imageLeftovers lists the containers, running or not, started from image.
func imageLeftovers(t *testing.T, image string) string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+imageLabel+"="+image).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestDockerSSHImageConformance runs the connector suite in containers
// that @dockerssh starts from an image on the SSH host, one a connection.
func TestDockerSSHImageConformance(t *testing.T) {
	srv, kh, image := imageHost(t)
	dockerSSHSuite(t, srv, kh, image, func(t *testing.T, c connectors.Connector) {
		if _, ok := c.(*DockerImageConn); !ok {
			t.Fatalf("Open of an image gave %T", c)
		}
	})
	if l := imageLeftovers(t, image); l != "" {
		t.Errorf("containers left behind: %s", l)
	}
}

// imageRunDSSH runs script on image through @dockerssh with the runtime,
// which finishes the connection, and returns the host's result.
func imageRunDSSH(t *testing.T, ctx context.Context, srv *sshtest.Server, kh, image, script string, data map[string]string, onEvent func(sdrt.Event)) sdrt.HostResult {
	t.Helper()
	f, _ := testFactory(t)
	reg := connectors.NewRegistry(f, NewDockerSSHFactory(f))
	tg, err := reg.Target("@dockerssh/"+srv.Host+":"+image, dockerSSHData(srv, kh, data))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "deploy.star")
	os.WriteFile(file, []byte(script), 0o644)
	r := sdrt.New(sdrt.Options{Connectors: reg, OnEvent: onEvent})
	p, err := r.Compile(ctx, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Run(ctx, []*sdrt.Program{p}, []sdrt.Host{{Name: tg.Name, Target: tg}})
	return rep.Hosts[0]
}

// TestDockerSSHImageCommits: a successful run commits the container to the
// tagged image, with the file it put and the image's own command, and
// removes the container.
func TestDockerSSHImageCommits(t *testing.T) {
	srv, kh, image := imageHost(t)
	tag := "star-deploy-test/dockerssh-deployed:" + randHex()
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	res := imageRunDSSH(t, t.Context(), srv, kh, image, `put("/etc/deployed", content = "by star-deploy\n")
print(shell("cat /proc/1/cmdline | tr '\\0' ' '").stdout)`, map[string]string{"dockerssh_commit_tag": tag}, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if !strings.Contains(res.Output, "committed image sha256:") || !strings.Contains(res.Output, " as "+tag) {
		t.Errorf("output %q", res.Output)
	}
	out, err := exec.Command("docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", tag, "/etc/deployed").CombinedOutput()
	if err != nil || string(out) != "by star-deploy\n" {
		t.Errorf("the committed image lacks the deployed file: %v %q", err, out)
	}
	cfg, _ := exec.Command("docker", "image", "inspect", "--format", "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Comment}}", tag).Output()
	if strings.Contains(string(cfg), "while") || !strings.Contains(string(cfg), `["/usr/sbin/sshd","-D","-e"]`) || !strings.Contains(string(cfg), "star-deploy run on "+image) {
		t.Errorf("committed config %s", cfg)
	}
	if l := imageLeftovers(t, image); l != "" {
		t.Errorf("containers left behind: %s", l)
	}
}

// TestDockerSSHImageFailureCommitsNothing: a failed script leaves no image
// and no container.
func TestDockerSSHImageFailureCommitsNothing(t *testing.T) {
	srv, kh, image := imageHost(t)
	tag := "star-deploy-test/dockerssh-deployed:" + randHex()
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	res := imageRunDSSH(t, t.Context(), srv, kh, image, `shell("exit 3")`, map[string]string{"dockerssh_commit_tag": tag}, nil)
	if res.Err == nil || strings.Contains(res.Output, "committed") {
		t.Fatalf("err %v, output %q", res.Err, res.Output)
	}
	if exec.Command("docker", "image", "inspect", tag).Run() == nil {
		t.Error("a failed run committed an image")
	}
	if l := imageLeftovers(t, image); l != "" {
		t.Errorf("containers left behind: %s", l)
	}
}

// TestDockerSSHImageCancelCleansUp: Ctrl-C during a command removes the
// container (and with it the command).
func TestDockerSSHImageCancelCleansUp(t *testing.T) {
	srv, kh, image := imageHost(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	res := imageRunDSSH(t, ctx, srv, kh, image, `shell("sleep 300")`, nil, func(e sdrt.Event) {
		if e.Kind == builtins.KindOpStart {
			cancel()
		}
	})
	if res.Err == nil {
		t.Fatal("a cancelled run succeeded")
	}
	if l := imageLeftovers(t, image); l != "" {
		t.Errorf("containers left behind: %s", l)
	}
}

// TestDockerSSHImageOpenClose: Open starts a container of the image (no
// network, the keep-alive loop as PID 1), Close without Finish removes it,
// and a name that is neither a container nor an image is an error that
// says so.
func TestDockerSSHImageOpenClose(t *testing.T) {
	srv, kh, image := imageHost(t)
	f, _ := testFactory(t)
	d := NewDockerSSHFactory(f)
	c, err := openDockerSSH(t, d, srv, kh, image, map[string]string{"dockerssh_user": "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, c, "id -un; ls /sys/class/net")
	if string(res.Stdout) != "deploy\nlo\n" {
		t.Errorf("id -un; ls /sys/class/net = %q, want deploy and only lo", res.Stdout)
	}
	if l := imageLeftovers(t, image); len(strings.Fields(l)) != 1 {
		t.Errorf("containers of the image while open: %q, want one", l)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if l := imageLeftovers(t, image); l != "" {
		t.Errorf("containers left behind after Close: %s", l)
	}

	if _, err := openDockerSSH(t, d, srv, kh, "star-deploy-test/no-such-image:x", nil); err == nil || !strings.Contains(err.Error(), "no container and no image named") || !strings.Contains(err.Error(), "nothing is pulled") {
		t.Errorf("missing image: %v", err)
	}
	// A platform the image lacks: docker run fails, nothing is pulled or left.
	if _, err := openDockerSSH(t, d, srv, kh, image, map[string]string{"dockerssh_platform": "linux/s390x"}); err == nil || !strings.Contains(err.Error(), "docker run") {
		t.Errorf("platform the image lacks: %v", err)
	}
	if l := imageLeftovers(t, image); l != "" {
		t.Errorf("containers left behind after a failed start: %s", l)
	}
}
