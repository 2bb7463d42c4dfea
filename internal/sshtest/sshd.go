package sshtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Skip skips t with reason, except under CI=true, where a skipped test is a
// failure: CI installs everything the tests need. It has the semantics of
// internal/startest.Skip without that package's dependencies.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot skip under CI=true: %s", reason)
	}
	t.Skip(reason)
}

// Options configure the sshd that Start runs. The zero value is ready to use.
type Options struct {
	// Addr is the loopback IP address to listen on, "127.0.0.1" when
	// empty. Any of 127.0.0.1–127.0.0.254 works on Linux without setup.
	Addr string
	// Listen are more loopback IP addresses to listen on, on a free port
	// of each; an address may repeat (one more port each time). Each is
	// a host of its own for a client (Server.Listeners). sshd caps its
	// listening sockets at 16 (MAX_LISTEN_SOCKS in sshd.c): at most 15.
	Listen []string
	// HostKeyTypes are the host key types, in ssh-keygen -t names
	// ("ed25519", "rsa", "ecdsa"); ed25519 and rsa when empty.
	HostKeyTypes []string
	// MaxSessions is sshd's MaxSessions (sessions per connection); 64 when 0.
	MaxSessions int
	// MaxStartups is sshd's MaxStartups (unauthenticated connections); 200
	// when 0.
	MaxStartups int
	// ExtraConfig are more sshd_config lines. They come before the
	// defaults, so they override them (sshd keeps the first value of a
	// keyword); a "Match" line and everything after it go at the end.
	ExtraConfig []string
}

// maxListen is MAX_LISTEN_SOCKS of OpenSSH's sshd.c: the listening sockets
// one sshd process may have (it exits with "Too many listen sockets" past it).
const maxListen = 16

// Server is a running sshd. It is stopped (SIGTERM, then wait) when the
// test that started it ends, and its log is written to the test log when
// that test failed.
type Server struct {
	Addr            string   // host:port, e.g. "127.0.0.2:41234"
	Listeners       []string // every host:port it listens on: Addr, then one per Options.Listen
	Host            string   // the IP address, e.g. "127.0.0.2"
	Port            int      // the TCP port
	User            string   // the current user's name: sshd runs as it and accepts only it
	ClientKeyPath   string   // an unencrypted ed25519 private key that the server accepts
	ClientPublicKey string   // its public key, authorized_keys format
	HostPublicKeys  []string // the host keys, "ssh-ed25519 AAAA...", in HostKeyTypes order
	Dir             string   // the server's private directory (config, keys, log)

	sshd, config, logPath, authorizedKeys string

	mu   sync.Mutex
	cmd  *exec.Cmd     // the running sshd
	done chan struct{} // closed when cmd has been waited for
}

// Start starts sshd for the lifetime of t, listening on a free port of
// opts.Addr. It skips t (fails it under CI=true) when sshd or ssh-keygen is
// not installed, and fails t with sshd's log when sshd does not come up
// within about five seconds. The current user's account must not be
// locked: sshd without PAM refuses locked accounts (such as nobody).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	sshd := findProgram("sshd", "/usr/sbin/sshd")
	if sshd == "" {
		Skip(t, "sshd is not installed (apt-get install openssh-server)")
	}
	opts.fill(t)
	// sshd insists on its privilege separation directory even as non-root.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		Skip(t, "sshd needs the directory /run/sshd, which cannot be created: "+err.Error())
	}

	dir := t.TempDir()
	s := &Server{
		Host:           opts.Addr,
		User:           currentUser(t),
		Dir:            dir,
		sshd:           sshd,
		config:         filepath.Join(dir, "sshd_config"),
		logPath:        filepath.Join(dir, "sshd.log"),
		authorizedKeys: filepath.Join(dir, "authorized_keys"),
	}
	var hostKeys bytes.Buffer
	for _, typ := range opts.HostKeyTypes {
		key := filepath.Join(dir, "ssh_host_"+typ+"_key")
		pub := keygen(t, typ, "", key)
		s.HostPublicKeys = append(s.HostPublicKeys, stripComment(pub))
		fmt.Fprintf(&hostKeys, "HostKey %s\n", key)
	}
	s.ClientKeyPath = filepath.Join(dir, "id_ed25519")
	s.ClientPublicKey = keygen(t, "ed25519", "", s.ClientKeyPath)
	if err := os.WriteFile(s.authorizedKeys, []byte(s.ClientPublicKey+"\n"), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}

	base := s.baseConfig(opts, hostKeys.Bytes())

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshtest: sshd log of %s (%s):\n%s", s.Addr, s.config, s.Log())
		}
	})
	t.Cleanup(s.stop) // runs before the log dump above
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		s.Port = freePort(t, opts.Addr)
		s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
		s.Listeners = []string{s.Addr}
		for _, a := range opts.Listen {
			l := net.JoinHostPort(a, strconv.Itoa(freePort(t, a)))
			if slices.Contains(s.Listeners, l) {
				l = net.JoinHostPort(a, strconv.Itoa(freePort(t, a))) // a retry binds it, if it is taken again
			}
			s.Listeners = append(s.Listeners, l)
		}
		var conf string
		for _, l := range s.Listeners {
			conf += "ListenAddress " + l + "\n"
		}
		conf += base
		if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
			t.Fatalf("sshtest: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		if !strings.Contains(s.Log(), "Bind to port") {
			break // not a port race: retrying does not help
		}
	}
	t.Fatalf("sshtest: sshd on %s: %v\n%s", s.Addr, lastErr, s.Log())
	return nil
}

