// Package sshtest starts real OpenSSH servers for tests: sshd on loopback
// addresses with generated keys, running as the current user. A test that
// needs sshd and cannot find it skips, except under CI=true, where a skip
// is a failure (CI installs openssh-server).
package sshtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Skip skips t with reason, or fails it under CI=true.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot skip under CI=true: %s", reason)
	}
	t.Skip(reason)
}

// Options configure a Server.
type Options struct {
	IP           string   // loopback address to listen on; default 127.0.0.1
	HostKeyTypes []string // "ed25519", "rsa", "ecdsa"; default ed25519 and rsa
	ExtraConfig  []string // more sshd_config lines
}

// Server is a running sshd.
type Server struct {
	Host, User     string
	Port           int
	Addr           string // host:port
	Dir            string // its private directory
	ClientKey      string // path of an unencrypted ed25519 key it accepts
	HostKeys       []ssh.PublicKey
	cmd            *exec.Cmd
	log            string
	authorizedKeys string
}

// Start starts sshd for the test's lifetime.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/sshd"); statErr != nil {
			Skip(t, "sshd is not installed (apt-get install openssh-server)")
		}
		sshd = "/usr/sbin/sshd"
	}
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if len(opts.HostKeyTypes) == 0 {
		opts.HostKeyTypes = []string{"ed25519", "rsa"}
	}
	dir := t.TempDir()
	s := &Server{Host: opts.IP, Dir: dir, User: currentUser(t), log: filepath.Join(dir, "sshd.log"), authorizedKeys: filepath.Join(dir, "authorized_keys")}
	var cfg bytes.Buffer
	for _, typ := range opts.HostKeyTypes {
		key := filepath.Join(dir, "host_"+typ)
		keygen(t, typ, "", key)
		fmt.Fprintf(&cfg, "HostKey %s\n", key)
		s.HostKeys = append(s.HostKeys, readPublic(t, key+".pub"))
	}
	s.ClientKey = filepath.Join(dir, "client_ed25519")
	keygen(t, "ed25519", "", s.ClientKey)
	s.AuthorizeKey(t, s.ClientKey+".pub")
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		t.Fatal(err)
	}
	fmt.Fprintf(&cfg, "AuthorizedKeysFile %s\nStrictModes no\nUsePAM no\nPidFile %s\n", s.authorizedKeys, filepath.Join(dir, "sshd.pid"))
	fmt.Fprintf(&cfg, "Subsystem sftp internal-sftp\nLogLevel VERBOSE\nMaxSessions 64\nMaxStartups 200\nAllowTcpForwarding yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n")
	if os.Geteuid() == 0 {
		cfg.WriteString("PermitRootLogin yes\n")
	}
	for _, l := range opts.ExtraConfig {
		cfg.WriteString(l + "\n")
	}
	conf := filepath.Join(dir, "sshd_config")
	for attempt := 0; attempt < 5; attempt++ {
		s.Port = freePort(t, opts.IP)
		s.Addr = net.JoinHostPort(opts.IP, strconv.Itoa(s.Port))
		full := fmt.Sprintf("ListenAddress %s\n%s", s.Addr, cfg.String())
		if err := os.WriteFile(conf, []byte(full), 0o600); err != nil {
			t.Fatal(err)
		}
		logf, err := os.Create(s.log)
		if err != nil {
			t.Fatal(err)
		}
		s.cmd = exec.Command(sshd, "-D", "-e", "-f", conf)
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := s.cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("start sshd: %v", err)
		}
		logf.Close()
		if s.waitListening() {
			t.Cleanup(s.stop)
			t.Cleanup(func() {
				if t.Failed() {
					b, _ := os.ReadFile(s.log)
					t.Logf("sshd log of %s:\n%s", s.Addr, b)
				}
			})
			return s
		}
		s.stop()
	}
	b, _ := os.ReadFile(s.log)
	t.Fatalf("sshd did not start on %s:\n%s", opts.IP, b)
	return nil
}

// waitListening polls the port for up to five seconds.
func (s *Server) waitListening() bool {
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	for i := 0; i < 100; i++ {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (s *Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	}
}

// Kill kills sshd and its connection processes (which serve SFTP with
// internal-sftp) at once, with SIGKILL: the server vanishes mid-transfer.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		pid := s.cmd.Process.Pid
		syscall.Kill(pid, syscall.SIGSTOP) // no new connections meanwhile
		exec.Command("pkill", "-KILL", "-P", strconv.Itoa(pid)).Run()
		syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// Log returns what sshd logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// AuthorizeKey adds the public key file pub to the server's authorized keys.
func (s *Server) AuthorizeKey(t testing.TB, pub string) {
	t.Helper()
	b, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(s.authorizedKeys, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(append(bytes.TrimSpace(b), '\n'))
}

// KnownHostsLines returns known_hosts lines for every host key.
func (s *Server) KnownHostsLines() string {
	var b strings.Builder
	for _, k := range s.HostKeys {
		fmt.Fprintf(&b, "[%s]:%d %s", s.Host, s.Port, ssh.MarshalAuthorizedKey(k))
	}
	return b.String()
}

// KeyPair generates a key of typ ("ed25519", "ecdsa", "rsa") in dir,
// encrypted with passphrase when not empty, and returns its path.
func KeyPair(t testing.TB, dir, typ, passphrase string) string {
	t.Helper()
	p := filepath.Join(dir, "id_"+typ)
	if passphrase != "" {
		p += "_encrypted"
	}
	keygen(t, typ, passphrase, p)
	return p
}

// Agent starts ssh-agent for the test and returns its socket.
func Agent(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		Skip(t, "ssh-agent: "+err.Error())
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("ssh-agent did not create its socket")
	return ""
}

// AgentAdd loads key into the agent at sock.
func AgentAdd(t testing.TB, sock, key string) {
	t.Helper()
	cmd := exec.Command("ssh-add", key)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add %s: %v\n%s", key, err, out)
	}
}

func keygen(t testing.TB, typ, passphrase, path string) {
	t.Helper()
	args := []string{"-q", "-t", typ, "-N", passphrase, "-f", path, "-C", "star-deploy-test"}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		if _, lookErr := exec.LookPath("ssh-keygen"); lookErr != nil {
			Skip(t, "ssh-keygen is not installed (apt-get install openssh-client)")
		}
		t.Fatalf("ssh-keygen %s: %v\n%s", typ, err, out)
	}
}

func readPublic(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func freePort(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func currentUser(t testing.TB) string {
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
