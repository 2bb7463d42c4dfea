package local_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/connectors/local"
)

func open(t *testing.T) connectors.Connector {
	t.Helper()
	f := local.NewFactory()
	tg, err := f.Parse("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Open(t.Context(), tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSuite(t *testing.T) {
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		return open(t), t.TempDir()
	})
}

func TestFactory(t *testing.T) {
	f := local.NewFactory()
	if f.Scheme() != "local" || f.Doc() == "" || len(f.Fields()) != 0 {
		t.Errorf("scheme %q, doc %q, fields %v", f.Scheme(), f.Doc(), f.Fields())
	}
	tg, err := f.Parse("", nil)
	if err != nil || tg.Name != "@local" || tg.Scheme != "local" {
		t.Errorf("Parse(\"\") = %+v, %v", tg, err)
	}
	if _, err := f.Parse("web1", nil); err == nil || !strings.Contains(err.Error(), "@local takes no address") {
		t.Errorf("Parse(\"web1\") error = %v, want \"@local takes no address\"", err)
	}
	if _, err := f.Parse("", map[string]string{"local_x": "1"}); err == nil {
		t.Errorf("Parse with a data key: no error")
	}
	c := open(t)
	if c.Target().Name != "@local" || !c.Capabilities().AtomicPut || c.Capabilities().PTY {
		t.Errorf("target %+v, capabilities %+v", c.Target(), c.Capabilities())
	}
}

func TestRegistryAtLocalWithAddr(t *testing.T) {
	r := connectors.NewRegistry(local.NewFactory())
	if _, err := r.Target("@local/db1", nil); err == nil || !strings.Contains(err.Error(), "@local takes no address") {
		t.Errorf("Target(@local/db1) error = %v", err)
	}
	tg, err := r.Target("@local", map[string]string{"role": "web"})
	if err != nil || tg.Name != "@local" {
		t.Errorf("Target(@local) = %+v, %v", tg, err)
	}
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func TestCancelKillsGrandchildren(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "f")
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	// The grandchild runs in a nested shell and ignores SIGTERM, so only
	// the SIGKILL to the whole process group stops it.
	script := `sh -c 'trap "" TERM; sleep 100 & echo $! > ` + connectors.Quote(pidFile) + `; wait'`
	start := time.Now()
	_, err := open(t).Run(ctx, connectors.Command{Script: script})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want one wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %v after a 500ms deadline", d)
	}
	pid := readPid(t, pidFile)
	for range 50 {
		if !alive(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("grandchild %d survived the cancelled command", pid)
}

func TestBackgroundProcessDoesNotHangRun(t *testing.T) {
	t.Parallel()
	// A daemon left holding stdout delays Run by about a second, not forever,
	// and a normal exit does not kill it.
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	start := time.Now()
	res, err := open(t).Run(t.Context(), connectors.Command{
		Script: `sleep 30 & echo $! > ` + connectors.Quote(pidFile) + `; echo started`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "started\n" || res.ExitCode != 0 {
		t.Errorf("exit %d, stdout %q", res.ExitCode, res.Stdout)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %v", d)
	}
	pid := readPid(t, pidFile)
	if !alive(pid) {
		t.Errorf("background process %d of a finished command was killed", pid)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func TestPutErrors(t *testing.T) {
	c := open(t)
	dir := t.TempDir()
	err := c.Put(t.Context(), filepath.Join(dir, "nope", "f"), strings.NewReader("x"), 0o644)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "nope")) {
		t.Errorf("put into a missing directory: %v", err)
	}
	if err := c.Put(t.Context(), dir+"/", strings.NewReader("x"), 0o644); err == nil {
		t.Errorf("put to a path ending in / succeeded")
	}
	if err := c.Put(t.Context(), dir, strings.NewReader("x"), 0o644); err == nil {
		t.Errorf("put over a directory succeeded")
	}
	if err := c.Put(t.Context(), filepath.Join(dir, "nil"), nil, 0o644); err != nil {
		t.Errorf("put with a nil reader: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "nil" {
		t.Errorf("directory holds %v, want only nil", entries)
	}
}

// readPid returns the process id that a test's script wrote to path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}
