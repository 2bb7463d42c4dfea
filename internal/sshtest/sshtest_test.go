package sshtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// client runs the real OpenSSH client with nothing of the user's setup:
// no config file, no agent, only the known_hosts lines given.
type client struct {
	key        string // -i, or "" for none
	knownHosts string // known_hosts content
	agent      string // IdentityAgent socket, or "" for none
	password   string // log in with this password instead of keys
	opts       []string
}

func (c client) run(t *testing.T, user, host string, port int, command string) (string, error) {
	t.Helper()
	bin := findProgram("ssh", "")
	if bin == "" {
		Skip(t, "the ssh client is not installed (apt-get install openssh-client)")
	}
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(c.knownHosts), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-F", "/dev/null", "-p", strconv.Itoa(port),
		"-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"}
	if c.key != "" {
		args = append(args, "-i", c.key, "-o", "IdentitiesOnly=yes")
	}
	if c.agent != "" {
		args = append(args, "-o", "IdentityAgent="+c.agent)
	} else {
		args = append(args, "-o", "IdentityAgent=none")
	}
	env := os.Environ()
	if c.password != "" {
		askpass := filepath.Join(dir, "askpass")
		if err := os.WriteFile(askpass, []byte("#!/bin/sh\nprintf '%s\\n' \"$TEST_PASSWORD\"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "TEST_PASSWORD="+c.password)
		args = append(args, "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
			"-o", "NumberOfPasswordPrompts=1")
	} else {
		args = append(args, "-o", "BatchMode=yes")
	}
	args = append(args, c.opts...)
	args = append(args, user+"@"+host, command)
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestStartOnTwoLoopbackAddresses(t *testing.T) {
	t.Parallel()
	a := Start(t, Options{Addr: "127.0.0.2"})
	b := Start(t, Options{Addr: "127.0.0.3"})
	for _, s := range []*Server{a, b} {
		if want := fmt.Sprintf("%s:%d", s.Host, s.Port); s.Addr != want {
			t.Errorf("Addr = %q, want %q", s.Addr, want)
		}
		if len(s.HostPublicKeys) != 2 || !strings.HasPrefix(s.HostPublicKeys[0], "ssh-ed25519 ") || !strings.HasPrefix(s.HostPublicKeys[1], "ssh-rsa ") {
			t.Errorf("HostPublicKeys = %q, want ed25519 and rsa", s.HostPublicKeys)
		}
		line := s.KnownHostsLine("")
		if !strings.HasPrefix(line, fmt.Sprintf("[%s]:%d ssh-ed25519 AAAA", s.Host, s.Port)) || strings.Count(line, "\n") != 2 {
			t.Errorf("KnownHostsLine = %q", line)
		}
		c := client{key: s.ClientKeyPath, knownHosts: line}
		if out, err := c.run(t, s.User, s.Host, s.Port, "echo ok"); err != nil || out != "ok\n" {
			t.Errorf("ssh %s: %v %q\n%s", s.Addr, err, out, s.Log())
		}
	}
	// The known_hosts line of one server does not let the client in to the
	// other: host key checking is really on.
	c := client{key: b.ClientKeyPath, knownHosts: a.KnownHostsLine(b.Host)}
	if out, err := c.run(t, b.User, b.Host, b.Port, "true"); err == nil {
		t.Errorf("ssh %s with the other server's host keys worked: %q", b.Addr, out)
	}
	// Nor does one server's client key open the other.
	c = client{key: a.ClientKeyPath, knownHosts: b.KnownHostsLine("")}
	if out, err := c.run(t, b.User, b.Host, b.Port, "true"); err == nil {
		t.Errorf("ssh %s with the other server's client key worked: %q", b.Addr, out)
	}
}

// TestListenOnManyPorts runs one sshd on 16 sockets (OpenSSH's cap) over
// two addresses; a client gets in through each with that socket's own
// known_hosts entry.
func TestListenOnManyPorts(t *testing.T) {
	t.Parallel()
	var more []string
	for i := range maxListen - 1 {
		more = append(more, fmt.Sprintf("127.0.0.%d", 5+i%2))
	}
	s := Start(t, Options{Addr: "127.0.0.5", Listen: more, HostKeyTypes: []string{"ed25519"}})
	if len(s.Listeners) != maxListen || s.Listeners[0] != s.Addr {
		t.Fatalf("Listeners = %q, want %d starting with %s", s.Listeners, maxListen, s.Addr)
	}
	kh := s.ListenersKnownHosts()
	if n := strings.Count(kh, "\n"); n != maxListen {
		t.Errorf("ListenersKnownHosts has %d lines, want %d:\n%s", n, maxListen, kh)
	}
	seen := map[string]bool{}
	for _, l := range s.Listeners {
		if seen[l] {
			t.Errorf("listener %s twice", l)
		}
		seen[l] = true
		host, port, _ := strings.Cut(l, ":")
		p, _ := strconv.Atoi(port)
		c := client{key: s.ClientKeyPath, knownHosts: kh}
		if out, err := c.run(t, s.User, host, p, "echo ok"); err != nil || out != "ok\n" {
			t.Errorf("ssh %s: %v %q\n%s", l, err, out, s.Log())
		}
	}
}

func TestKillAndRestart(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Addr: "127.0.0.4", HostKeyTypes: []string{"ed25519"}})
	c := client{key: s.ClientKeyPath, knownHosts: s.KnownHostsLine("")}

	// A command in flight dies with the server: Kill takes the connection
	// processes and what they run along.
	marker := "sshtest-sleep-" + randomHex(4)
	bg := exec.Command(findProgram("ssh", ""), "-F", "/dev/null", "-p", strconv.Itoa(s.Port), "-i", s.ClientKeyPath,
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		s.User+"@"+s.Host, "exec -a "+marker+" sleep 60")
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the remote sleep to start", func() bool { return pgrep(marker) })
	s.Kill()
	done := make(chan error, 1)
	go func() { done <- bg.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("ssh running sleep 60 exited 0 after Kill")
		}
	case <-time.After(10 * time.Second):
		bg.Process.Kill()
		t.Error("ssh running sleep 60 still runs 10s after Kill")
	}
	if pgrep(marker) {
		t.Error("the remote command survived Kill")
	}
	if out, err := c.run(t, s.User, s.Host, s.Port, "true"); err == nil {
		t.Errorf("ssh after Kill worked: %q", out)
	}

	s.Restart(t)
	if out, err := c.run(t, s.User, s.Host, s.Port, "echo back"); err != nil || out != "back\n" {
		t.Errorf("ssh after Restart: %v %q", err, out)
	}
}

