package conntest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// Sizes used by the suite.
const (
	largeOutput = 8 << 20   // bytes of stdout a command produces
	largeStdin  = 4 << 20   // bytes of stdin fed to a command
	hugeFile    = 100 << 20 // bytes streamed through Put and Get
	// maxHeap bounds how much the live Go heap may grow while hugeFile bytes
	// go up and come back: a streaming connector needs a few buffers (an
	// SFTP client keeps some packets in flight), one that holds the file
	// needs at least its size.
	maxHeap = 32 << 20
)

// adversarial is a value that breaks any quoting short of the correct one.
const adversarial = "-it's \"q\" $HOME $(id) `id` \\ \\n back\\slash\nnew line\ttab héllo ☃ *"

// Check runs the conformance tests against a connector, reporting to t,
// which is a *testing.T (see Suite) or the runner of `star-deploy
// connector test` (see Run). open is called once per subtest with that
// subtest's t; it returns an open Connector and the path of an empty
// directory on the target host that the test may write into. open should
// register its own clean-up (closing the connector, removing the
// directory) with t.Cleanup; the suite closes the connector as well, to
// check that Close is idempotent.
//
// The subtests named in skip are left out, each with its reason: for a
// connector that cannot pass them by design (an in-memory fake runs no
// shell). A name is relative to the suite, as go test prints it:
// "RunStdin", "PutGetRoundTrip/from_host".
//
// Check does not run subtests in parallel: the streaming subtest measures
// the Go heap and must not share the process with other work.
func Check(t T, open func(t T) (conn connectors.Connector, scratch string), skip map[string]string) {
	t.Helper()
	s := &suite{open: open, root: t.Name(), skip: skip}
	tests := []struct {
		name string
		fn   func(t T, c connectors.Connector, scratch string)
	}{
		{"Target", s.target},
		{"RunExitCodes", s.runExitCodes},
		{"RunStdoutStderr", s.runStdoutStderr},
		{"RunLargeOutput", s.runLargeOutput},
		{"RunMaxOutput", s.runMaxOutput},
		{"RunStdin", s.runStdin},
		{"RunEnvChdir", s.runEnvChdir},
		{"RunLiveOutput", s.runLiveOutput},
		{"RunConcurrent", s.runConcurrent},
		{"RunTimeout", s.runTimeout},
		{"RunCancel", s.runCancel},
		{"PutGetRoundTrip", s.putGetRoundTrip},
		{"PutGetStreaming", s.putGetStreaming},
		{"PutMode", s.putMode},
		{"GetMissing", s.getMissing},
		{"PutMissingDir", s.putMissingDir},
		{"PutAtomicReplace", s.putAtomicReplace},
		{"PutFailureKeepsOld", s.putFailureKeepsOld},
	}
	for _, tt := range tests {
		s.subtest(t, tt.name, func(t T) {
			c, scratch := s.openConn(t)
			tt.fn(t, c, scratch)
		})
	}
}

// CutReader returns a reader that gives a few bytes, then fails once ctx
// ends, as an input stream cut by Ctrl-C does: for tests of what a
// cancelled command or upload leaves behind.
func CutReader(ctx context.Context) io.Reader { return &cutReader{ctx: ctx} }

type cutReader struct {
	ctx  context.Context
	sent bool
}

func (r *cutReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, "partial content\n"), nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

type suite struct {
	open func(t T) (connectors.Connector, string)
	root string            // the name of the suite's test
	skip map[string]string // subtest name (relative to root) -> why it is skipped
}

// subtest runs fn as the subtest name of t, unless the suite skips it.
func (s *suite) subtest(t T, name string, fn func(t T)) {
	t.Helper()
	t.Run(name, func(t T) {
		if reason, ok := s.skip[strings.TrimPrefix(t.Name(), s.root+"/")]; ok {
			t.Skip(reason)
		}
		fn(t)
	})
}

func (s *suite) openConn(t T) (connectors.Connector, string) {
	t.Helper()
	c, scratch := s.open(t)
	if c == nil {
		t.Fatal("open returned a nil connector")
	}
	t.Cleanup(func() {
		for i := range 2 {
			if err := c.Close(); err != nil {
				t.Errorf("close #%d: %v", i+1, err)
			}
		}
	})
	if !path.IsAbs(scratch) {
		t.Fatalf("scratch directory %q is not an absolute path", scratch)
	}
	if names := listDir(t, c, scratch); len(names) > 0 {
		t.Fatalf("scratch directory %s is not empty: %q", scratch, names)
	}
	return c, scratch
}

