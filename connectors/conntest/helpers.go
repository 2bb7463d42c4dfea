package conntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// run runs script on c and fails the test on an error (not on a non-zero
// exit status).
func run(t T, c connectors.Connector, script string) connectors.Result {
	t.Helper()
	res, err := c.Run(t.Context(), connectors.Command{Script: script})
	if err != nil {
		t.Fatalf("run %q: %v", script, err)
	}
	return res
}

// runOK runs script, requires exit status 0 and returns its stdout.
func runOK(t T, c connectors.Connector, script string) string {
	t.Helper()
	res := run(t, c, script)
	if res.ExitCode != 0 {
		t.Fatalf("run %q: exit status %d, stderr %q", script, res.ExitCode, res.Stderr)
	}
	return string(res.Stdout)
}

// render renders cmd with w and fails the test on an error.
func render(t T, cmd string, w connectors.Wrap) string {
	t.Helper()
	s, err := connectors.Render(cmd, w)
	if err != nil {
		t.Fatalf("render %q: %v", cmd, err)
	}
	return s
}

// put writes content to dst on c and fails the test on an error.
func put(t T, c connectors.Connector, dst string, content []byte, mode fs.FileMode) {
	t.Helper()
	if err := c.Put(t.Context(), dst, bytes.NewReader(content), mode); err != nil {
		t.Fatalf("put %s: %v", dst, err)
	}
}

// get reads src from c and fails the test on an error.
func get(t T, c connectors.Connector, src string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := c.Get(t.Context(), src, &b); err != nil {
		t.Fatalf("get %s: %v", src, err)
	}
	return b.Bytes()
}

// equalBytes reports a mismatch of got and want without dumping megabytes.
func equalBytes(t T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d; first difference at offset %d (got %q, want %q)",
		what, len(got), len(want), i, excerpt(got, i), excerpt(want, i))
}

func excerpt(b []byte, i int) []byte {
	return b[i:min(len(b), i+16)]
}

// listDir returns the names in dir (including dot files), sorted.
func listDir(t T, c connectors.Connector, dir string) []string {
	t.Helper()
	out := runOK(t, c, "ls -A "+connectors.Quote(dir))
	names := strings.Fields(out)
	sort.Strings(names)
	return names
}

// fileMode returns the permission bits of path in octal, as stat prints them.
func fileMode(t T, c connectors.Connector, path string) string {
	t.Helper()
	q := connectors.Quote(path)
	return strings.TrimSpace(runOK(t, c, "stat -c %a "+q+" 2>/dev/null || stat -f %Lp "+q))
}

// readPID reads a process id that a script wrote to path.
func readPID(t T, c connectors.Connector, path string) int {
	t.Helper()
	s := strings.TrimSpace(string(get(t, c, path)))
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %s holds %q, want a process id", path, s)
	}
	return pid
}

// aliveScript exits 0 while process %d runs. A zombie, which only waits for
// its parent to reap it, counts as gone.
const aliveScript = `pid=%d
kill -0 "$pid" 2>/dev/null || exit 1
if [ -r "/proc/$pid/stat" ]; then
  state=$(sed 's/.*) //' "/proc/$pid/stat" | cut -c1)
  case "$state" in Z|X) exit 1;; esac
fi
exit 0`

// requireGone polls the host until every pid has exited, and fails the test
// if one is still running after about five seconds.
func requireGone(t T, c connectors.Connector, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		gone := false
		for range 50 {
			if run(t, c, fmt.Sprintf(aliveScript, pid)).ExitCode != 0 {
				gone = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !gone {
			t.Errorf("process %d still runs after its command was stopped", pid)
			_, _ = c.Run(context.WithoutCancel(t.Context()), connectors.Command{Script: fmt.Sprintf("kill -9 %d", pid)})
		}
	}
}

// signalWriter calls fn once, when the bytes written so far contain marker.
type signalWriter struct {
	mu     sync.Mutex
	seen   []byte
	marker string
	fn     func()
	done   bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.seen = append(w.seen, p...)
		if bytes.Contains(w.seen, []byte(w.marker)) {
			w.done = true
			w.fn()
		}
	}
	return len(p), nil
}

// gateReader yields first, then blocks until release is closed (or ctx
// ends), then yields rest. reached is closed when the reader blocks, which
// is after the connector consumed all of first.
type gateReader struct {
	ctx     context.Context
	first   io.Reader
	rest    io.Reader
	reached chan struct{}
	release chan struct{}
	blocked bool
}

func (g *gateReader) Read(p []byte) (int, error) {
	if n, err := g.first.Read(p); n > 0 || !errors.Is(err, io.EOF) {
		return n, err
	}
	if !g.blocked {
		g.blocked = true
		close(g.reached)
		select {
		case <-g.release:
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	}
	return g.rest.Read(p)
}

// failingReader yields r and then fails with err instead of io.EOF.
type failingReader struct {
	r   io.Reader
	err error
}

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, f.err
	}
	return n, err
}

// callReader calls fn on every Read and reports io.EOF, so that in an
// io.MultiReader fn runs exactly when the data before it is used up.
type callReader func()

func (f callReader) Read([]byte) (int, error) {
	f()
	return 0, io.EOF
}
