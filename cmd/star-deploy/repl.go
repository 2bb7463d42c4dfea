package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"go.starlark.net/syntax"
	"golang.org/x/term"

	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// The REPL (star-deploy INVENTORY repl) reads Starlark from stdin, a line
// or a block at a time, and runs each on every host, which connects once
// and keeps its own globals. As in Python's REPL, an expression's value is
// printed (per host: "[web1] 42") and statements just run; a block (def,
// if, for, while) is read until a blank line. Errors are printed per host
// and the REPL goes on. On a terminal it prompts (>>> and ...), edits the
// line, keeps a history (Up, Down) for the session and completes names with
// Tab; from a pipe it reads plain lines and prompts for nothing. Ctrl-C
// interrupts the running line on every host (at a prompt it drops the
// line), Ctrl-D or the end of input exits.

// replStartMsg is what a terminal shows once the hosts are connected.
const replStartMsg = "star-deploy repl on %s: a line or a block (ended by a blank line) runs on every host; Tab completes, Ctrl-C interrupts, Ctrl-D exits\n"

// repl runs the REPL on hosts with runner. The report is nil when no host
// could be opened at all.
func repl(ctx context.Context, runner *sdrt.Runner, hosts []sdrt.Host, out *replOutput, in *os.File) (*sdrt.Report, error) {
	sess, err := runner.OpenSession(ctx, hosts)
	if err != nil {
		return nil, err
	}
	connected := sess.Connected()
	if len(connected) > 0 {
		// The stdlib modules are there without load(), as for an ad-hoc
		// operation: files.line(...) just works.
		if res, err := sess.Eval(ctx, stdlibLoads()); err != nil {
			return nil, fmt.Errorf("internal error: loading the stdlib: %w", err)
		} else if len(res) > 0 && res[0].Err != nil {
			return nil, fmt.Errorf("internal error: loading the stdlib: %w", res[0].Err)
		}
	}
	var lines lineReader
	if term.IsTerminal(int(in.Fd())) && out.terminal {
		t := newTermReader(in, out.stdout, sess.Complete)
		defer t.restore() // also when a SIGTERM came during a read
		lines = t
		names := strings.Join(connected, ", ")
		if len(connected) == 0 {
			names = "no host"
		}
		fmt.Fprintf(out.stderr, replStartMsg, names)
	} else {
		lines = &pipeReader{r: bufio.NewReaderSize(in, 64<<10)}
	}
	// The hosts a line failed on, which make the exit code 1.
	failed := map[string]bool{}
	failAll := func() {
		for _, h := range connected {
			failed[h] = true
		}
	}
	for ctx.Err() == nil && len(connected) > 0 {
		src, err := readChunk(ctx, lines)
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			if _, ok := lines.(*termReader); ok {
				fmt.Fprintln(out.stdout) // the shell's prompt on a line of its own
			}
			break
		}
		if errors.Is(err, errLineInterrupted) {
			continue // Ctrl-C at a prompt drops what was typed
		}
		if err != nil {
			out.compileError(err)
			failAll()
			continue
		}
		if len(bytes.TrimSpace(src)) == 0 {
			continue
		}
		res, err := evalChunk(ctx, sess, src, out)
		if err != nil {
			failAll()
		}
		for _, r := range res {
			if r.Err != nil {
				failed[r.Host] = true
			}
		}
	}
	rep := sess.Close(ctx)
	for i, h := range rep.Hosts {
		if failed[h.Name] && h.Err == nil {
			rep.Hosts[i].Status, rep.Hosts[i].Err = sdrt.StatusFailed, errLineFailed
		}
	}
	return rep, nil
}

// errLineFailed is the error of a host on which a line of the REPL failed.
var errLineFailed = errors.New("a line failed")

// stdlibLoads is a chunk that loads every stdlib module under its name.
func stdlibLoads() []byte {
	names, _ := fs.Glob(stdlib.FS, "*.star")
	var b bytes.Buffer
	for _, n := range names {
		m := strings.TrimSuffix(n, ".star")
		fmt.Fprintf(&b, "load(%s, %s)\n", syntax.Quote("@stdlib//"+n, false), syntax.Quote(m, false))
	}
	return b.Bytes()
}

