package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// TestChrootBinary runs a deploy on @chroot with the real binary: the
// facts are the tree's, the file lands inside it.
func TestChrootBinary(t *testing.T) {
	bin := buildBinary(t)
	root := sshtest.RootFS(t)
	scratch := sshtest.ScratchIn(t, root)
	script := writeFile(t, t.TempDir(), "s.star", `
put(`+strconv.Quote(scratch+"/motd")+`, content="managed\n", mode="0640")
print("os=" + fact("os")["id"] + " on " + host.connector)
`)
	out, err := exec.Command(bin, "@chroot"+root, script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "[@chroot"+root+"] os=debian on chroot") {
		t.Errorf("output:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(root, scratch, "motd"))
	if err != nil || string(b) != "managed\n" {
		t.Errorf("the file in the tree: %q, %v", b, err)
	}
}

// TestDockerSSHBinary runs a deploy on @dockerssh with the real binary,
// over a loopback sshd, in a container of this machine's engine; a
// misspelt dockerssh key exits 2 before anything connects.
func TestDockerSSHBinary(t *testing.T) {
	bin := buildBinary(t)
	name := sshtest.IdleContainer(t, "sdtest-cli-dockerssh")
	srv := sshtest.Start(t, sshtest.Options{})
	kh := sshtest.KnownHostsFile(t, srv.KnownHostsLine(""))
	script := writeFile(t, t.TempDir(), "s.star", `
put("/etc/star-deploy-cli", content="in the container\n")
print("os=" + fact("os")["id"] + " user=" + shell("id -un").stdout.strip())
`)
	host := "@dockerssh/" + srv.Host + ":" + name
	args := []string{"--key", srv.ClientKeyPath, "--user", srv.User, "--port", strconv.Itoa(srv.Port),
		"--data", "ssh_known_hosts_file=" + kh, "--data", "ssh_allow_agent=false", "--data", "dockerssh_user=deploy", host, script}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("put into /etc as deploy: want a failure, got %v\n%s", err, out)
	}
	args[len(args)-3] = "dockerssh_user=root"
	out, err = exec.Command(bin, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "["+host+"] os=debian user=root") {
		t.Fatalf("%v\n%s", err, out)
	}
	if b, err := exec.Command("docker", "exec", name, "cat", "/etc/star-deploy-cli").Output(); err != nil || string(b) != "in the container\n" {
		t.Errorf("the file in the container: %q, %v", b, err)
	}

	cmd := exec.Command(bin, "--data", "dockerssh_dockr=podman", host, script)
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), `"dockerssh_dockr"`) || !strings.Contains(string(out), "dockerssh_docker") {
		t.Errorf("misspelt key: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}
