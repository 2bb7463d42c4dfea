package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// gatedReader yields data, stopping halfway until gate is closed (or ctx
// ends). It has Len, so Put streams it instead of spooling it first.
type gatedReader struct {
	ctx     context.Context
	data    []byte
	off     int
	reached chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func newGatedReader(ctx context.Context, n int) *gatedReader {
	return &gatedReader{ctx: ctx, data: make([]byte, n), reached: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gatedReader) Len() int { return len(g.data) - g.off }

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.off >= len(g.data)/2 {
		g.once.Do(func() { close(g.reached) })
		select {
		case <-g.gate:
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	}
	if g.off >= len(g.data) {
		return 0, io.EOF
	}
	n := copy(p, g.data[g.off:])
	g.off += n
	return n, nil
}

// openContainer opens the container id, closed when t ends.
func openContainer(t *testing.T, id string, data map[string]string) connectors.Connector {
	t.Helper()
	c, err := sshtest.Open(t, connectors.NewRegistry(NewFactory()), "@docker/"+id, data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// containerRoot is the container's root directory seen from this machine,
// /proc/PID/root of its first process: the engine runs no exec and no
// inspect while a copy into the container is in progress.
func containerRoot(t *testing.T, id string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", id).Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join("/proc", strings.TrimSpace(string(out)), "root")
}

// temps lists "mode size name" of the temporary files in dir under root.
func temps(t *testing.T, root, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if !strings.Contains(e.Name(), ".star-deploy-") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			found = append(found, fmt.Sprintf("%o %d %s", fi.Mode().Perm(), fi.Size(), e.Name()))
		}
	}
	return found
}

// waitTemp waits until a temporary file shows in dir and returns its
// "mode size name".
func waitTemp(t *testing.T, root, dir string) string {
	t.Helper()
	for range 200 {
		if f := temps(t, root, dir); len(f) > 0 {
			return strings.Join(f, ", ")
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("no temporary file showed up during the upload")
	return ""
}

// TestPutTempMode0600: the temporary file is 0600 while the upload runs,
// whatever mode the file gets at the end.
func TestPutTempMode0600(t *testing.T) {
	id := busyboxContainer(t)
	c := openContainer(t, id, nil)
	root := containerRoot(t, id)
	src := newGatedReader(t.Context(), 1<<20)
	done := make(chan error, 1)
	go func() { done <- c.Put(t.Context(), "/tmp/f", src, 0o644) }()
	<-src.reached
	tmp := waitTemp(t, root, "/tmp")
	close(src.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("during the upload: %s", tmp)
	if !strings.HasPrefix(tmp, "600 ") || !strings.Contains(tmp, " .star-deploy-") {
		t.Errorf("temporary file during the upload: %s, want mode 600 and a .star-deploy- name", tmp)
	}
	if res, _ := c.Run(t.Context(), connectors.Command{Script: "stat -c %a /tmp/f"}); strings.TrimSpace(string(res.Stdout)) != "644" {
		t.Errorf("mode after the put: %s, want 644", res.Stdout)
	}
}

// TestPutCancelledRemovesTemp: Ctrl-C (ctx cancelled) in the middle of an
// upload leaves the old file and no temporary file.
func TestPutCancelledRemovesTemp(t *testing.T) {
	id := busyboxContainer(t)
	c := openContainer(t, id, nil)
	root := containerRoot(t, id)
	if err := c.Put(t.Context(), "/tmp/f", strings.NewReader("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := newGatedReader(ctx, 4<<20)
	done := make(chan error, 1)
	go func() { done <- c.Put(ctx, "/tmp/f", src, 0o644) }()
	<-src.reached
	t.Logf("during the upload: %s", waitTemp(t, root, "/tmp"))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled put: %v, want context.Canceled", err)
	}
	if f := temps(t, root, "/tmp"); len(f) != 0 {
		t.Errorf("after the cancelled put: %q", f)
	}
	if res, _ := c.Run(t.Context(), connectors.Command{Script: "cat /tmp/f"}); string(res.Stdout) != "old\n" {
		t.Errorf("after the cancelled put /tmp/f holds %q", res.Stdout)
	}
}

// dyingProxy forwards a unix socket to the Docker engine's until more than
// after bytes went to the engine; then it closes every connection and
// stops listening, as an engine that went away.
func dyingProxy(t *testing.T, after int64) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	var once sync.Once
	die := func() {
		once.Do(func() {
			l.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(die)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			e, err := net.Dial("unix", "/var/run/docker.sock")
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, e)
			mu.Unlock()
			go func() {
				io.Copy(c, e)
				c.(*net.UnixConn).CloseWrite()
			}()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 && sent.Add(int64(n)) > after {
						die()
						return
					}
					if n > 0 {
						e.Write(buf[:n])
					}
					if err != nil {
						e.(*net.UnixConn).CloseWrite()
						return
					}
				}
			}()
		}
	}()
	return "unix://" + sock
}

// TestLostEngineLeftoversRemovedNextRun: the engine connection dies in the
// middle of a put; the temporary file it leaves in the container is
// removed by the next run that writes to that directory.
func TestLostEngineLeftoversRemovedNextRun(t *testing.T) {
	id := busyboxContainer(t)
	c := openContainer(t, id, nil)
	root := containerRoot(t, id)
	if _, err := c.Run(t.Context(), connectors.Command{Script: "mkdir -p /srv/d"}); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "s.star")
	os.WriteFile(script, []byte(`put("/srv/d/big", content = "x" * (8 << 20))
put("/srv/d/small", content = "small\n")
`), 0o644)
	run := func(data map[string]string) sdrt.HostResult {
		f := NewFactory()
		target, err := f.Parse(id, data)
		if err != nil {
			t.Fatal(err)
		}
		r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(f)})
		p, err := r.Compile(t.Context(), script, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{{Name: target.Name, Target: target}}).Hosts[0]
	}

	if res := run(map[string]string{"docker_host": dyingProxy(t, 4<<20)}); res.Err == nil {
		t.Fatal("the run through the dying engine connection succeeded")
	}
	left := temps(t, root, "/srv/d")
	t.Logf("after the lost engine: %q", left)
	if len(left) == 0 {
		t.Fatal("the lost connection left no temporary file; the test does not cut mid-put")
	}
	time.Sleep(2100 * time.Millisecond) // older than the next run, in whole seconds
	if res := run(nil); res.Err != nil {
		t.Fatal(res.Err)
	}
	if left := temps(t, root, "/srv/d"); len(left) != 0 {
		t.Errorf("after the next run: %q", left)
	}
}