// evalChunk runs src on every host, with Ctrl-C interrupting it (and only
// it), and prints each host's value or error. The error is one of src
// itself, found before any host ran it.
func evalChunk(ctx context.Context, sess *sdrt.Session, src []byte, out *replOutput) ([]sdrt.ChunkResult, error) {
	lineCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if intr := interruptsFrom(ctx); intr != nil {
		unset := intr.set(func() bool {
			if lineCtx.Err() != nil {
				return false // a second Ctrl-C: the run's handling
			}
			if out.terminal {
				fmt.Fprintln(out.stderr) // after the ^C the terminal shows
			}
			fmt.Fprintln(out.stderr, "star-deploy: interrupted: stopping the line on every host (interrupt again to end the REPL)")
			cancel()
			return true
		})
		defer unset()
	}
	out.startChunk()
	res, err := sess.Eval(lineCtx, src)
	if err != nil {
		out.compileError(err)
		return nil, err
	}
	for _, r := range res {
		out.result(r)
	}
	return res, nil
}

// errLineInterrupted is a Ctrl-C at a terminal's prompt.
var errLineInterrupted = errors.New("interrupted")

// lineReader reads the REPL's input a line at a time; cont says whether
// the line continues a block (the ... prompt).
type lineReader interface {
	readLine(cont bool) (string, error)
}

// readChunk reads one chunk: a line, or a block until a blank line, as
// go.starlark.net's REPL does (syntax.ParseCompoundStmt). It returns the
// source text; a syntax error is an error (a *sdrt.CompileError-like
// message naming <repl>:line:col). The end of input ends a block as a
// blank line would; it returns io.EOF only when nothing was read.
func readChunk(ctx context.Context, lines lineReader) ([]byte, error) {
	var src bytes.Buffer
	var readErr error
	n := 0
	readline := func() ([]byte, error) {
		if readErr != nil {
			return nil, readErr
		}
		line, err := readLineCtx(ctx, lines, n > 0)
		if err != nil {
			readErr = err
			if errors.Is(err, io.EOF) && n > 0 {
				return []byte("\n"), nil // end the block, then EOF
			}
			return nil, err
		}
		n++
		line += "\n"
		src.WriteString(line)
		return []byte(line), nil
	}
	_, err := sdrt.FileOptions().ParseCompoundStmt(sdrt.SessionFile, readline)
	switch {
	case readErr != nil && n == 0:
		return nil, readErr
	case errors.Is(readErr, errLineInterrupted):
		return nil, readErr
	case err != nil:
		return nil, err
	}
	return src.Bytes(), nil
}

// readLineCtx is lines.readLine that returns when ctx is done (SIGTERM,
// or a Ctrl-C of the whole REPL); the read itself is left behind, and the
// process is about to exit.
func readLineCtx(ctx context.Context, lines lineReader, cont bool) (string, error) {
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		l, err := lines.readLine(cont)
		ch <- answer{l, err}
	}()
	select {
	case a := <-ch:
		return a.line, a.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// ---- pipes ----

// pipeReader reads plain lines, without prompts. A line longer than the
// buffer is read whole; input is a person's or a script's lines.
type pipeReader struct{ r *bufio.Reader }

func (p *pipeReader) readLine(bool) (string, error) {
	line, err := p.r.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// ---- terminals ----

// termReader edits lines on a terminal with golang.org/x/term's Terminal:
// history (Up, Down), completion (Tab) and Ctrl-C to drop a line. The
// terminal is raw only while a line is read, so that a Ctrl-C while a
// line runs is a SIGINT.
type termReader struct {
	fd      int
	t       *term.Terminal
	in      *ctrlCReader
	history *history

	mu  sync.Mutex
	raw *term.State // the state to restore while the terminal is raw
}

func newTermReader(in *os.File, stdout io.Writer, complete func(string) []string) *termReader {
	r := &termReader{fd: int(in.Fd()), in: &ctrlCReader{r: in}, history: &history{}}
	r.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{r.in, stdout}, ">>> ")
	r.t.History = r.history
	r.t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' {
			return "", 0, false
		}
		return r.complete(line, pos, complete)
	}
	return r
}

