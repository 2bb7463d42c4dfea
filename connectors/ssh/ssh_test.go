package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// testFactory returns a factory whose home directory is a fresh temporary
// one, so the developer's ~/.ssh never takes part.
func testFactory(t *testing.T) (*Factory, string) {
	t.Helper()
	home := t.TempDir()
	f := NewFactory(Options{})
	f.env = configEnv{User: "nobody-local", Home: home}
	return f, home
}

// open connects to srv with data on top of the server's user and key.
func open(t *testing.T, f *Factory, srv *sshtest.Server, data map[string]string) (connectors.Connector, error) {
	t.Helper()
	d := map[string]string{"ssh_key": srv.ClientKeyPath, "ssh_user": srv.User, "ssh_allow_agent": "false"}
	for k, v := range data {
		d[k] = v
	}
	return sshtest.Open(t, connectors.NewRegistry(f), srv.Addr, d)
}

func mustOpen(t *testing.T, f *Factory, srv *sshtest.Server, data map[string]string) connectors.Connector {
	t.Helper()
	c, err := open(t, f, srv, data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t *testing.T, c connectors.Connector, script string) connectors.Result {
	t.Helper()
	res, err := c.Run(t.Context(), connectors.Command{Script: script})
	if err != nil {
		t.Fatalf("run %q: %v", script, err)
	}
	return res
}

// TestConformance runs the connector suite over a real sshd on loopback,
// as root (the test's user), on persistent shells.
func TestConformance(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, _ := testFactory(t)
		conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
			c := mustOpen(t, f, srv, server)
			checkNotSession(t, c)
			return c, t.TempDir()
		})
	})
}

func TestAuthKeyTypes(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(typ, func(t *testing.T) {
			key, _ := sshtest.KeyPair(t, typ, "")
			srv.AuthorizeKey(t, key+".pub")
			f, _ := testFactory(t)
			c := mustOpen(t, f, srv, map[string]string{"ssh_key": key})
			if got := run(t, c, "echo ok").Stdout; string(got) != "ok\n" {
				t.Errorf("stdout %q", got)
			}
		})
	}
}

func TestAuthEncryptedKey(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	key, _ := sshtest.KeyPair(t, "ed25519", "correct horse")
	srv.AuthorizeKey(t, key+".pub")

	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, map[string]string{"ssh_key": key, "ssh_key_password": "correct horse"})
	run(t, c, "true")

	f, _ = testFactory(t)
	_, err := open(t, f, srv, map[string]string{"ssh_key": key})
	if err == nil || !strings.Contains(err.Error(), "is encrypted: set ssh_key_password") {
		t.Errorf("no passphrase, no terminal: err = %v", err)
	}

	f, _ = testFactory(t)
	_, err = open(t, f, srv, map[string]string{"ssh_key": key, "ssh_key_password": "wrong-canary"})
	if err == nil || !strings.Contains(err.Error(), "wrong passphrase") || strings.Contains(err.Error(), "wrong-canary") {
		t.Errorf("wrong passphrase: err = %v", err)
	}

	asked := 0
	f, _ = testFactory(t)
	f.opts.Prompt = func(q string) (string, error) { asked++; return "correct horse", nil }
	for range 3 {
		c := mustOpen(t, f, srv, map[string]string{"ssh_key": key})
		run(t, c, "true")
	}
	if asked != 1 {
		t.Errorf("asked for the passphrase %d times for 3 connections, want once", asked)
	}
}

func TestAuthAgent(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	sock, addKey := sshtest.Agent(t)
	key, _ := sshtest.KeyPair(t, "ed25519", "")
	srv.AuthorizeKey(t, key+".pub")
	addKey(key, "")
	os.Remove(key) // only the agent has it now
	f, _ := testFactory(t)
	t.Setenv("SSH_AUTH_SOCK", sock)
	c := mustOpen(t, f, srv, map[string]string{"ssh_key": "", "ssh_allow_agent": "true"})
	run(t, c, "true")

	f, _ = testFactory(t)
	if _, err := open(t, f, srv, map[string]string{"ssh_key": "", "ssh_allow_agent": "false"}); err == nil {
		t.Error("connected without the agent and without a key")
	}
}

