package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
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
	base := sshtest.Image(t)
	srv := sshtest.Start(t, sshtest.Options{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(srv.KnownHostsLine("")), 0o600); err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	image := "star-deploy-test/cli-dockerssh:" + hex.EncodeToString(rnd[:])
	tag := "star-deploy-test/cli-dockerssh-deployed:" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command("docker", "tag", base, image).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v\n%s", err, out)
	}
	leftovers := func() []string {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=star-deploy.image-mode="+image).Output()
		return strings.Fields(string(out))
	}
	t.Cleanup(func() {
		if ids := leftovers(); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		exec.Command("docker", "rmi", "-f", image, tag).Run()
	})
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