// fill checks opts.Addr and opts.Listen and fills in the defaults of unset options.
func (opts *Options) fill(t testing.TB) {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1"
	}
	for _, a := range append([]string{opts.Addr}, opts.Listen...) {
		if ip := net.ParseIP(a); ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			t.Fatalf("sshtest: Options.Addr or Listen %q is not an IPv4 loopback address (127.x.y.z)", a)
		}
	}
	if len(opts.Listen) > maxListen-1 {
		t.Fatalf("sshtest: Options.Listen has %d addresses; sshd listens on at most %d sockets (MAX_LISTEN_SOCKS)", len(opts.Listen), maxListen)
	}
	if len(opts.HostKeyTypes) == 0 {
		opts.HostKeyTypes = []string{"ed25519", "rsa"}
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = 64
	}
	if opts.MaxStartups == 0 {
		opts.MaxStartups = 200
	}
}

// baseConfig is sshd_config but for ListenAddress: the ExtraConfig lines
// before its first Match, then hostKeys and the settings of the test
// server, then the Match blocks (which must come last).
func (s *Server) baseConfig(opts Options, hostKeys []byte) string {
	// bash sources ~/.bashrc for commands run by sshd, unless it is nested
	// (SHLVL >= 1): keep the test machine's own shell setup (pyenv and the
	// like, slow and racy under load) out of sessions. sshd keeps only the
	// first SetEnv line, so an ExtraConfig one gets SHLVL=1 added.
	setEnv := "SetEnv SHLVL=1"
	var head, match []string
	for i, l := range opts.ExtraConfig {
		f := strings.Fields(l)
		if len(f) > 0 && strings.EqualFold(f[0], "Match") {
			match = opts.ExtraConfig[i:]
			break
		}
		if len(f) > 0 && strings.EqualFold(f[0], "SetEnv") && setEnv != "" {
			if !strings.Contains(l, "SHLVL=") {
				l += " SHLVL=1"
			}
			setEnv = ""
		}
		head = append(head, l)
	}
	var cfg bytes.Buffer
	for _, l := range head {
		cfg.WriteString(l + "\n")
	}
	cfg.Write(hostKeys)
	fmt.Fprintf(&cfg, "AuthorizedKeysFile %s\n", s.authorizedKeys)
	fmt.Fprintf(&cfg, "PidFile %s\n", filepath.Join(s.Dir, "sshd.pid"))
	fmt.Fprintf(&cfg, "MaxSessions %d\nMaxStartups %d\n", opts.MaxSessions, opts.MaxStartups)
	cfg.WriteString("StrictModes no\nUsePAM no\nPubkeyAuthentication yes\n" +
		"PasswordAuthentication no\nKbdInteractiveAuthentication no\n" +
		"Subsystem sftp internal-sftp\nAllowTcpForwarding yes\nAllowAgentForwarding yes\n" +
		"PrintMotd no\nLogLevel VERBOSE\n")
	if setEnv != "" {
		cfg.WriteString(setEnv + "\n")
	}
	if os.Geteuid() == 0 {
		cfg.WriteString("PermitRootLogin yes\n")
	}
	for _, l := range match {
		cfg.WriteString(l + "\n")
	}
	return cfg.String()
}

