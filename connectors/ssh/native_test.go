package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// The Perl server's file requests against the files of this machine (the
// sshd runs as the test's user): what each answers, and what it leaves to
// the shell. stdlib's TestNativeSameAsShell compares whole probes with the
// shell's; this test covers the edges of each request.
func TestNativeRequests(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, nil).(*Conn)
	ctx := t.Context()
	if !c.NativeReady(ctx) {
		t.Fatalf("NativeReady false on a host with perl (shell mode %q)", c.ShellMode())
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j := func(p string) string { return filepath.Join(dir, p) }
	small := []byte("hello\x00\n")
	big := make([]byte, hashInServer+1)
	rand.Read(big)
	for name, b := range map[string][]byte{"small": small, "big": big, "empty": nil} {
		if err := os.WriteFile(j(name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(j("small"), 0o640)
	os.Mkdir(j("d"), 0o755)
	os.Symlink("small", j("link"))
	os.Symlink("nothing", j("dangling"))
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}

	if st, err := c.Stat(ctx, j("small"), true); err != nil || st != (connectors.FileStat{Path: j("small"), Exists: true, Type: "file", Mode: 0o640, Owner: me.Username, Group: g.Name, Size: int64(len(small))}) {
		t.Errorf("Stat(small) = %+v, %v", st, err)
	}
	if st, err := c.Stat(ctx, j("d"), false); err != nil || st.Type != "directory" || st.Mode != 0o755 {
		t.Errorf("Stat(d) = %+v, %v", st, err)
	}
	if st, err := c.Stat(ctx, j("link"), false); err != nil || st.Type != "link" || st.Target != "small" || st.Size != 5 {
		t.Errorf("Stat(link) = %+v, %v", st, err)
	}
	if _, err := c.Stat(ctx, j("link"), true); !errors.Is(err, errNotServed) {
		t.Errorf("Stat(link, follow): %v, want it left to the shell", err)
	}
	for _, p := range []string{"missing", "small/below"} {
		if st, err := c.Stat(ctx, j(p), true); err != nil || st != (connectors.FileStat{Path: j(p)}) {
			t.Errorf("Stat(%s) = %+v, %v, want a missing file", p, st, err)
		}
	}
	for _, p := range []string{"relative", dir + "/./small", dir + "/"} {
		if _, err := c.Stat(ctx, p, false); !errors.Is(err, errNotServed) {
			t.Errorf("Stat(%q): %v, want it left to the shell", p, err)
		}
	}

	for name, b := range map[string][]byte{"small": small, "big": big, "empty": nil} {
		want := sha256.Sum256(b)
		if sum, err := c.SHA256(ctx, j(name)); err != nil || sum != hex.EncodeToString(want[:]) {
			t.Errorf("SHA256(%s) = %q, %v", name, sum, err)
		}
	}
	for _, p := range []string{"d", "link", "missing"} {
		if _, err := c.SHA256(ctx, j(p)); err == nil {
			t.Errorf("SHA256(%s): no error", p)
		}
	}

	if b, err := c.ReadFile(ctx, j("link"), 100); err != nil || string(b) != string(small) {
		t.Errorf("ReadFile(link) = %q, %v", b, err)
	}
	if b, err := c.ReadFile(ctx, j("empty"), 100); err != nil || len(b) != 0 {
		t.Errorf("ReadFile(empty) = %q, %v", b, err)
	}
	for _, p := range []string{"missing", "dangling", "small/below"} {
		if _, err := c.ReadFile(ctx, j(p), 100); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%s): %v, want fs.ErrNotExist", p, err)
		}
	}
	if _, err := c.ReadFile(ctx, j("small"), int64(len(small)-1)); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a file larger than max: %v, want an error", err)
	}
	if _, err := c.ReadFile(ctx, j("d"), 100); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a directory: %v, want an error", err)
	}

	// tree: not through links, nil for what is not a directory; a name
	// with a newline, or a listing that reaches max, is the shell's.
	os.Mkdir(j("d/sub"), 0o755)
	os.WriteFile(j("d/sub/x"), nil, 0o644)
	os.Symlink("..", j("d/sub/up"))
	if types, err := c.Tree(ctx, j("d"), 1000); err != nil || !maps.Equal(types, map[string]string{"sub": "directory", "sub/x": "file", "sub/up": "link"}) {
		t.Errorf("Tree(d) = %v, %v", types, err)
	}
	for _, p := range []string{"small", "missing", "dangling"} {
		if types, err := c.Tree(ctx, j(p), 1000); err != nil || types != nil {
			t.Errorf("Tree(%s) = %v, %v, want nil", p, types, err)
		}
	}
	if _, err := c.Tree(ctx, j("d"), 20); !errors.Is(err, errNotServed) {
		t.Errorf("Tree reaching max: %v, want it left to the shell", err)
	}
	os.WriteFile(j("d/sub/new\nline"), nil, 0o644)
	if _, err := c.Tree(ctx, j("d"), 1000); !errors.Is(err, errNotServed) {
		t.Errorf("Tree with a newline in a name: %v, want it left to the shell", err)
	}

	// chmod keeps set-id bits, through links; an unknown owner is the
	// shell's to report.
	if err := c.Chmod(ctx, j("link"), 0o4750); err != nil {
		t.Errorf("Chmod: %v", err)
	}
	if fi, err := os.Stat(j("small")); err != nil || fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o750 {
		t.Errorf("after Chmod 04750: %v, %v", fi.Mode(), err)
	}
	if err := c.Chown(ctx, j("small"), "no-such-user-here", ""); !errors.Is(err, errNotServed) {
		t.Errorf("Chown to an unknown user: %v, want it left to the shell", err)
	}
	if err := c.Chown(ctx, j("small"), me.Username, g.Name); err != nil {
		t.Errorf("Chown to the owner it has: %v", err)
	}

	// Permission denied is the shell's to report, not a missing file.
	if os.Geteuid() != 0 {
		os.Chmod(j("d"), 0)
		if _, err := c.Stat(ctx, j("d/x"), false); !errors.Is(err, errNotServed) {
			t.Errorf("Stat below an unreadable directory: %v, want it left to the shell", err)
		}
		os.Chmod(j("d"), 0o755)
	}

	// One shell answered everything: requests start no shells of their own.
	if live, idle := shellCounts(c); live != 1 || idle != 1 {
		t.Errorf("after the requests: %d shells live, %d idle; want 1 and 1", live, idle)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Stat(cancelled, j("small"), false); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context: %v", err)
	}
}

