package ssh

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// agentWithKey starts an ssh-agent holding a new key, points SSH_AUTH_SOCK
// at it and returns the key's public line.
func agentWithKey(t *testing.T) (sock, pub string) {
	sock, add := sshtest.Agent(t)
	key, pub := sshtest.KeyPair(t, "ed25519", "")
	add(key, "")
	t.Setenv("SSH_AUTH_SOCK", sock)
	return sock, pub
}

// warnings returns a factory whose warnings are recorded.
func warnings(t *testing.T) (*Factory, func() string) {
	f, _ := testFactory(t)
	var mu sync.Mutex
	var got []string
	f.opts.Warn = func(msg string) { mu.Lock(); got = append(got, msg); mu.Unlock() }
	return f, func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(got, "\n") }
}

// TestForwardAgent: with ssh_forward_agent, ssh-add -l on the host lists
// the local agent's key, and git on the host clones over SSH from a second
// sshd that accepts only that key.
func TestForwardAgent(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		sshtest.Skip(t, "git is not installed")
	}
	target := sshtest.Start(t, sshtest.Options{})
	gitHost := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.3"})
	sock, pub := agentWithKey(t)
	gitHost.AuthorizeKey(t, pub)
	fingerprint := strings.Fields(pub)[1]

	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(target.KnownHostsLine("")), 0o600); err != nil {
		t.Fatal(err)
	}
	f, warned := warnings(t)
	c := mustOpen(t, f, target, map[string]string{"ssh_forward_agent": "true", "ssh_known_hosts_file": kh, "ssh_strict_host_key_checking": "yes"})

	res := run(t, c, `echo "$SSH_AUTH_SOCK"; ssh-add -L`)
	lines := strings.SplitN(string(res.Stdout), "\n", 2)
	if res.ExitCode != 0 || lines[0] == "" || lines[0] == sock || !strings.Contains(lines[1], fingerprint) {
		t.Fatalf("ssh-add -L on the host: exit %d, stdout %q, stderr %q; want a forwarded socket (not %s) listing %s", res.ExitCode, res.Stdout, res.Stderr, sock, fingerprint)
	}
	if res := run(t, c, "ssh-add -l"); res.ExitCode != 0 || !strings.Contains(string(res.Stdout), "star-deploy-test-ed25519") {
		t.Errorf("ssh-add -l: exit %d, %q %q", res.ExitCode, res.Stdout, res.Stderr)
	}

	// A bare repository served by the second sshd, cloned from the host.
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo.git")
	for _, args := range [][]string{
		{"init", "-q", "--bare", "-b", "main", repo},
		{"-C", dir, "init", "-q", "-b", "main", "work"},
		{"-C", filepath.Join(dir, "work"), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "forwarded"},
		{"-C", filepath.Join(dir, "work"), "push", "-q", repo, "main"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitKH := filepath.Join(dir, "git_known_hosts")
	if err := os.WriteFile(gitKH, []byte(gitHost.KnownHostsLine("")), 0o600); err != nil {
		t.Fatal(err)
	}
	// -F /dev/null and IdentityFile none: only the forwarded agent can
	// authenticate.
	clone := func(dest string) string {
		return "GIT_SSH_COMMAND='ssh -F /dev/null -o IdentityFile=none -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + gitKH + "' " +
			"git clone -q ssh://" + gitHost.User + "@" + gitHost.Addr + repo + " " + filepath.Join(dir, dest) + " && git -C " + filepath.Join(dir, dest) + " log --format=%s"
	}
	res = run(t, c, clone("clone"))
	if res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != "forwarded" {
		t.Fatalf("git clone over SSH from the host: exit %d, stdout %q, stderr %q\nsshd log of the git host:\n%s", res.ExitCode, res.Stdout, res.Stderr, gitHost.Log())
	}
	if w := warned(); w != "" {
		t.Errorf("warnings: %s", w)
	}

	// Without forwarding, the same clone fails: the agent is what logs in.
	plain := mustOpen(t, f, target, map[string]string{"ssh_known_hosts_file": kh})
	if res := run(t, plain, clone("clone2")); res.ExitCode == 0 {
		t.Errorf("git clone without ssh_forward_agent succeeded; the test proves nothing")
	}
	if res := run(t, plain, "ssh-add -l"); res.ExitCode == 0 {
		t.Errorf("ssh-add -l without ssh_forward_agent: exit 0, %q", res.Stdout)
	}
}

// TestForwardAgentRefusedUnverified: with host key checking off and a
// host that known_hosts does not hold, the agent is not forwarded, and a
// warning says why.
func TestForwardAgentRefusedUnverified(t *testing.T) {
	target := sshtest.Start(t, sshtest.Options{})
	agentWithKey(t)
	f, warned := warnings(t)
	c := mustOpen(t, f, target, map[string]string{
		"ssh_forward_agent": "true", "ssh_strict_host_key_checking": "no",
		"ssh_known_hosts_file": filepath.Join(t.TempDir(), "known_hosts"),
	})
	if res := run(t, c, `ssh-add -l; echo "sock=$SSH_AUTH_SOCK"`); strings.Contains(string(res.Stdout), "star-deploy-test") || !strings.Contains(string(res.Stdout), "sock=\n") {
		t.Errorf("the agent reached an unverified host: %q %q", res.Stdout, res.Stderr)
	}
	if w := warned(); !strings.Contains(w, "not forwarding the ssh agent") || !strings.Contains(w, "host key was not verified") {
		t.Errorf("warnings %q, want one saying the agent is not forwarded to an unverified host", w)
	}

	// The same host with its key on file: forwarded, even with checking off.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(target.KnownHostsLine("")), 0o600); err != nil {
		t.Fatal(err)
	}
	c = mustOpen(t, f, target, map[string]string{"ssh_forward_agent": "true", "ssh_strict_host_key_checking": "no", "ssh_known_hosts_file": kh})
	if res := run(t, c, "ssh-add -l"); res.ExitCode != 0 {
		t.Errorf("known host, checking off: ssh-add -l exit %d, %q", res.ExitCode, res.Stderr)
	}
}

// TestForwardAgentServerRefuses: an sshd with AllowAgentForwarding no
// refuses; the command runs without the agent and one warning says so.
func TestForwardAgentServerRefuses(t *testing.T) {
	target := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"AllowAgentForwarding no"}})
	agentWithKey(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(target.KnownHostsLine("")), 0o600); err != nil {
		t.Fatal(err)
	}
	f, warned := warnings(t)
	c := mustOpen(t, f, target, map[string]string{"ssh_forward_agent": "true", "ssh_known_hosts_file": kh})
	for range 2 {
		if res := run(t, c, "ssh-add -l"); res.ExitCode == 0 {
			t.Errorf("ssh-add -l: exit 0 on a host that refuses forwarding: %q", res.Stdout)
		}
	}
	if w := warned(); strings.Count(w, "refused agent forwarding") != 1 {
		t.Errorf("warnings %q, want one about the refusal", w)
	}
}