func TestHostKeyModes(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, home := testFactory(t)
	kh := filepath.Join(home, "kh")

	// yes: an unknown host is refused.
	_, err := open(t, f, srv, map[string]string{"ssh_known_hosts_file": kh, "ssh_strict_host_key_checking": "yes"})
	if err == nil || !strings.Contains(err.Error(), "is not known") || !strings.Contains(err.Error(), "ssh-keyscan -p "+strconv.Itoa(srv.Port)) {
		t.Fatalf("yes, unknown host: err = %v", err)
	}
	// accept-new: recorded once, then known.
	mustOpen(t, f, srv, map[string]string{"ssh_known_hosts_file": kh})
	mustOpen(t, f, srv, map[string]string{"ssh_known_hosts_file": kh, "ssh_strict_host_key_checking": "yes"})
	b, _ := os.ReadFile(kh)
	if n := strings.Count(string(b), "\n"); n != 1 || !strings.HasPrefix(string(b), fmt.Sprintf("[%s]:%d ", srv.Host, srv.Port)) {
		t.Errorf("known_hosts after accept-new:\n%s", b)
	}
	if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", st.Mode().Perm())
	}
}

func TestChangedHostKeyRefusedBeforeAnythingRuns(t *testing.T) {
	old := sshtest.Start(t, sshtest.Options{})
	f, home := testFactory(t)
	kh := filepath.Join(home, "kh")
	// Another server's keys, recorded under this server's address.
	other := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.3"})
	lines := strings.ReplaceAll(other.KnownHostsLine(""), fmt.Sprintf("[%s]:%d", other.Host, other.Port), fmt.Sprintf("[%s]:%d", old.Host, old.Port))
	os.WriteFile(kh, []byte("# comment\n"+lines), 0o600)
	marker := filepath.Join(t.TempDir(), "ran")

	f2, _ := testFactory(t)
	f2.env.Home = home
	c, err := open(t, f2, old, map[string]string{"ssh_known_hosts_file": kh})
	if err == nil {
		run(t, c, "touch "+marker)
	}
	var changed *HostKeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("err = %v, want *HostKeyChangedError", err)
	}
	msg := err.Error()
	for _, want := range []string{kh + ":2", fmt.Sprintf("ssh-keygen -R '[%s]:%d' -f %s", old.Host, old.Port, kh), "man-in-the-middle"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a command ran on a host whose key changed")
	}
	_ = f
}

// A known_hosts line holding only the RSA key, while the server also offers
// ed25519: the client must ask for RSA (golang/go#29286).
func TestKnownRSAOnlyWhileServerOffersEd25519(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{HostKeyTypes: []string{"ed25519", "rsa"}})
	f, home := testFactory(t)
	kh := filepath.Join(home, "kh")
	var rsaLine string
	for _, l := range strings.Split(srv.KnownHostsLine(""), "\n") {
		if strings.Contains(l, "ssh-rsa") {
			rsaLine = l
		}
	}
	os.WriteFile(kh, []byte("garbage line that does not parse\n"+rsaLine+"\n"), 0o600)
	c := mustOpen(t, f, srv, map[string]string{"ssh_known_hosts_file": kh, "ssh_strict_host_key_checking": "yes"})
	run(t, c, "true")
}

