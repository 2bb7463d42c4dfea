package main

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// TestDockerSSHImageBinary runs the real binary on @dockerssh/HOST:IMAGE
// (a loopback sshd, this machine's engine as HOST's): a run commits the
// image under dockerssh_commit_tag and prints it, and Ctrl-C during a
// command exits 130 leaving no container behind.
func TestDockerSSHImageBinary(t *testing.T) {
	bin := buildBinary(t)
	image := sshtest.TagImage(t, "star-deploy-test/cli-dockerssh", "star-deploy.image-mode")
	srv := sshtest.Start(t, sshtest.Options{})
	kh := sshtest.KnownHostsFile(t, srv.KnownHostsLine(""))
	_, hex, _ := strings.Cut(image, ":")
	tag := "star-deploy-test/cli-dockerssh-deployed:" + hex
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	leftovers := func() []string { return sshtest.Labelled("star-deploy.image-mode", image) }
	host := "@dockerssh/" + srv.Host + ":" + image
	common := []string{"--key", srv.ClientKeyPath, "--user", srv.User, "--port", strconv.Itoa(srv.Port),
		"--data", "ssh_known_hosts_file=" + kh, "--data", "ssh_allow_agent=false"}

	script := writeFile(t, t.TempDir(), "s.star", `
put("/etc/star-deploy-cli", content="baked in\n")
print("os=" + fact("os")["id"])
`)
	out, err := exec.Command(bin, append(common, "--data", "dockerssh_commit_tag="+tag, host, script)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "["+host+"] os=debian") || !strings.Contains(string(out), "committed image sha256:") || !strings.Contains(string(out), " as "+tag) {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("star-deploy %s s.star:\n%s", host, out)
	if b, err := exec.Command("docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", tag, "/etc/star-deploy-cli").CombinedOutput(); err != nil || string(b) != "baked in\n" {
		t.Errorf("the committed image: %q, %v", b, err)
	}
	if ids := leftovers(); len(ids) > 0 {
		t.Errorf("containers left behind: %v", ids)
	}

	// Ctrl-C during a command.
	slow := writeFile(t, t.TempDir(), "slow.star", `shell("touch /tmp/started; sleep 300")`)
	r := startBinary(t, bin, append(common, host, slow)...)
	for i := 0; ; i++ {
		if ids := leftovers(); len(ids) == 1 && exec.Command("docker", "exec", ids[0], "test", "-f", "/tmp/started").Run() == nil {
			break
		}
		if i == 400 {
			t.Fatalf("the command did not start\nstdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.signalAndWait(t, syscall.SIGINT, time.Minute)
	if code := r.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("Ctrl-C: exit %d, want 130\n%s%s", code, r.stdout.String(), r.stderr.String())
	}
	if ids := leftovers(); len(ids) > 0 {
		t.Errorf("containers left behind after Ctrl-C: %v", ids)
	}
}