func (s *suite) target(t T, c connectors.Connector, _ string) {
	tg := c.Target()
	if tg.Scheme == "" || tg.Name == "" {
		t.Errorf("Target() = %+v, want a scheme and a name", tg)
	}
	if n := c.Capabilities().MaxSessions; n < 0 {
		t.Errorf("Capabilities().MaxSessions = %d, want >= 0", n)
	}
}

func (s *suite) runExitCodes(t T, c connectors.Connector, _ string) {
	for _, tt := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"true", 0},
		{"exit 1", 1},
		{"false", 1},
		{"exit 42", 42},
		{"exit 255", 255},
		{"command_that_does_not_exist_xyzzy", 127},
		{"kill -9 $$", 128 + 9},
	} {
		res, err := c.Run(t.Context(), connectors.Command{Script: tt.script})
		if err != nil {
			t.Errorf("run %q: a non-zero exit status must not be an error, got %v", tt.script, err)
			continue
		}
		if res.ExitCode != tt.want {
			t.Errorf("run %q: exit status %d, want %d", tt.script, res.ExitCode, tt.want)
		}
		if res.Duration <= 0 {
			t.Errorf("run %q: Duration %v, want > 0", tt.script, res.Duration)
		}
	}
}

func (s *suite) runStdoutStderr(t T, c connectors.Connector, _ string) {
	res := run(t, c, `printf 'out 1\n'; printf 'err 1\n' >&2; printf 'out 2'; printf 'err 2' >&2; exit 3`)
	if res.ExitCode != 3 {
		t.Errorf("exit status %d, want 3", res.ExitCode)
	}
	equalBytes(t, "stdout", res.Stdout, []byte("out 1\nout 2"))
	equalBytes(t, "stderr", res.Stderr, []byte("err 1\nerr 2"))

	res = run(t, c, "true")
	if len(res.Stdout) != 0 || len(res.Stderr) != 0 {
		t.Errorf("true: stdout %q, stderr %q, want both empty", res.Stdout, res.Stderr)
	}
}

func (s *suite) runLargeOutput(t T, c connectors.Connector, _ string) {
	// Both streams at once, so a connector that drains one before the
	// other deadlocks here instead of in production.
	script := fmt.Sprintf(`(head -c %d /dev/zero | tr '\0' e >&2) &
head -c %d /dev/zero | tr '\0' x
wait`, largeOutput/2, largeOutput)
	res := run(t, c, script)
	if res.ExitCode != 0 {
		t.Fatalf("exit status %d, stderr %.200q", res.ExitCode, res.Stderr)
	}
	equalBytes(t, "stdout", res.Stdout, bytes.Repeat([]byte("x"), largeOutput))
	equalBytes(t, "stderr", res.Stderr, bytes.Repeat([]byte("e"), largeOutput/2))
}

// runMaxOutput checks that a Result keeps the head and the tail of each
// stream within Command.MaxOutput and counts the rest, while the live
// writer still gets everything.
func (s *suite) runMaxOutput(t T, c connectors.Connector, _ string) {
	const limit = 64 << 10
	var out, errOut bytes.Buffer
	for i := 1; i <= 200000; i++ {
		fmt.Fprintf(&out, "%d\n", i)
		if i <= 100000 {
			fmt.Fprintf(&errOut, "%d\n", i)
		}
	}
	var live SyncBuffer
	res, err := c.Run(t.Context(), connectors.Command{Script: "seq 1 100000 >&2; seq 1 200000", Stdout: &live, MaxOutput: limit})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || res.MaxOutput != limit {
		t.Fatalf("exit status %d, MaxOutput %d, want 0 and %d", res.ExitCode, res.MaxOutput, limit)
	}
	equalBytes(t, "live stdout", live.Bytes(), out.Bytes())
	for _, st := range []struct {
		name     string
		got, all []byte
		dropped  int64
	}{{"stdout", res.Stdout, out.Bytes(), res.StdoutDropped}, {"stderr", res.Stderr, errOut.Bytes(), res.StderrDropped}} {
		want := append(bytes.Clone(st.all[:limit/2]), st.all[len(st.all)-limit/2:]...)
		equalBytes(t, st.name, st.got, want)
		if w := int64(len(st.all) - limit); st.dropped != w {
			t.Errorf("%s: %d bytes dropped, want %d", st.name, st.dropped, w)
		}
	}

	res = run(t, c, "echo hi")
	if res.MaxOutput != connectors.DefaultMaxOutput || res.StdoutDropped != 0 || res.StderrDropped != 0 {
		t.Errorf("default: MaxOutput %d, dropped %d and %d, want %d, 0 and 0", res.MaxOutput, res.StdoutDropped, res.StderrDropped, connectors.DefaultMaxOutput)
	}
}