// Many hosts connecting at once under accept-new record each key exactly once.
func TestAcceptNewConcurrent(t *testing.T) {
	const servers, perServer = 10, 5
	var srvs []*sshtest.Server
	for i := range servers {
		srvs = append(srvs, sshtest.Start(t, sshtest.Options{Addr: fmt.Sprintf("127.0.0.%d", 10+i), HostKeyTypes: []string{"ed25519"}}))
	}
	f, home := testFactory(t)
	kh := filepath.Join(home, ".ssh", "known_hosts")
	var wg sync.WaitGroup
	errs := make(chan error, servers*perServer)
	for _, srv := range srvs {
		for range perServer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				target, _ := f.Parse(srv.Addr, map[string]string{"ssh_key": srv.ClientKeyPath, "ssh_user": srv.User, "ssh_allow_agent": "false"})
				c, err := f.Open(t.Context(), target)
				if err != nil {
					errs <- err
					return
				}
				c.Close()
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, _ := os.ReadFile(kh)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != servers {
		t.Errorf("known_hosts has %d lines after %d connections to %d new hosts, want %d:\n%s", len(lines), servers*perServer, servers, servers, b)
	}
}

func TestConnectTimeoutCoversHandshake(t *testing.T) {
	// A server that accepts TCP and never says a word.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	f, _ := testFactory(t)
	target, err := f.Parse(l.Addr().String(), map[string]string{"ssh_connect_timeout": "0.5", "ssh_allow_agent": "false", "ssh_password": "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Open(t.Context(), target)
	if err == nil || !strings.Contains(err.Error(), "timed out after 500ms") {
		t.Errorf("err = %v, want a handshake timeout", err)
	}
}

func TestConnectRefusedIsRetriedThenFails(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	f, _ := testFactory(t)
	target, _ := f.Parse(addr, map[string]string{"ssh_connect_retries": "1", "ssh_allow_agent": "false", "ssh_password": "x"})
	_, err := f.Open(t.Context(), target)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want connection refused", err)
	}
}

func TestProxyJumpTwoHops(t *testing.T) {
	a := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.21"})
	b := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.22"})
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.23"})
	f, home := testFactory(t)
	cfg := filepath.Join(home, "config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Host hop-a
  HostName %s
  Port %d
  User %s
  IdentityFile %s
Host hop-b
  HostName %s
  Port %d
  User %s
  IdentityFile %s
Host *
  UserKnownHostsFile %s
  IdentitiesOnly yes
`, a.Host, a.Port, a.User, a.ClientKeyPath, b.Host, b.Port, b.User, b.ClientKeyPath, filepath.Join(home, "kh"))), 0o600)

	// Each hop logs the login that the jump made through it, and the target
	// is reached only through them.
	c := mustOpen(t, f, target, map[string]string{"ssh_config_file": cfg, "ssh_proxy_jump": "hop-a,hop-b"})
	run(t, c, "true")
	for _, hop := range []*sshtest.Server{a, b} {
		if !strings.Contains(hop.Log(), "Accepted publickey") {
			t.Errorf("hop %s saw no login:\n%s", hop.Addr, hop.Log())
		}
	}
	// One hop, and "none" from the data overriding a jump of the config.
	c1 := mustOpen(t, f, target, map[string]string{"ssh_config_file": cfg, "ssh_proxy_jump": "hop-b"})
	run(t, c1, "true")
	if n := strings.Count(b.Log(), "Accepted publickey"); n != 2 {
		t.Errorf("hop-b logged %d logins, want 2", n)
	}
	if n := strings.Count(a.Log(), "Accepted publickey"); n != 1 {
		t.Errorf("hop-a logged %d logins, want 1 (the one-hop connection must not use it)", n)
	}
}

// slowReader yields n bytes of 'x', calling at once after the first half.
type slowReader struct {
	n, sent int
	half    func()
	fired   bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.sent >= r.n {
		return 0, io.EOF
	}
	if !r.fired && r.sent >= r.n/2 {
		r.fired = true
		r.half()
		time.Sleep(200 * time.Millisecond)
	}
	k := min(len(p), r.n-r.sent, 32<<10)
	for i := range k {
		p[i] = 'x'
	}
	r.sent += k
	return k, nil
}

// sshd dies in the middle of an upload: the put fails and the old file is
// still there, whole.
func TestServerKilledMidUploadKeepsOldFile(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, home := testFactory(t)
	data := map[string]string{"ssh_known_hosts_file": filepath.Join(home, "kh")}
	dst := filepath.Join(t.TempDir(), "config")
	c := mustOpen(t, f, srv, data)
	if err := c.Put(t.Context(), dst, strings.NewReader("old content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := c.Put(t.Context(), dst, &slowReader{n: 16 << 20, half: srv.Kill}, 0o644)
	if err == nil {
		t.Fatal("put succeeded although sshd was killed halfway")
	}
	t.Logf("put failed as it should: %v", err)
	if b, _ := os.ReadFile(dst); string(b) != "old content\n" {
		t.Errorf("after the failed put the file holds %d bytes, want the old content", len(b))
	}
}

// A server that stops answering (its connection process stopped) fails a
// running command within a few keepalive intervals, not hours later.
func TestKeepaliveFailsStalledServer(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, home := testFactory(t)
	c := mustOpen(t, f, srv, map[string]string{"ssh_known_hosts_file": filepath.Join(home, "kh"), "ssh_keepalive_interval": "0.3"})
	run(t, c, "true")
	stall(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := c.Run(ctx, connectors.Command{Script: "true"})
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "keepalives") {
		t.Errorf("run on a stalled server: err = %v (context: %v), want a keepalive failure", err, ctx.Err())
	}
}

// stall stops every sshd connection process of srv until the test ends:
// the TCP connections stay open but silent.
func stall(t *testing.T, srv *sshtest.Server) {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(srv.Dir, "sshd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("pgrep", "-P", strings.TrimSpace(string(pid))).Output()
	stopped := strings.Fields(string(out))
	if len(stopped) == 0 {
		t.Fatal("found no sshd connection process")
	}
	for _, p := range stopped {
		exec.Command("kill", "-STOP", p).Run()
	}
	t.Cleanup(func() {
		for _, p := range stopped {
			exec.Command("kill", "-CONT", p).Run()
		}
	})
}

// A command that needs a new shell on a server that stops answering
// returns when its context ends, keepalives off: opening the shell's
// session does not wait for the host past the context.
func TestShellStartStalledServerCancels(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, home := testFactory(t)
	c := mustOpen(t, f, srv, map[string]string{"ssh_known_hosts_file": filepath.Join(home, "kh"), "ssh_keepalive_interval": "0"})
	if live, _ := shellCounts(c); live != 0 {
		t.Fatalf("%d shells before the first command: the test does not test", live)
	}
	stall(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, connectors.Command{Script: "true"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("run on a stalled server: %v, want the context's deadline", err)
		}
	case <-time.After(20 * time.Second): // a hang guard, not a measurement
		t.Fatal("Run did not return after its context ended")
	}
}

func TestLargeOutputAndHugePut(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, home := testFactory(t)
	c := mustOpen(t, f, srv, map[string]string{"ssh_known_hosts_file": filepath.Join(home, "kh")})
	// Within max_output it comes back whole; beyond, cut to the cap.
	res, err := c.Run(t.Context(), connectors.Command{Script: "head -c 52428800 /dev/zero | tr '\\0' a", MaxOutput: 64 << 20})
	if err != nil || len(res.Stdout) != 50<<20 || res.Stdout[len(res.Stdout)-1] != 'a' || res.StdoutDropped != 0 {
		t.Errorf("50 MiB of output came back as %d bytes (%v)", len(res.Stdout), err)
	}
	res = run(t, c, "head -c 52428800 /dev/zero | tr '\\0' a")
	if len(res.Stdout) != connectors.DefaultMaxOutput || res.StdoutDropped != 50<<20-connectors.DefaultMaxOutput {
		t.Errorf("50 MiB of output with the default cap: kept %d bytes, dropped %d", len(res.Stdout), res.StdoutDropped)
	}
	res.Stdout = nil

	if testing.Short() {
		t.Skip("the 1 GiB put is skipped with -short")
	}
	const size = 1 << 30
	dst := filepath.Join(t.TempDir(), "huge")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := uint64(0)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err = c.Put(t.Context(), dst, io.LimitReader(zeroReader{}, size), 0o600)
	close(done)
	<-exited
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dst); err != nil || st.Size() != size {
		t.Errorf("the uploaded file: %v, %v", st, err)
	}
	grew := int64(peak) - int64(before.HeapAlloc)
	t.Logf("1 GiB put: the Go heap grew by at most %.1f MiB", float64(grew)/(1<<20))
	if grew > 64<<20 {
		t.Errorf("a 1 GiB put grew the heap by %d MiB: it must stream", grew>>20)
	}
	os.Remove(dst)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Strictness "no" connects to a host whose recorded key is wrong (with
// a key: no password is sent to it, see TestHostKeyMismatchWithholdsPassword).
func TestHostKeyCheckingNo(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	other := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.4"})
	f, home := testFactory(t)
	var warned []string
	f.opts.Warn = func(msg string) { warned = append(warned, msg) }
	kh := filepath.Join(home, "kh")
	lines := strings.ReplaceAll(other.KnownHostsLine(""), fmt.Sprintf("[%s]:%d", other.Host, other.Port), fmt.Sprintf("[%s]:%d", srv.Host, srv.Port))
	os.WriteFile(kh, []byte(lines), 0o600)
	c := mustOpen(t, f, srv, map[string]string{"ssh_known_hosts_file": kh, "ssh_strict_host_key_checking": "no"})
	run(t, c, "true")
	if len(warned) != 2 || !strings.Contains(warned[0], "NOT verified") || !strings.Contains(warned[1], kh+":1") {
		t.Errorf("warnings %q, want one that checking is off and one naming the mismatching line %s:1", warned, kh)
	}
	if b, _ := os.ReadFile(kh); string(b) != lines {
		t.Error("strictness no wrote to known_hosts")
	}
}

// The conformance suite over a real Debian host in a container, as a
// non-root user with sudo, on persistent shells.
func TestConformanceDebian(t *testing.T) {
	ct := sshtest.Fleet(t, 1)[0]
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, home := testFactory(t)
		server["ssh_known_hosts_file"] = filepath.Join(home, "kh")
		conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
			c, err := open(t, f, &sshtest.Server{Addr: ct.Addr, Host: ct.Host, Port: ct.Port, User: sshtest.UserNopasswd, ClientKeyPath: ct.ClientKeyPath}, server)
			if err != nil {
				t.Fatal(err)
			}
			checkNotSession(t, c)
			scratch := strings.TrimSpace(string(run(t, c, "mktemp -d").Stdout))
			return c, scratch
		})
	})
}