// Sweep removes what SweepScript removes: the old regular files of other
// runs, not this run's, not links or directories, not recent ones.
func TestNativeSweep(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	for _, mode := range []struct{ name, persistent, perl string }{{"perl", "true", "true"}, {"sh", "true", "false"}, {"session", "false", "false"}} {
		t.Run(mode.name, func(t *testing.T) {
			c := mustOpen(t, f, srv, map[string]string{"ssh_persistent_shell": mode.persistent, "ssh_shell_perl": mode.perl}).(*Conn)
			if got := c.NativeReady(t.Context()); got != (mode.perl == "true") {
				t.Errorf("NativeReady = %v", got)
			}
			dir := t.TempDir()
			r := connectors.Run{ID: "0123456789ab", Start: time.Now()}
			old := time.Now().Add(-time.Hour)
			files := map[string]bool{ // name: swept
				".star-deploy-aaaaaaaaaaaa-f.1": true,
				".star-deploy-0123456789ab-f.1": false, // this run's
				".star-deploy-aaaaaaaaaaa-f.1":  false, // 11 digits
				".star-deploy-AAAAAAAAAAAA-f.1": false, // upper case
				"star-deploy-aaaaaaaaaaaa-f.1":  false,
				"other":                         false,
			}
			for name := range files {
				p := filepath.Join(dir, name)
				os.WriteFile(p, nil, 0o600)
				os.Chtimes(p, old, old)
			}
			recent := ".star-deploy-bbbbbbbbbbbb-f.1"
			os.WriteFile(filepath.Join(dir, recent), nil, 0o600)
			files[recent] = false
			os.Symlink("other", filepath.Join(dir, ".star-deploy-cccccccccccc-l.1"))
			files[".star-deploy-cccccccccccc-l.1"] = false
			os.Mkdir(filepath.Join(dir, ".star-deploy-dddddddddddd-d.1"), 0o755)
			os.Chtimes(filepath.Join(dir, ".star-deploy-dddddddddddd-d.1"), old, old)
			files[".star-deploy-dddddddddddd-d.1"] = false

			c.Sweep(t.Context(), dir, r)
			// The server's sweep is not waited for: the next request is.
			if _, err := c.Stat(t.Context(), dir, false); err != nil && mode.perl == "true" {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dir)
			var left, want []string
			for _, e := range entries {
				left = append(left, e.Name())
			}
			for name, swept := range files {
				if !swept {
					want = append(want, name)
				}
			}
			slices.Sort(want)
			if !slices.Equal(left, want) {
				t.Errorf("left after the sweep:\n%q\nwant\n%q", left, want)
			}
		})
	}
}