func (r *termReader) readLine(cont bool) (string, error) {
	if w, h, err := term.GetSize(r.fd); err == nil && w > 0 && h > 0 {
		r.t.SetSize(w, h) // a pseudo-terminal may say 0x0: keep 80x24
	}
	prompt := ">>> "
	if cont {
		prompt = "... "
	}
	r.t.SetPrompt(prompt)
	r.mu.Lock()
	state, err := term.MakeRaw(r.fd)
	r.raw = state
	r.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	line, err := r.t.ReadLine()
	r.restore()
	if r.in.interrupted.Swap(false) {
		r.history.drop(line)
		return "", errLineInterrupted
	}
	return line, err
}

// restore puts the terminal back as it was before a read made it raw.
func (r *termReader) restore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.raw != nil {
		term.Restore(r.fd, r.raw)
		r.raw = nil
	}
}

// complete is the Tab key: it completes the name before the cursor (files.li
// to files.line) as far as it is unambiguous, lists the candidates when that
// is no further, and indents (four spaces) where there is no name.
func (r *termReader) complete(line string, pos int, complete func(string) []string) (string, int, bool) {
	start := pos
	for start > 0 && isNameByte(line[start-1]) {
		start--
	}
	word := line[start:pos]
	if word == "" || word[0] >= '0' && word[0] <= '9' || strings.HasPrefix(word, ".") {
		if strings.TrimSpace(line[:pos]) == "" || word == "" {
			return line[:pos] + "    " + line[pos:], pos + 4, true
		}
		return line, pos, true
	}
	cands := complete(word)
	if len(cands) == 0 {
		return line, pos, true
	}
	common := cands[0]
	for _, c := range cands[1:] {
		for !strings.HasPrefix(c, common) {
			common = common[:len(common)-1]
		}
	}
	if len(common) > len(word) {
		return line[:start] + common + line[pos:], start + len(common), true
	}
	if len(cands) > 1 {
		shown := cands
		if len(shown) > 60 {
			shown = append(slices.Clip(shown[:60]), fmt.Sprintf("... (%d more)", len(cands)-60))
		}
		r.t.Write([]byte(strings.Join(shown, "  ") + "\n"))
	}
	return line, pos, true
}

func isNameByte(b byte) bool {
	return b == '_' || b == '.' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// ctrlCReader passes a terminal's input on, turning Ctrl-C (which raw mode
// delivers as a byte) into the end of the line, with ^C shown after it, and
// noting it: x/term's ReadLine would take it for the end of input.
type ctrlCReader struct {
	r           io.Reader
	pending     []byte // read after a Ctrl-C, for the next line
	interrupted atomic.Bool
}

// ctrlCLine is what a Ctrl-C becomes: End, then ^C, then Enter.
var ctrlCLine = []byte("\x1b[F^C\r")

func (c *ctrlCReader) Read(p []byte) (int, error) {
	var n int
	var err error
	if len(c.pending) > 0 {
		n = copy(p, c.pending)
		c.pending = c.pending[n:]
	} else {
		n, err = c.r.Read(p)
	}
	i := bytes.IndexByte(p[:n], 3)
	if i < 0 {
		return n, err
	}
	c.pending = append(slices.Clone(p[i+1:n]), c.pending...)
	c.interrupted.Store(true)
	if len(p) < i+len(ctrlCLine) {
		// Too small to say it all: the line just ends.
		p[i] = '\r'
		return i + 1, err
	}
	return i + copy(p[i:], ctrlCLine), err
}

// history is the session's line history: the lines read, newest last,
// without blank lines and repeats of the line before, at most 1000.
type history struct {
	mu    sync.Mutex
	lines []string
}

const historyMax = 1000

func (h *history) Add(line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.TrimSpace(line) == "" || len(h.lines) > 0 && h.lines[len(h.lines)-1] == line {
		return
	}
	if len(h.lines) == historyMax {
		h.lines = slices.Delete(h.lines, 0, 1)
	}
	h.lines = append(h.lines, line)
}

func (h *history) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

// At returns the entry idx lines back: 0 is the newest.
func (h *history) At(idx int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lines[len(h.lines)-1-idx]
}

// drop removes line, a line Ctrl-C dropped, when it is the newest entry.
func (h *history) drop(line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.lines); n > 0 && h.lines[n-1] == line {
		h.lines = h.lines[:n-1]
	}
}