func (s *suite) runStdin(t T, c connectors.Connector, scratch string) {
	binary := make([]byte, 0, 3*256)
	for range 3 {
		for b := range 256 {
			binary = append(binary, byte(b))
		}
	}
	large := randomBytes(largeStdin, 1)
	for _, tt := range []struct {
		name  string
		stdin []byte
	}{
		{"text", []byte("hello\nwörld\n")},
		{"no trailing newline", []byte("last line")},
		{"binary", binary},
		{"large", large},
	} {
		s.subtest(t, tt.name, func(t T) {
			res, err := c.Run(t.Context(), connectors.Command{Script: "cat", Stdin: bytes.NewReader(tt.stdin)})
			if err != nil {
				t.Fatalf("run cat: %v", err)
			}
			if res.ExitCode != 0 {
				t.Fatalf("cat: exit status %d, stderr %q", res.ExitCode, res.Stderr)
			}
			equalBytes(t, "stdout of cat", res.Stdout, tt.stdin)
		})
	}
	s.subtest(t, "wc", func(t T) {
		res, err := c.Run(t.Context(), connectors.Command{Script: "wc -c", Stdin: bytes.NewReader(large)})
		if err != nil {
			t.Fatalf("run wc: %v", err)
		}
		if got := strings.TrimSpace(string(res.Stdout)); got != fmt.Sprint(len(large)) {
			t.Errorf("wc -c = %q, want %d", got, len(large))
		}
	})
	s.subtest(t, "unread", func(t T) {
		// A command that ignores its input must still finish.
		res, err := c.Run(t.Context(), connectors.Command{Script: "echo done", Stdin: bytes.NewReader(large)})
		if err != nil {
			t.Fatalf("run with unread stdin: %v", err)
		}
		if string(res.Stdout) != "done\n" || res.ExitCode != 0 {
			t.Errorf("got exit %d, stdout %q; want 0, \"done\\n\"", res.ExitCode, res.Stdout)
		}
	})
	s.subtest(t, "cancelled", func(t T) {
		// Input cut short by a cancel is not ended: the command is
		// stopped, and does not go on as if it had all of its input.
		mark := path.Join(scratch, "stdin-complete")
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := c.Run(ctx, connectors.Command{Script: "cat >/dev/null && touch " + connectors.Quote(mark), Stdin: CutReader(ctx)})
		if err == nil {
			t.Fatal("a run cancelled while it read its input succeeded")
		}
		time.Sleep(time.Second) // what the command would do, it does at once
		if got := runOK(t, c, "test -e "+connectors.Quote(mark)+" && echo yes || echo no"); strings.TrimSpace(got) != "no" {
			t.Errorf("the command took its cut-short input for a whole one and went on: %s exists", mark)
		}
	})
	s.subtest(t, "none", func(t T) {
		// Without Stdin, a reading command sees end of input at once.
		if got := runOK(t, c, "wc -c"); strings.TrimSpace(got) != "0" {
			t.Errorf("wc -c without stdin = %q, want 0", got)
		}
	})
}

func (s *suite) runEnvChdir(t T, c connectors.Connector, scratch string) {
	dir := path.Join(scratch, `d i r 'q' "dq" $x`)
	runOK(t, c, "mkdir "+connectors.Quote(dir))
	w := connectors.Wrap{
		Env:   map[string]string{"X": adversarial, "EMPTY": "", "Y_2": "two"},
		Chdir: dir,
	}
	got := runOK(t, c, render(t, `printf '%s|' "$X" "$EMPTY" "$Y_2"; pwd`, w))
	want := adversarial + "||two|" + dir + "\n"
	if got != want {
		t.Errorf("env and chdir:\n got %q\nwant %q", got, want)
	}

	// A command argument quoted with Quote arrives as one intact word.
	got = runOK(t, c, "printf '%s\\n' "+connectors.Quote(adversarial))
	if got != adversarial+"\n" {
		t.Errorf("Quote round trip:\n got %q\nwant %q", got, adversarial+"\n")
	}

	// A failed cd must stop every line of the command, not only the first.
	missing := connectors.Wrap{Chdir: path.Join(scratch, "missing")}
	res := run(t, c, render(t, "echo first; echo second\necho third", missing))
	if res.ExitCode == 0 || len(res.Stdout) != 0 {
		t.Errorf("chdir to a missing directory: exit %d, stdout %q; want non-zero and nothing run", res.ExitCode, res.Stdout)
	}

	// The exit status of the command is the status of the script.
	res = run(t, c, render(t, "false\n# trailing comment", w))
	if res.ExitCode != 1 {
		t.Errorf("wrapped false: exit status %d, want 1", res.ExitCode)
	}
}