// A host without the Perl server (ssh_shell_perl=false) answers no
// request, and a busy pool leaves requests to the shell.
func TestNativeNotServed(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, map[string]string{"ssh_shell_perl": "false"}).(*Conn)
	if c.NativeReady(t.Context()) {
		t.Error("NativeReady with ssh_shell_perl=false")
	}
	if off := mustOpen(t, f, srv, map[string]string{"ssh_perl_files": "false"}).(*Conn); off.NativeReady(t.Context()) {
		t.Error("NativeReady with ssh_perl_files=false")
	}
	if _, err := c.Stat(t.Context(), "/", false); !errors.Is(err, errNotServed) {
		t.Errorf("Stat on the sh server: %v, want it left to the shell", err)
	}
	if live, idle := shellCounts(c); live != 1 || idle != 1 {
		t.Errorf("%d shells live, %d idle; want the sh shell back in the pool", live, idle)
	}

	p := mustOpen(t, f, srv, nil).(*Conn)
	// Fill the pool with commands that wait.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait() // the Runs return before Close
	defer cancel()
	started := make(chan struct{}, maxShells)
	for i := range maxShells {
		wg.Go(func() {
			p.Run(ctx, connectors.Command{Script: "echo " + strconv.Itoa(i) + "; sleep 30", Stdout: signalWriter(started)})
		})
	}
	for range maxShells {
		<-started
	}
	if _, err := p.Stat(t.Context(), "/", false); !errors.Is(err, errNotServed) {
		t.Errorf("Stat with every shell busy: %v, want it left to the shell", err)
	}
}

// signalWriter sends on ch at its first write.
type signalWriter chan struct{}

func (w signalWriter) Write(p []byte) (int, error) {
	select {
	case w <- struct{}{}:
	default:
	}
	return len(p), nil
}