// pgrep reports whether a process's command line contains s.
func pgrep(s string) bool {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{
		Addr:         "127.0.0.5",
		HostKeyTypes: []string{"rsa"},
		MaxSessions:  3,
		ExtraConfig: []string{
			"SetEnv SSHTEST_EXTRA=first-wins",
			"Match User nobody-at-all",
			"ForceCommand false",
		},
	})
	if len(s.HostPublicKeys) != 1 || !strings.HasPrefix(s.HostPublicKeys[0], "ssh-rsa ") {
		t.Errorf("HostPublicKeys = %q, want one rsa key", s.HostPublicKeys)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, "sshd_config"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, want := range []string{"MaxSessions 3\n", "MaxStartups 200\n", "Subsystem sftp internal-sftp\n", "AllowTcpForwarding yes\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("sshd_config lacks %q:\n%s", want, cfg)
		}
	}
	if !strings.HasSuffix(cfg, "Match User nobody-at-all\nForceCommand false\n") {
		t.Errorf("the Match block is not last:\n%s", cfg)
	}
	c := client{key: s.ClientKeyPath, knownHosts: s.KnownHostsLine("")}
	// SHLVL=1 (which keeps ~/.bashrc out of sessions) joins the extra
	// SetEnv, since sshd ignores a second SetEnv line.
	if strings.Count(cfg, "SetEnv") != 1 || !strings.Contains(cfg, "SetEnv SSHTEST_EXTRA=first-wins SHLVL=1\n") {
		t.Errorf("want one SetEnv line, with SHLVL=1 added:\n%s", cfg)
	}
	if out, err := c.run(t, s.User, s.Host, s.Port, "echo $SSHTEST_EXTRA"); err != nil || out != "first-wins\n" {
		t.Errorf("ssh: %v %q", err, out)
	}
	// KnownHostsLine under another name: a Host alias whose HostKeyAlias is that name.
	c = client{key: s.ClientKeyPath, knownHosts: s.KnownHostsLine("sshtest-alias"), opts: []string{"-o", "HostKeyAlias=[sshtest-alias]:" + strconv.Itoa(s.Port)}}
	if out, err := c.run(t, s.User, s.Host, s.Port, "true"); err != nil {
		t.Errorf("ssh with HostKeyAlias: %v %q", err, out)
	}
}