func (s *suite) runLiveOutput(t T, c connectors.Connector, _ string) {
	script := fmt.Sprintf(`i=0; while [ $i -lt 200 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
head -c %d /dev/zero | tr '\0' z`, 1<<20)
	var stdout, stderr SyncBuffer
	res, err := c.Run(t.Context(), connectors.Command{Script: script, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "live stdout", stdout.Bytes(), res.Stdout)
	equalBytes(t, "live stderr", stderr.Bytes(), res.Stderr)
	if len(res.Stdout) < 1<<20 || len(res.Stderr) == 0 {
		t.Errorf("got %d bytes of stdout and %d of stderr, want more", len(res.Stdout), len(res.Stderr))
	}

	// One writer for both streams is never written to concurrently (the
	// race detector checks the plain bytes.Buffer).
	var both bytes.Buffer
	res, err = c.Run(t.Context(), connectors.Command{Script: script, Stdout: &both, Stderr: &both})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := both.Len(), len(res.Stdout)+len(res.Stderr); got != want {
		t.Errorf("shared live writer got %d bytes, want %d", got, want)
	}

	// StreamOnly: stdout reaches only the live writer.
	var only SyncBuffer
	res, err = c.Run(t.Context(), connectors.Command{Script: script, Stdout: &only, StreamOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != 0 || len(only.Bytes()) < 1<<20 || len(res.Stderr) == 0 {
		t.Errorf("StreamOnly: Result kept %d bytes of stdout (want 0), the writer got %d, stderr %d", len(res.Stdout), len(only.Bytes()), len(res.Stderr))
	}
}

func (s *suite) runConcurrent(t T, c connectors.Connector, _ string) {
	n := 8
	if m := c.Capabilities().MaxSessions; m > 0 {
		n = min(n, m)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := c.Run(t.Context(), connectors.Command{Script: fmt.Sprintf("sleep 0.1 2>/dev/null || sleep 1; echo %d; exit %d", i, i)})
			if err != nil {
				t.Errorf("run #%d: %v", i, err)
				return
			}
			if string(res.Stdout) != fmt.Sprintf("%d\n", i) || res.ExitCode != i {
				t.Errorf("run #%d: exit %d, stdout %q", i, res.ExitCode, res.Stdout)
			}
		})
	}
	wg.Wait()
}

// sleeper is a script that records its shell's pid and a background
// child's pid, says "ready", and waits far longer than any test.
const sleeper = `sleep 30 &
echo $! > %[1]s/child
echo $$ > %[1]s/pid
echo ready
wait`

func (s *suite) runTimeout(t T, c connectors.Connector, scratch string) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, connectors.Command{Script: fmt.Sprintf(sleeper, connectors.Quote(scratch))})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run past its deadline: error %v, want one wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("run returned %v after a 1s deadline", d)
	}
	requireGone(t, c, readPID(t, c, path.Join(scratch, "pid")), readPID(t, c, path.Join(scratch, "child")))
}

func (s *suite) runCancel(t T, c connectors.Connector, scratch string) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := &signalWriter{marker: "ready\n", fn: cancel}
	_, err := c.Run(ctx, connectors.Command{Script: fmt.Sprintf(sleeper, connectors.Quote(scratch)), Stdout: ready})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: error %v, want one wrapping context.Canceled", err)
	}
	requireGone(t, c, readPID(t, c, path.Join(scratch, "pid")), readPID(t, c, path.Join(scratch, "child")))

	// A context that is already cancelled runs nothing.
	marker := path.Join(scratch, "ran")
	if _, err := c.Run(ctx, connectors.Command{Script: "touch " + connectors.Quote(marker)}); !errors.Is(err, context.Canceled) {
		t.Errorf("run with a cancelled context: error %v, want one wrapping context.Canceled", err)
	}
	if res := run(t, c, "test -e "+connectors.Quote(marker)); res.ExitCode == 0 {
		t.Errorf("run with a cancelled context ran the command")
	}
}