// A request that does not answer (here a stat the test's server makes
// sleep, as on a hung file system) gives way to a cancel at once; its
// shell is retired and the next request gets another.
func TestNativeCancel(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	old := perlServer
	// The sleep goes on after a SIGCHLD (the probe spare exiting) cuts it short.
	hang := "sub qstat {\n\tmy ($p, $hl) = @_;\n"
	if !strings.Contains(old, hang) {
		t.Fatal("the server's qstat has changed: mend this test")
	}
	perlServer = strings.Replace(old, hang, hang+"\tif ($p eq '/hang') { my $e = time + 30; sleep 1 while time < $e }\n", 1)
	defer func() { perlServer = old }()
	c := mustOpen(t, f, srv, nil).(*Conn)
	if !c.NativeReady(t.Context()) {
		t.Fatal("NativeReady false")
	}
	pid := c.shells.idle[0].pid // the server's: it exec'd in place of sh
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Stat(ctx, "/hang", false)
		done <- err
	}()
	// Wait until the request is in flight: the shell is out of the pool.
	for i := 0; ; i++ {
		if live, idle := shellCounts(c); live == 1 && idle == 0 {
			break
		}
		if i == 500 {
			t.Fatal("the request never took a shell")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Stat: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stat did not return after the cancel")
	}
	if st, err := c.Stat(t.Context(), "/", false); err != nil || st.Type != "directory" {
		t.Errorf("the next Stat: %+v, %v", st, err)
	}
	// The stuck server was stopped, not left to sleep on.
	c.Close()
	for i := 0; ; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if i == 200 {
			t.Fatalf("the cancelled request's server (pid %d) still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A small put goes to the Perl server (no SFTP session is started) with
// the SFTP path's steps: the mode with its set-id bits, the old file's
// owner kept, no temporary file left; what the server cannot do (a
// missing directory) is done again over SFTP, whose error is reported.
// TestNativePutStreamed covers larger files.
func TestNativePut(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, nil).(*Conn)
	ctx := t.Context()
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(dst, 1, 1) // daemon: the put keeps it
	}
	if err := c.Put(ctx, dst, strings.NewReader("new\n"), 0o4750|fs.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "new\n" || st.Mode&0o7777 != 0o4750 {
		t.Errorf("after the put: %q, mode %o", b, st.Mode&0o7777)
	}
	if os.Geteuid() == 0 && (st.Uid != 1 || st.Gid != 1) {
		t.Errorf("owner %d:%d, want the old file's 1:1", st.Uid, st.Gid)
	}
	if c.sftp != nil {
		t.Error("an SFTP session started for puts the server could do")
	}
	if err := c.Put(ctx, filepath.Join(dir, "missing", "f"), strings.NewReader("x"), 0o644); err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "directory "+filepath.Join(dir, "missing")) {
		t.Errorf("put into a missing directory: %v", err)
	}
	big := make([]byte, putInServer+1)
	if err := c.Put(ctx, filepath.Join(dir, "big"), bytes.NewReader(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "big")); err != nil || fi.Size() != int64(len(big)) {
		t.Errorf("the large put: %v, %v", fi, err)
	}
	if c.sftp == nil {
		t.Error("the large put did not go over SFTP")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if connectors.IsTempName(e.Name()) {
			t.Errorf("a temporary file is left: %s", e.Name())
		}
	}
}

// A put larger than putInServer streams through the Perl server, no SFTP
// session started: the content, the mode and the owner as for a small
// one; at most putWindow bytes ahead of what the server has written (a
// stopped server stops the reading of the source); a server that cannot
// create the file leaves the put to SFTP, whose error names the
// directory; a rename that fails is the server's error, and no temporary
// file is left.
func TestNativePutStreamed(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, nil).(*Conn)
	ctx := t.Context()
	if !c.NativeReady(ctx) {
		t.Fatal("NativeReady false")
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(dst, 1, 1)
	}
	server := c.shells.idle[0].pid
	const size = 8 << 20
	stopAt := int64(putInServer + 2*putWindow)
	src := &countingSource{n: size, at: stopAt, hook: func() { syscall.Kill(server, syscall.SIGSTOP) }}
	done := make(chan error, 1)
	go func() { done <- c.Put(ctx, dst, src, 0o640) }()
	// Once the server has stopped, reading stops within the window.
	var read int64
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatalf("the source was read to %d bytes and on", read)
		}
		time.Sleep(50 * time.Millisecond)
		if now := src.count(); now == read && now >= stopAt {
			break
		} else {
			read = now
		}
	}
	if limit := stopAt + putWindow + putChunk; read > limit {
		t.Errorf("with the server stopped at %d bytes, %d were read: more than %d (the window)", stopAt, read, limit)
	}
	syscall.Kill(server, syscall.SIGCONT)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size || st.Mode&0o7777 != 0o640 {
		t.Errorf("after the put: %d bytes, mode %o", st.Size, st.Mode&0o7777)
	}
	if os.Geteuid() == 0 && (st.Uid != 1 || st.Gid != 1) {
		t.Errorf("owner %d:%d, want the old file's 1:1", st.Uid, st.Gid)
	}
	want := sha256.New()
	io.Copy(want, &countingSource{n: size})
	if got, _ := os.ReadFile(dst); !bytes.Equal(sha256Sum(got), want.Sum(nil)) {
		t.Error("the file's content differs from what was put")
	}
	if c.sftp != nil {
		t.Error("an SFTP session started for a put the server could do")
	}

	big := make([]byte, putInServer+1)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	err := c.Put(ctx, filepath.Join(dir, "d"), bytes.NewReader(big), 0o644)
	if err == nil || !strings.Contains(err.Error(), "rename: ") || !strings.Contains(err.Error(), filepath.Join(dir, "d")) {
		t.Errorf("put over a directory: %v, want the server's failed rename naming the path", err)
	}
	if c.sftp != nil {
		t.Error("a put that the server began went on over SFTP")
	}
	missing := filepath.Join(dir, "missing")
	if err := c.Put(ctx, filepath.Join(missing, "f"), bytes.NewReader(big), 0o644); err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "directory "+missing) {
		t.Errorf("put into a missing directory: %v", err)
	}
	if st, err := c.Stat(ctx, dst, false); err != nil || st.Size != size {
		t.Errorf("the shell after the failed puts: %+v, %v", st, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if connectors.IsTempName(e.Name()) {
			t.Errorf("a temporary file is left: %s", e.Name())
		}
	}
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// countingSource is n deterministic bytes that counts what was read of
// them, calling hook once at least at bytes have been.
type countingSource struct {
	n, at int64
	hook  func()
	mu    sync.Mutex
	read  int64
}

func (s *countingSource) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read == s.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.n-s.read)]
	for i := range p {
		p[i] = byte((s.read + int64(i)) * 7 >> 3)
	}
	s.read += int64(len(p))
	if s.hook != nil && s.read >= s.at {
		s.hook()
		s.hook = nil
	}
	return len(p), nil
}

func (s *countingSource) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read
}

// The server's flags for a new file are Fcntl's, found without loading it
// here (linux/amd64 or arm64).
func TestPerlNewFileFlags(t *testing.T) {
	i := strings.Index(perlServer, "sub excl {")
	j := strings.Index(perlServer[i:], "\n}\n")
	if i < 0 || j < 0 {
		t.Fatal("the server has no sub excl: mend this test")
	}
	out, err := exec.Command("perl", "-e", perlServer[i:i+j+3]+`my $e = excl(); my $l = $INC{"Fcntl.pm"} ? 1 : 0; require Fcntl;
print "$e $l ", Fcntl::O_WRONLY() | Fcntl::O_CREAT() | Fcntl::O_EXCL()`).CombinedOutput()
	if err != nil {
		t.Fatalf("perl: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 || f[0] != f[2] {
		t.Errorf("the server's flags for a new file and Fcntl's: %q", out)
	}
	if fast := runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64"); fast && len(f) == 3 && f[1] != "0" {
		t.Error("the server loaded Fcntl for its flags")
	}
}