// start runs sshd with the current config and waits until it answers.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.sshd, "-D", "-e", "-f", s.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Setpgid keeps a terminal's ^C from reaching sshd before the test has
	// cleaned up; Pdeathsig stops sshd when the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.sshd, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	err = waitBanner(s.Addr, 5*time.Second, done)
	// sshd binds every listener before it accepts on any, and carries on
	// when only some binds fail ("Bind to port ... failed" in its log).
	for _, l := range s.Listeners {
		if err == nil && l != s.Addr {
			err = readBanner(l)
		}
	}
	if err != nil {
		killTree(cmd.Process.Pid)
		<-done
		return err
	}
	return nil
}

// stop ends sshd and its connection processes: SIGTERM, then SIGKILL for
// whatever is left after five seconds.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pids := descendants(s.cmd.Process.Pid)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		killTree(s.cmd.Process.Pid)
		<-s.done
	}
	for _, pid := range pids[1:] { // connection processes are not our children
		syscall.Kill(pid, syscall.SIGKILL)
	}
	s.cmd = nil
}

// Kill kills sshd, its connection processes and the commands they run with
// SIGKILL, all at once: for a client the server vanishes mid-transfer.
// The port stays closed until Restart.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	killTree(s.cmd.Process.Pid)
	<-s.done
	s.cmd = nil
}

// Restart stops sshd (when it runs) and starts it again on the same address
// with the same keys. Existing connections are closed.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	if err := s.start(); err != nil {
		t.Fatalf("sshtest: restart sshd on %s: %v\n%s", s.Addr, err, s.Log())
	}
}

// Log returns what sshd has logged so far (LogLevel VERBOSE).
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(b)
}

// AuthorizeKey adds pub to the keys the server accepts: a public key in
// authorized_keys format (as KeyPair returns it) or, when it starts with
// "/", the path of a .pub file. It takes effect for the next
// authentication; sshd needs no restart.
func (s *Server) AuthorizeKey(t testing.TB, pub string) {
	t.Helper()
	if strings.HasPrefix(pub, "/") {
		b, err := os.ReadFile(pub)
		if err != nil {
			t.Fatalf("sshtest: %v", err)
		}
		pub = string(b)
	}
	pub = strings.TrimSpace(pub)
	if pub == "" || strings.Contains(pub, "\n") {
		t.Fatalf("sshtest: AuthorizeKey wants one authorized_keys line, got %q", pub)
	}
	f, err := os.OpenFile(s.authorizedKeys, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(pub + "\n"); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
}

// KnownHostsLine returns the known_hosts entry for the server under the
// name host ("" means s.Host): one line per host key, each ending in a
// newline, such as "[127.0.0.2]:41234 ssh-ed25519 AAAA...\n".
func (s *Server) KnownHostsLine(host string) string {
	if host == "" {
		host = s.Host
	}
	return knownHosts(host, s.Port, s.HostPublicKeys)
}

// ListenersKnownHosts returns the known_hosts entries of every listener
// (Listeners), one line per listener and host key.
func (s *Server) ListenersKnownHosts() string {
	var b strings.Builder
	for _, l := range s.Listeners {
		host, port, _ := net.SplitHostPort(l)
		p, _ := strconv.Atoi(port)
		b.WriteString(knownHosts(host, p, s.HostPublicKeys))
	}
	return b.String()
}

// knownHosts formats known_hosts lines for keys of host:port.
func knownHosts(host string, port int, keys []string) string {
	if port != 22 {
		host = fmt.Sprintf("[%s]:%d", host, port)
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", host, k)
	}
	return b.String()
}

// waitBanner waits until addr sends an SSH version banner, for at most
// limit, or until exited is closed (the server died).
func waitBanner(addr string, limit time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("sshd exited before it listened on %s", addr)
		default:
		}
		if err = readBanner(addr); err == nil {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("no SSH banner from %s within %v: %w", addr, limit, err)
}

// readBanner connects to addr and reads the first line the server sends.
// A TCP connect alone proves nothing with docker's port proxy, which
// accepts before the container listens.
func readBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if !bytes.HasPrefix(buf[:n], []byte("SSH-")) {
		return fmt.Errorf("no SSH banner from %s (read %q: %v)", addr, buf[:n], err)
	}
	return nil
}

// freePort returns a port of ip that was free a moment ago.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("sshtest: listen on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func currentUser(t testing.TB) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshtest: current user: %v", err)
	}
	return u.Username
}

// findProgram returns the absolute path of name, looked up in PATH and
// then at fallback (sbin directories are often not in a user's PATH), or "".
func findProgram(name, fallback string) string {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	if fallback != "" {
		if st, err := os.Stat(fallback); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return fallback
		}
	}
	return ""
}