// ---- output ----

// replOutput prints the REPL's events and results: operations and print()
// as in plain output ("[web1] files.line: changed (0.01s)"), each host's
// value on stdout, errors on stderr.
type replOutput struct {
	stdout, stderr io.Writer
	verbose, quiet bool
	terminal       bool // stdout is a terminal
	paint          painter

	mu       sync.Mutex
	opFailed map[string]bool // hosts an op_end of this chunk showed failing
}

func newREPLOutput(stdout, stderr io.Writer, verbose, quiet bool) *replOutput {
	o := &replOutput{stdout: stdout, stderr: stderr, verbose: verbose, quiet: quiet, paint: plainPaint, opFailed: map[string]bool{}}
	if f, ok := stdout.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		o.terminal = true
		if os.Getenv("NO_COLOR") == "" {
			o.paint = ansiPaint
		}
	}
	return o
}

func (o *replOutput) event(e sdrt.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case e.Kind == sdrt.KindHostStart:
		return
	case e.Kind == sdrt.KindHostEnd && e.Status == sdrt.StatusOK:
		return
	case o.quiet && e.Kind == sdrt.KindOpEnd && e.Status != sdrt.StatusFailed:
		return
	}
	var b bytes.Buffer
	formatEvent(&b, e, o.verbose, o.opFailed, o.paint)
	w := o.stdout
	if e.Kind == sdrt.KindHostEnd {
		w = o.stderr
	}
	w.Write(b.Bytes())
}

// startChunk forgets which hosts the last chunk's operations failed.
func (o *replOutput) startChunk() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.opFailed)
}

// result prints one host's outcome of a chunk: its value, or its error
// unless a failed operation's line already showed it.
func (o *replOutput) result(r sdrt.ChunkResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case r.Err != nil:
		if o.opFailed[r.Host] && !o.verbose {
			return
		}
		var b strings.Builder
		var se *sdrt.ScriptError
		if errors.As(r.Err, &se) {
			fmt.Fprintf(&b, "[%s] %s %s\n", r.Host, o.paint(colorRed, "error:"), se.Error())
			if o.verbose && se.Backtrace != "" {
				for _, line := range splitLines(se.Backtrace) {
					b.WriteString("    " + line + "\n")
				}
			}
		} else {
			fmt.Fprintf(&b, "[%s] %s %v\n", r.Host, o.paint(colorRed, "error:"), r.Err)
		}
		io.WriteString(o.stderr, b.String())
	case r.Value != nil:
		writePrefixed(o.stdout, r.Host, r.Value.String()+"\n")
	}
}

// compileError prints an error of the line itself (a syntax error, a
// module that cannot load), found before any host ran it.
func (o *replOutput) compileError(err error) {
	msg := err.Error()
	var se syntax.Error
	if errors.As(err, &se) {
		msg = se.Pos.String() + ": " + se.Msg
	}
	if !utf8.ValidString(msg) {
		msg = strings.ToValidUTF8(msg, "\uFFFD")
	}
	fmt.Fprintf(o.stderr, "%s %s\n", o.paint(colorRed, "error:"), msg)
}

// runREPL is `star-deploy INVENTORY repl`: it checks the flags that make no
// sense there and runs the REPL on stdin.
func runREPL(ctx context.Context, args []string, f *flags, opts sdrt.Options, hosts []sdrt.Host, stdout, stderr io.Writer) (*sdrt.Report, error) {
	if len(args) > 0 {
		return nil, usagef("repl takes no arguments, got %q; it reads Starlark from stdin", args)
	}
	if f.JSON {
		return nil, usagef("repl does not write --json; it prints each host's results as lines (run a script or an ad-hoc operation for JSON events)")
	}
	out := newREPLOutput(stdout, stderr, f.Verbose > 0, f.Quiet)
	opts.OnEvent = out.event
	return repl(ctx, sdrt.New(opts), hosts, out, os.Stdin)
}