func TestKeyPairAndAgent(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Addr: "127.0.0.6", HostKeyTypes: []string{"ed25519"}})
	sock, add := Agent(t)
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		plain, plainPub := KeyPair(t, typ, "")
		enc, _ := KeyPair(t, typ, "secret "+typ)
		if !strings.HasPrefix(plainPub, map[string]string{"ed25519": "ssh-ed25519 ", "ecdsa": "ecdsa-sha2-nistp256 ", "rsa": "ssh-rsa "}[typ]) {
			t.Errorf("KeyPair(%s) public key %q", typ, plainPub)
		}
		if b, err := os.ReadFile(plain + ".pub"); err != nil || strings.TrimSpace(string(b)) != plainPub {
			t.Errorf("KeyPair(%s): %s.pub: %v %q", typ, plain, err, b)
		}
		kh := s.KnownHostsLine("")
		if _, err := (client{key: plain, knownHosts: kh}).run(t, s.User, s.Host, s.Port, "true"); err == nil {
			t.Errorf("%s key accepted before AuthorizeKey", typ)
		}
		s.AuthorizeKey(t, plainPub)
		s.AuthorizeKey(t, enc+".pub") // a path works too
		if out, err := (client{key: plain, knownHosts: kh}).run(t, s.User, s.Host, s.Port, "true"); err != nil {
			t.Errorf("%s key: %v %s", typ, err, out)
		}
		// The encrypted key cannot be used without its passphrase...
		if _, err := (client{key: enc, knownHosts: kh}).run(t, s.User, s.Host, s.Port, "true"); err == nil {
			t.Errorf("encrypted %s key worked without a passphrase", typ)
		}
		// ...but through the agent, once unlocked there.
		add(enc, "secret "+typ)
		if out, err := (client{agent: sock, knownHosts: kh}).run(t, s.User, s.Host, s.Port, "true"); err != nil {
			t.Errorf("encrypted %s key through the agent: %v %s", typ, err, out)
		}
	}
	list := exec.Command(findProgram("ssh-add", ""), "-l")
	list.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if b, err := list.Output(); err != nil || strings.Count(string(b), "\n") != 3 {
		t.Errorf("ssh-add -l: %v\n%s", err, b)
	}
}

func TestAptMirror(t *testing.T) {
	for _, tc := range []struct{ dir, codename, want string }{
		{"testdata/apt/deb822", "bookworm", "http://mirror.example/debian"},
		{"testdata/apt/oneline", "bookworm", "https://one.example/debian"},
		{"testdata/apt/oneline", "trixie", "file:/srv/mirror/debian"},
		{"testdata/apt/none", "bookworm", ""},
	} {
		if got, _ := aptMirror(tc.dir, tc.codename); got != tc.want {
			t.Errorf("aptMirror(%s, %s) = %q, want %q", tc.dir, tc.codename, got, tc.want)
		}
	}
}

func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two children", func() bool { return len(descendants(cmd.Process.Pid)) == 3 })
	pids := descendants(cmd.Process.Pid)
	killTree(cmd.Process.Pid)
	cmd.Wait()
	for _, pid := range pids[1:] {
		waitFor(t, fmt.Sprintf("pid %d to go", pid), func() bool {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			return err != nil || slices.Contains(strings.Fields(string(b)), "Z")
		})
	}
}

// TestFleet checks the image with the real ssh client: deploy has
// passwordless sudo, deploy2 needs its password, host keys differ per
// container and match KnownHostsLine.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("the container fleet takes minutes to build the first time")
	}
	t.Parallel()
	fleet := Fleet(t, 2)
	if fleet[0].Port == fleet[1].Port || fleet[0].HostPublicKeys[0] == fleet[1].HostPublicKeys[0] {
		t.Errorf("two containers share a port or a host key: %+v %+v", fleet[0], fleet[1])
	}
	for _, c := range fleet {
		if c.Host != "127.0.0.1" || !slices.Equal(c.Users, []string{"deploy", "deploy2"}) {
			t.Errorf("container %+v", c)
		}
		key := client{key: c.ClientKeyPath, knownHosts: c.KnownHostsLine("")}
		if out, err := key.run(t, "deploy", c.Host, c.Port, "sudo -n id -u"); err != nil || out != "0\n" {
			t.Errorf("%s: deploy: sudo -n id -u: %v %q", c.Name, err, out)
		}
		if out, err := key.run(t, "deploy2", c.Host, c.Port, "sudo -n true"); err == nil {
			t.Errorf("%s: deploy2: sudo -n true worked without a password: %q", c.Name, out)
		}
		if out, err := key.run(t, "deploy2", c.Host, c.Port, "echo '"+c.SudoPassword+"' | sudo -S -p '' id -u"); err != nil || out != "0\n" {
			t.Errorf("%s: deploy2: sudo -S with the password: %v %q", c.Name, err, out)
		}
		pw := client{password: c.LoginPassword, knownHosts: c.KnownHostsLine("")}
		if out, err := pw.run(t, "deploy2", c.Host, c.Port, "id -un"); err != nil || out != "deploy2\n" {
			t.Errorf("%s: deploy2: password login: %v %q", c.Name, err, out)
		}
		if out, err := key.run(t, "root", c.Host, c.Port, "true"); err == nil {
			t.Errorf("%s: root accepted the client key: %q", c.Name, out)
		}
		if out, err := c.Exec(t, "id", "-u"); err != nil || out != "0\n" {
			t.Errorf("%s: Exec id -u: %v %q", c.Name, err, out)
		}
		if out, err := c.Exec(t, "false"); err == nil {
			t.Errorf("%s: Exec false: no error (%q)", c.Name, out)
		}
	}
	// Killing sshd stops the container.
	c := fleet[1]
	c.Exec(t, "pkill", "-KILL", "-x", "sshd")
	waitFor(t, "the container's port to close", func() bool { return readBanner(c.Addr) != nil })
}
