package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// sshArgs are the flags that point the CLI at a fleet container as user,
// with its own known_hosts file.
func sshArgs(t *testing.T, c *sshtest.Container, user string, extra ...string) []string {
	t.Helper()
	return append([]string{
		"--key", c.ClientKeyPath, "--user", user,
		"--data", "ssh_known_hosts_file=" + filepath.Join(t.TempDir(), "known_hosts"),
		"--data", "ssh_allow_agent=false",
	}, extra...)
}

// TestSSHSudo runs deploys over SSH against real Debian containers: sudo
// without a password, with one, with a wrong one and with none; and checks
// that the password never shows in output or in the container's process list.
func TestSSHSudo(t *testing.T) {
	fleet := sshtest.Fleet(t, 1)
	c := fleet[0]
	dir := t.TempDir()
	inv := "@ssh/" + c.Addr

	t.Run("passwordless", func(t *testing.T) {
		script := writeFile(t, dir, "nopw.star", `
r = shell("id -un", sudo = True)
print("whoami=" + r.stdout.strip())
put("/etc/star-deploy-test", content = "root file\n", sudo = True)
print("owner=" + fact("file", "/etc/star-deploy-test").owner)
`)
		code, out, errOut := runCLI(t, append(sshArgs(t, c, sshtest.UserNopasswd), inv, script)...)
		if code != 0 || !strings.Contains(out, "whoami=root") || !strings.Contains(out, "owner=root") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("password", func(t *testing.T) {
		const canary = sshtest.SudoPassword
		script := writeFile(t, dir, "pw.star", `
r = shell("id -un; sleep 2", sudo = True, stdin = "ignored")
print("whoami=" + r.stdout.strip())
put("/etc/star-deploy-test2", content = "x", sudo = True)
`)
		// While the sudo'ed sleep runs, look for the password in every
		// process's command line and environment in the container.
		stop := watchSecret(t, c, canary)
		code, out, errOut := runCLI(t, append(sshArgs(t, c, sshtest.UserPasswd, "--data", "sudo_password="+canary, "--json", "-v"), inv, script)...)
		found := stop()
		if code != 0 || !strings.Contains(out, "whoami=root") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		if strings.Contains(out+errOut, canary) {
			t.Errorf("the sudo password appears in the output:\n%s\n%s", out, errOut)
		}
		if found != "" {
			t.Errorf("the sudo password appears in the container's process list:\n%s", found)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		script := writeFile(t, dir, "wrong.star", `shell("true", sudo = True)`)
		start := time.Now()
		code, out, errOut := runCLI(t, append(sshArgs(t, c, sshtest.UserPasswd, "--data", "sudo_password=wrong-canary"), inv, script)...)
		if code != 1 || !strings.Contains(out, "sudo rejected the password") || strings.Contains(out+errOut, "wrong-canary") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		t.Logf("a wrong password failed in %s", time.Since(start))
	})

	t.Run("password needed but none given", func(t *testing.T) {
		script := writeFile(t, dir, "none.star", `shell("true", sudo = True)`)
		code, out, errOut := runCLI(t, append(sshArgs(t, c, sshtest.UserPasswd), inv, script)...)
		if code != 1 || !strings.Contains(out, "password is required") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("timeout kills a sudo'ed command", func(t *testing.T) {
		script := writeFile(t, dir, "timeout.star", `shell("sleep 31; touch /tmp/late", sudo = True, timeout = 1)`)
		code, out, errOut := runCLI(t, append(sshArgs(t, c, sshtest.UserNopasswd), inv, script)...)
		if code != 1 || !strings.Contains(out, "timed out after 1s") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		for i := 0; ; i++ {
			ps, _ := c.Exec(t, "sh", "-c", "pgrep -f '^sleep 31' || true")
			if strings.TrimSpace(ps) == "" {
				break
			}
			if i == 50 {
				all, _ := c.Exec(t, "ps", "-e", "-o", "pid,ppid,pgid,ruid,stat,args")
				t.Fatalf("the sudo'ed sleep still runs after its timeout: pids %s\n%s", ps, all)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestSSHOneHostUnreachable: 1 of 10 hosts is down; the other 9 finish,
// the summary names the failed host and why, exit 1.
func TestSSHOneHostUnreachable(t *testing.T) {
	var names, want []string
	var first *sshtest.Server
	for i := range 9 {
		s := sshtest.Start(t, sshtest.Options{Addr: fmt.Sprintf("127.0.0.%d", 31+i), HostKeyTypes: []string{"ed25519"}})
		if first == nil {
			first = s
		} else {
			s.AuthorizeKey(t, first.ClientKeyPath+".pub") // one key for all
		}
		names = append(names, "@ssh/"+s.Addr)
		want = append(want, "up on "+s.Addr)
	}
	l, _ := net.Listen("tcp", "127.0.0.40:0")
	down := l.Addr().String()
	l.Close()
	names = append(names, "@ssh/"+down)
	script := writeFile(t, t.TempDir(), "s.star", `print("up on " + host.name)`)
	code, out, errOut := runCLI(t, "--key", first.ClientKeyPath, "--user", first.User, "--data", "ssh_known_hosts_file="+filepath.Join(t.TempDir(), "kh"),
		"--data", "ssh_allow_agent=false", "--data", "ssh_connect_retries=0", strings.Join(names, ","), script)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, w := range append(want, down, "connection refused", "9 ok, 1 unreachable") {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestSSHPasswordLogin logs in with a password only (no key, no agent).
func TestSSHPasswordLogin(t *testing.T) {
	c := sshtest.Fleet(t, 1)[0]
	script := writeFile(t, t.TempDir(), "pw.star", `print("logged in as " + shell("id -un").stdout.strip())`)
	args := []string{"--user", sshtest.UserPasswd, "--data", "ssh_password=" + c.LoginPassword, "--data", "ssh_allow_agent=false",
		"--data", "ssh_key=/nonexistent", "--data", "ssh_known_hosts_file=" + filepath.Join(t.TempDir(), "kh"), "@ssh/" + c.Addr, script}
	code, out, errOut := runCLI(t, args...)
	if code != 0 || !strings.Contains(out, "logged in as "+sshtest.UserPasswd) || strings.Contains(out+errOut, c.LoginPassword) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	args[3] = "ssh_password=wrong-canary"
	code, out, errOut = runCLI(t, args...)
	if code != 1 || !strings.Contains(out, "unable to authenticate") || strings.Contains(out+errOut, "wrong-canary") {
		t.Fatalf("wrong password: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestSSHPassphrasePromptOnTerminal runs the binary on a pseudo-terminal
// (util-linux script) with an encrypted key and no ssh_key_password: it
// asks once on the terminal, without echo, and connects.
func TestSSHPassphrasePromptOnTerminal(t *testing.T) {
	p := startAtPassphrasePrompt(t, "")
	// Answer only once the prompt is there (echo is off by then), as a
	// person would; typed ahead, the terminal would echo it.
	io.WriteString(p.stdin, "tty-canary-phrase\n")
	err := <-p.done
	out := p.out.String()
	if err != nil || !strings.Contains(out, "Enter passphrase for key") || !strings.Contains(out, "connected to "+p.srv.Addr) {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(out, "tty-canary-phrase") {
		t.Errorf("the passphrase was echoed:\n%s", out)
	}
}

// passphraseRun is the binary running on a pseudo-terminal (util-linux
// script), with an encrypted key and no ssh_key_password, that has
// written its passphrase prompt.
type passphraseRun struct {
	srv   *sshtest.Server
	stdin io.WriteCloser       // the terminal's keyboard
	out   *conntest.SyncBuffer // what the terminal showed
	done  chan error           // the end of script
}

// startAtPassphrasePrompt starts the binary on a pseudo-terminal, followed
// by the shell commands after (which see its exit code as $?), and returns
// once it asks for the key's passphrase.
func startAtPassphrasePrompt(t *testing.T, after string) *passphraseRun {
	t.Helper()
	bin := buildBinary(t)
	scriptCmd, err := exec.LookPath("script")
	if err != nil {
		sshtest.Skip(t, "script (util-linux) is not installed")
	}
	p := &passphraseRun{srv: sshtest.Start(t, sshtest.Options{}), out: &conntest.SyncBuffer{}, done: make(chan error, 1)}
	key, pub := sshtest.KeyPair(t, "ed25519", "tty-canary-phrase")
	p.srv.AuthorizeKey(t, pub)
	dir := t.TempDir()
	deploy := writeFile(t, dir, "s.star", `print("connected to " + host.name)`)
	line := strings.Join([]string{bin, "--key", key, "--user", p.srv.User, "--data", "ssh_allow_agent=false",
		"--data", "ssh_known_hosts_file=" + filepath.Join(dir, "kh"), "@ssh/" + p.srv.Addr, deploy, after}, " ")
	// script runs line with $SHELL, and a Ctrl-C on the terminal reaches
	// that shell too: dash (/bin/sh on Debian, the shell when SHELL is unset)
	// dies of it before `after` runs, where bash waits for its child. The
	// shell ignores SIGINT here; Go's signal.Notify turns it back on in the
	// binary.
	cmd := exec.Command(scriptCmd, "-qec", "trap '' INT; "+line, "/dev/null")
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	prompted := make(chan struct{})
	cmd.Stdout = &signalOn{w: p.out, marker: "Enter passphrase", fn: func() { close(prompted) }}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	go func() { p.done <- cmd.Wait() }()
	select {
	case <-prompted:
	case <-time.After(20 * time.Second):
		t.Fatalf("no passphrase prompt:\n%s", p.out.String())
	}
	return p
}

// signalOn passes writes to w and calls fn once marker has been written.
type signalOn struct {
	w      io.Writer
	marker string
	fn     func()
	seen   strings.Builder
	fired  bool
}

func (s *signalOn) Write(p []byte) (int, error) {
	if !s.fired {
		s.seen.Write(p)
		if strings.Contains(s.seen.String(), s.marker) {
			s.fired = true
			s.fn()
		}
	}
	return s.w.Write(p)
}

// watchSecret looks for secret in the command line and environment of
// every process of container c until the returned stop is called, which
// returns what it found ("" for nothing).
func watchSecret(t *testing.T, c *sshtest.Container, secret string) (stop func() string) {
	t.Helper()
	// The pattern goes in a file, so the grep itself does not match.
	cmd := exec.Command("docker", "exec", "-i", c.Name, "sh", "-c", "cat > /tmp/canary")
	cmd.Stdin = strings.NewReader(secret + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	found := make(chan string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		defer close(found)
		for ctx.Err() == nil {
			out, _ := c.Exec(t, "sh", "-c", "cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -F -f /tmp/canary || true")
			if strings.Contains(out, secret) {
				found <- out
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() string {
		cancel()
		return <-found
	}
}