func (s *suite) putGetRoundTrip(t T, c connectors.Connector, scratch string) {
	for _, tt := range []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"text", []byte("hello\r\nwörld\n")},
		{"1MiB random", randomBytes(1<<20, 2)},
	} {
		s.subtest(t, tt.name, func(t T) {
			dst := path.Join(scratch, strings.ReplaceAll(tt.name, " ", "_"))
			put(t, c, dst, tt.content, 0o644)
			equalBytes(t, "get after put", get(t, c, dst), tt.content)
			if got := strings.TrimSpace(runOK(t, c, "wc -c < "+connectors.Quote(dst))); got != fmt.Sprint(len(tt.content)) {
				t.Errorf("size on the host = %s, want %d", got, len(tt.content))
			}
		})
	}
	s.subtest(t, "odd name", func(t T) {
		dst := path.Join(scratch, `it's a "file" $x héllo`)
		put(t, c, dst, []byte("odd"), 0o644)
		equalBytes(t, "get", get(t, c, dst), []byte("odd"))
	})
	s.subtest(t, "replace", func(t T) {
		dst := path.Join(scratch, "replace")
		put(t, c, dst, bytes.Repeat([]byte("long old content "), 100), 0o644)
		put(t, c, dst, []byte("new"), 0o644)
		equalBytes(t, "get after replace", get(t, c, dst), []byte("new"))
	})
	s.subtest(t, "from host", func(t T) {
		// Get reads what the host wrote, not a cache of Put.
		dst := path.Join(scratch, "written-by-shell")
		runOK(t, c, "printf 'from the shell' > "+connectors.Quote(dst))
		equalBytes(t, "get", get(t, c, dst), []byte("from the shell"))
	})
}

func (s *suite) putGetStreaming(t T, c connectors.Connector, scratch string) {
	dst := path.Join(scratch, "huge")
	want := sha256.New()
	if _, err := io.Copy(want, newRandomReader(hugeFile, 3)); err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	peak := watchHeap()
	if err := c.Put(t.Context(), dst, newRandomReader(hugeFile, 3), 0o600); err != nil {
		t.Fatalf("put %d MiB: %v", hugeFile>>20, err)
	}
	got := sha256.New()
	counter := &countingWriter{w: got}
	if err := c.Get(t.Context(), dst, counter); err != nil {
		t.Fatalf("get %d MiB: %v", hugeFile>>20, err)
	}
	grew := peak()

	if counter.n != hugeFile {
		t.Errorf("get returned %d bytes, want %d", counter.n, hugeFile)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("sha256 of the file read back differs from what was put")
	}
	t.Logf("put and get of %d MiB grew the live Go heap by at most %.1f MiB", hugeFile>>20, float64(grew)/(1<<20))
	if grew > maxHeap {
		t.Errorf("put and get of %d MiB grew the live Go heap by %d MiB, want < %d MiB: stream, do not buffer",
			hugeFile>>20, grew>>20, maxHeap>>20)
	}
	runOK(t, c, "rm -f "+connectors.Quote(dst))
}

func (s *suite) putMode(t T, c connectors.Connector, scratch string) {
	dst := path.Join(scratch, "mode")
	// 0777 and 0666 would lose bits to a typical umask of 022 if the mode
	// were left to the umask.
	for _, mode := range []fs.FileMode{0o600, 0o755, 0o777, 0o666, 0o640, 0o400} {
		put(t, c, dst, []byte("m"), mode)
		if got, want := fileMode(t, c, dst), fmt.Sprintf("%o", mode); got != want {
			t.Errorf("put with mode %#o: file has mode %s", mode, got)
		}
	}
}

func (s *suite) getMissing(t T, c connectors.Connector, scratch string) {
	for _, src := range []string{path.Join(scratch, "missing"), path.Join(scratch, "no/such/dir/file")} {
		var b bytes.Buffer
		err := c.Get(t.Context(), src, &b)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("get %s: error %v, want one wrapping fs.ErrNotExist", src, err)
		}
		if err != nil && !strings.Contains(err.Error(), src) {
			t.Errorf("get %s: error %q does not name the file", src, err)
		}
	}
}

