package sshtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// KeyPair generates a key pair of typ ("ed25519", "ecdsa" or "rsa") with
// ssh-keygen in a new temporary directory, encrypted with passphrase unless
// it is empty. It returns the private key's path (the public key is next to
// it, with ".pub" appended) and the public key in authorized_keys format,
// ready for Server.AuthorizeKey.
func KeyPair(t testing.TB, typ, passphrase string) (privPath, pubAuthorized string) {
	t.Helper()
	privPath = filepath.Join(t.TempDir(), "id_"+typ)
	return privPath, keygen(t, typ, passphrase, privPath)
}

// keygen writes a new key of typ to path and path.pub and returns the
// public key line.
func keygen(t testing.TB, typ, passphrase, path string) string {
	t.Helper()
	bin := findProgram("ssh-keygen", "")
	if bin == "" {
		Skip(t, "ssh-keygen is not installed (apt-get install openssh-client)")
	}
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", "star-deploy-test-" + typ, "-f", path}
	if typ == "rsa" {
		args = append(args, "-b", "2048") // the 3072-bit default costs ~0.5 s per key
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("sshtest: ssh-keygen -t %s: %v\n%s", typ, err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return strings.TrimSpace(string(pub))
}

// stripComment returns "type base64" of an authorized_keys line.
func stripComment(pub string) string {
	f := strings.Fields(pub)
	if len(f) < 2 {
		return pub
	}
	return f[0] + " " + f[1]
}

// Agent runs ssh-agent for the lifetime of t and returns its socket (for
// SSH_AUTH_SOCK) and a function that loads a private key into it with
// ssh-add, unlocking it with passphrase when that is not empty. add fails t
// when ssh-add fails.
func Agent(t testing.TB) (sock string, add func(keyPath, passphrase string)) {
	t.Helper()
	agent, sshAdd := findProgram("ssh-agent", ""), findProgram("ssh-add", "")
	if agent == "" || sshAdd == "" {
		Skip(t, "ssh-agent or ssh-add is not installed (apt-get install openssh-client)")
	}
	// A socket path has at most 107 bytes; t.TempDir() can come close.
	dir, err := os.MkdirTemp("", "sshtest-agent-")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "agent.sock")
	cmd := exec.Command(agent, "-D", "-a", sock)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshtest: start ssh-agent: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("sshtest: ssh-agent exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshtest: ssh-agent did not create %s within 5s", sock)
		}
	}

	askpass := filepath.Join(dir, "askpass")
	// The script answers once per ssh-add: on a wrong passphrase ssh-add
	// asks again until it gets an empty answer.
	script := "#!/bin/sh\n[ -e \"$SSHTEST_ASKED\" ] && exit 1\n: >\"$SSHTEST_ASKED\"\nprintf '%s\\n' \"$SSHTEST_PASSPHRASE\"\n"
	if err := os.WriteFile(askpass, []byte(script), 0o700); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	var calls atomic.Int64
	add = func(keyPath, passphrase string) {
		t.Helper()
		asked := filepath.Join(dir, fmt.Sprintf("asked-%d", calls.Add(1)))
		cmd := exec.Command(sshAdd, keyPath)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock,
			// force: never read a terminal, even when the test has one.
			"SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "SSHTEST_PASSPHRASE="+passphrase, "SSHTEST_ASKED="+asked)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sshtest: ssh-add %s: %v\n%s", keyPath, err, out)
		}
	}
	return sock, add
}
