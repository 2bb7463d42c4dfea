package main

import (
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// tempLeft lists the files in dir whose names say star-deploy wrote them as
// temporary files (this version's .star-deploy-… and older versions'
// .NAME.star-deploy-…), with their total size.
func tempLeft(t *testing.T, dir string) (names []string, bytes int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".star-deploy-") {
			names = append(names, e.Name())
			if fi, err := e.Info(); err == nil {
				bytes += fi.Size()
			}
		}
	}
	return names, bytes
}

// cutProxy forwards TCP connections to target and, once more than after
// bytes went from client to server in all, closes every connection and
// stops listening: the network is gone, as for a host that lost power.
type cutProxy struct {
	l      net.Listener
	target string
	after  int64
	sent   atomic.Int64
	mu     sync.Mutex
	conns  []net.Conn
	cut    chan struct{}
	once   sync.Once
}

func startCutProxy(t *testing.T, target string, after int64) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target, after: after, cut: make(chan struct{})}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, s)
	p.mu.Unlock()
	go func() {
		io.Copy(c, s)
		c.(*net.TCPConn).CloseWrite()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if p.sent.Add(int64(n)) > p.after {
				p.close()
				return
			}
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			s.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

func (p *cutProxy) close() {
	p.once.Do(func() {
		close(p.cut)
		p.l.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
}

// TestSSHCutMidPutLeftoversRemovedNextRun: the connection to a real sshd
// is cut in the middle of uploads. Through the Perl server the upload's
// temporary file goes with it (the server removes it as it quits); over
// SFTP (ssh_perl_files=false) the cut leaves it, and the next run that
// writes to that directory removes it, so no .star-deploy-* file stays.
func TestSSHCutMidPutLeftoversRemovedNextRun(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	const size = 16 << 20
	src := t.TempDir()
	big := make([]byte, size)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		writeFile(t, src, n, string(big[:size-len(n)])+n)
	}
	dest := filepath.Join(t.TempDir(), "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	script := writeFile(t, src, "s.star", `
for n in ["a", "b", "c", "d"]:
    put(`+q(dest)+` + "/" + n, src = n)
`)
	args := func(addr string, perlFiles bool) []string {
		return []string{"--key", srv.ClientKeyPath, "--user", srv.User,
			"--data", "ssh_known_hosts_file=" + filepath.Join(t.TempDir(), "kh"),
			"--data", "ssh_allow_agent=false", "--data", "ssh_connect_retries=0", "--data", "ssh_keepalive_interval=1",
			"--data", "ssh_perl_files=" + strconv.FormatBool(perlFiles), "@ssh/" + addr, script}
	}

	// Cut in the middle of the second and third file (uploads go in
	// parallel --parallel hosts, one host here: one file after the other).
	cut := func(perlFiles bool) {
		t.Helper()
		proxy := startCutProxy(t, srv.Addr, size*5/2)
		code, out, errOut := runCLI(t, args(proxy.l.Addr().String(), perlFiles)...)
		if code != 1 {
			t.Fatalf("the run through the cut connection (ssh_perl_files=%v): exit %d, want 1\n%s\n%s", perlFiles, code, out, errOut)
		}
	}
	cut(true)
	// The host's side learns of the cut when sshd reads its end.
	for i := 0; ; i++ {
		names, n := tempLeft(t, dest)
		if len(names) == 0 {
			break
		}
		if i == 100 {
			t.Fatalf("the Perl server left %d temporary files (%d bytes) after the cut: %q", len(names), n, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, f := range []string{"a", "b", "c", "d"} {
		os.Remove(filepath.Join(dest, f)) // so that the next run uploads them all again
	}
	cut(false)
	names, n := tempLeft(t, dest)
	t.Logf("after the cut: %d temporary files, %d bytes left: %q", len(names), n, names)
	if len(names) == 0 {
		t.Fatal("the cut left no temporary file over SFTP; the test does not cut mid-put")
	}

	// Leftovers are removed when older than the next run, on the host's
	// clock in whole seconds; the Perl server's sweep removes them.
	time.Sleep(2100 * time.Millisecond)
	code, out, errOut := runCLI(t, args(srv.Addr, true)...)
	if code != 0 {
		t.Fatalf("the second run: exit %d\n%s\n%s", code, out, errOut)
	}
	names, n = tempLeft(t, dest)
	t.Logf("after the next run: %d temporary files, %d bytes left: %q", len(names), n, names)
	if len(names) != 0 {
		t.Errorf("the next run left %d temporary files (%d bytes): %q", len(names), n, names)
	}
	for _, f := range []string{"a", "b", "c", "d"} {
		if fi, err := os.Stat(filepath.Join(dest, f)); err != nil || fi.Size() != size {
			t.Errorf("%s after the second run: %v %v", f, fi, err)
		}
	}
}

// TestPutUnknownUserKeepsOldFile: put(user="nosuchuser") fails and leaves
// the old file, whole, and no temporary file, on @local and over SSH.
func TestPutUnknownUserKeepsOldFile(t *testing.T) {
	hosts := map[string]func(t *testing.T) []string{
		"local": func(t *testing.T) []string { return []string{"@local"} },
		"ssh": func(t *testing.T) []string {
			srv := sshtest.Start(t, sshtest.Options{})
			return []string{"--key", srv.ClientKeyPath, "--user", srv.User,
				"--data", "ssh_known_hosts_file=" + filepath.Join(t.TempDir(), "kh"),
				"--data", "ssh_allow_agent=false", "@ssh/" + srv.Addr}
		},
	}
	for name, host := range hosts {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dest := writeFile(t, dir, "config", "old content\n")
			script := writeFile(t, t.TempDir(), "s.star", `put(`+q(dest)+`, content = "new content\n", user = "nosuchuser")`)
			code, out, errOut := runCLI(t, append(host(t), script)...)
			if code != 1 || !strings.Contains(out, "nosuchuser") {
				t.Errorf("exit %d, want 1 and an error naming the user\n%s\n%s", code, out, errOut)
			}
			if b, _ := os.ReadFile(dest); string(b) != "old content\n" {
				t.Errorf("after the failed put the file holds %q, want the old content", b)
			}
			if names, _ := tempLeft(t, dir); len(names) != 0 {
				t.Errorf("the failed put left %q", names)
			}
		})
	}
}

// TestLocalPutAsRootKeepsOwner: as root on @local, put without user= and
// group= keeps an existing file's owner and group, as SSH and Docker do.
func TestLocalPutAsRootKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can give a file to another user")
	}
	dest := writeFile(t, t.TempDir(), "config", "old\n")
	if err := os.Chown(dest, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	script := writeFile(t, t.TempDir(), "s.star", `put(`+q(dest)+`, content = "new\n")`)
	if code, out, errOut := runCLI(t, "@local", script); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if b, _ := os.ReadFile(dest); string(b) != "new\n" || st.Uid != 65534 || st.Gid != 65534 || fi.Mode().Perm() != 0o644 {
		t.Errorf("after put: %q owned by %d:%d mode %v, want \"new\\n\" owned by 65534:65534 mode 0644", b, st.Uid, st.Gid, fi.Mode().Perm())
	}
}

// TestSSHSudoPutRemovesRootLeftovers: a put with sudo=True removes the
// root-owned temporary files an earlier run left in the directory, as
// root, in the probe it makes anyway; a look-alike of another program stays.
func TestSSHSudoPutRemovesRootLeftovers(t *testing.T) {
	c := sshtest.Fleet(t, 1)[0]
	const left, other = "/etc/.star-deploy-0123456789ab-motd.Ab12Cd", "/etc/.star-deploy-download.Ab12Cd"
	if out, err := c.Exec(t, "sh", "-c", "touch -d '1 hour ago' "+left+" "+other+" && ls -l "+left); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	script := writeFile(t, t.TempDir(), "s.star", `put("/etc/star-deploy-sweep", content = "x\n", sudo = True)`)
	code, out, errOut := runCLI(t, append(sshArgs(t, c, sshtest.UserNopasswd), "@ssh/"+c.Addr, script)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	ls, _ := c.Exec(t, "sh", "-c", "ls -a /etc | grep star-deploy || true")
	if strings.Contains(ls, path.Base(left)) || !strings.Contains(ls, path.Base(other)) {
		t.Errorf("/etc after a sudo put holds:\n%s\nwant %s removed and %s kept", ls, left, other)
	}
}