func (s *suite) putMissingDir(t T, c connectors.Connector, scratch string) {
	dst := path.Join(scratch, "no", "such", "dir", "file")
	err := c.Put(t.Context(), dst, strings.NewReader("x"), 0o644)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("put %s: error %v, want one wrapping fs.ErrNotExist", dst, err)
	}
	if names := listDir(t, c, scratch); len(names) != 0 {
		t.Errorf("failed put left %q in %s", names, scratch)
	}
}

func (s *suite) putAtomicReplace(t T, c connectors.Connector, scratch string) {
	if !c.Capabilities().AtomicPut {
		t.Skip("connector does not declare AtomicPut")
	}
	if c.Capabilities().MaxSessions == 1 {
		t.Skip("connector allows one session; cannot read while a put is in progress")
	}
	dst := path.Join(scratch, "f")
	oldContent := []byte("old content\n")
	newContent := randomBytes(256<<10, 4)
	put(t, c, dst, oldContent, 0o644)

	gate := &gateReader{
		ctx:     t.Context(),
		first:   bytes.NewReader(newContent[:len(newContent)/2]),
		rest:    bytes.NewReader(newContent[len(newContent)/2:]),
		reached: make(chan struct{}),
		release: make(chan struct{}),
	}
	putErr := make(chan error, 1)
	go func() { putErr <- c.Put(t.Context(), dst, gate, 0o600) }()
	select {
	case <-gate.reached:
	case err := <-putErr:
		t.Fatalf("put returned before reading all its input: %v", err)
	}
	equalBytes(t, "get while a put is half done", get(t, c, dst), oldContent)
	if got := fileMode(t, c, dst); got != "644" {
		t.Errorf("mode while a put is half done = %s, want 644", got)
	}
	close(gate.release)
	if err := <-putErr; err != nil {
		t.Fatalf("put: %v", err)
	}
	equalBytes(t, "get after the put", get(t, c, dst), newContent)
	if got := fileMode(t, c, dst); got != "600" {
		t.Errorf("mode after the put = %s, want 600", got)
	}
	if names := listDir(t, c, scratch); !slices.Equal(names, []string{"f"}) {
		t.Errorf("directory holds %q after the put, want only f", names)
	}
}

var errBoom = errors.New("reader failed on purpose")

func (s *suite) putFailureKeepsOld(t T, c connectors.Connector, scratch string) {
	dst := path.Join(scratch, "f")
	oldContent := []byte("old content\n")
	half := randomBytes(128<<10, 5)
	atomic := c.Capabilities().AtomicPut

	check := func(t T) {
		t.Helper()
		if !atomic {
			return
		}
		equalBytes(t, "content after a failed put", get(t, c, dst), oldContent)
		if names := listDir(t, c, scratch); !slices.Equal(names, []string{"f"}) {
			t.Errorf("directory holds %q after a failed put, want only f", names)
		}
	}

	s.subtest(t, "reader error", func(t T) {
		put(t, c, dst, oldContent, 0o644)
		err := c.Put(t.Context(), dst, failingReader{bytes.NewReader(half), errBoom}, 0o644)
		if !errors.Is(err, errBoom) {
			t.Errorf("put with a failing reader: error %v, want one wrapping the reader's error", err)
		}
		if err != nil && !strings.Contains(err.Error(), dst) {
			t.Errorf("put error %q does not name the file", err)
		}
		check(t)
	})
	s.subtest(t, "cancelled", func(t T) {
		put(t, c, dst, oldContent, 0o644)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := io.MultiReader(bytes.NewReader(half), callReader(cancel), bytes.NewReader(half))
		err := c.Put(ctx, dst, src, 0o644)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("put cancelled midway: error %v, want one wrapping context.Canceled", err)
		}
		check(t)
	})
	s.subtest(t, "get cancelled", func(t T) {
		put(t, c, dst, oldContent, 0o644)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := c.Get(ctx, dst, io.Discard); !errors.Is(err, context.Canceled) {
			t.Errorf("get with a cancelled context: error %v, want one wrapping context.Canceled", err)
		}
	})
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(newRandomReader(int64(n), seed), b); err != nil {
		panic("internal error: " + err.Error())
	}
	return b
}

// newRandomReader returns n deterministic pseudo-random bytes, generated as
// they are read.
func newRandomReader(n int64, seed byte) io.Reader {
	var key [32]byte
	key[0] = seed
	return io.LimitReader(rand.NewChaCha8(key), n)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// watchHeap samples the live heap every few milliseconds until the returned
// function is called, which returns the largest growth seen over the heap
// at the start.
func watchHeap() func() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}
