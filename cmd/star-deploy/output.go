package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// output renders the runtime's events and the final summary. event is
// called by the runtime, one call at a time; finish is called once, after
// the run, with the exit code the run ends with.
type output interface {
	event(e sdrt.Event)
	finish(rep *sdrt.Report, elapsed time.Duration, code int)
}

// outputConfig says where and how to render.
type outputConfig struct {
	stdout, stderr io.Writer
	json           bool // --json
	verbose        bool // -v
	quiet          bool // -q: failures, print() and the summary
	mode           mode // scripts, exec or fact
	hosts          int  // how many hosts run

	// Set by newOutput from the environment unless a test sets them.
	terminal bool // stdout is a terminal: live progress
	color    bool // colours in the summary
	width    int  // terminal width
}

// newOutput picks the renderer: JSON with --json, live progress when
// stdout is a terminal, plain lines otherwise.
func newOutput(cfg outputConfig) output {
	if f, ok := cfg.stdout.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		cfg.terminal = true
		cfg.color = os.Getenv("NO_COLOR") == ""
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			cfg.width = w
		}
	}
	switch {
	case cfg.json:
		o := &jsonOutput{cfg: cfg, enc: newJSONEncoder(cfg.stdout), opFailed: map[string]bool{}}
		o.write(runEvent{Time: time.Now(), Kind: kindRunStart, Schema: jsonSchema, Hosts: cfg.hosts, Version: versionString()})
		return o
	case cfg.terminal && !cfg.quiet:
		return newTTYOutput(cfg)
	default:
		return &plainOutput{cfg: cfg, w: cfg.stdout, opFailed: map[string]bool{}}
	}
}

// ---- JSON ----

// jsonOutput writes each event as one line of JSON on stdout, and nothing
// else there; the summary goes to stderr.
type jsonOutput struct {
	cfg      outputConfig
	enc      *json.Encoder
	opFailed map[string]bool // hosts that an operation failed (see summaryStyle)
}

func newJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// jsonEvent is an Event as Event.MarshalJSON writes it, encoded without
// that method: the encoder would copy its result once more, and an event
// may carry a command's output.
type jsonEvent struct {
	plainEvent
	Seconds float64 `json:"duration,omitempty"`
	// The exact bytes of stdout, stderr and message when they are not
	// UTF-8: JSON turns such bytes into U+FFFD.
	StdoutBase64  []byte `json:"stdout_base64,omitempty"`
	StderrBase64  []byte `json:"stderr_base64,omitempty"`
	MessageBase64 []byte `json:"message_base64,omitempty"`
	// Value is a fact's value, in fact events (star-deploy INV fact NAME --json).
	Value json.RawMessage `json:"value,omitempty"`
}

const kindFact = "fact"

func newJSONEvent(e sdrt.Event) jsonEvent {
	j := jsonEvent{plainEvent: plainEvent(e), Seconds: e.Duration.Seconds()}
	j.StdoutBase64 = notUTF8(e.Stdout)
	j.StderrBase64 = notUTF8(e.Stderr)
	j.MessageBase64 = notUTF8(e.Message)
	return j
}

// notUTF8 returns the bytes of s when s is not valid UTF-8 (encoding/json
// writes a []byte as base64), else nil.
func notUTF8(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}

type plainEvent sdrt.Event // an Event without its MarshalJSON method

func (o *jsonOutput) event(e sdrt.Event) {
	if e.Kind == sdrt.KindOpEnd && e.Status == sdrt.StatusFailed && !e.Ignored {
		o.opFailed[e.Host] = true
	}
	j := newJSONEvent(e)
	if o.cfg.mode == modeFact && e.Kind == sdrt.KindPrint && json.Valid([]byte(e.Message)) {
		// The fact's value, which the script printed as JSON.
		j.Kind, j.Value, j.Message = kindFact, json.RawMessage(e.Message), ""
	}
	if err := o.enc.Encode(j); err != nil {
		fmt.Fprintf(o.cfg.stderr, "star-deploy: writing event: %v\n", err)
	}
}

func (o *jsonOutput) finish(rep *sdrt.Report, elapsed time.Duration, code int) {
	end := runEvent{Time: time.Now(), Kind: kindRunEnd, Hosts: len(rep.Hosts), ExitCode: &code,
		Counts: &runCounts{}, Interrupted: rep.Interrupted, Seconds: elapsed.Seconds()}
	for _, h := range rep.Hosts {
		end.Counts.add(hostState(h))
	}
	o.write(end)
	writeSummary(o.cfg.stderr, rep, elapsed, summaryStyle{verbose: o.cfg.verbose, opFailed: o.opFailed})
}

func (o *jsonOutput) write(v any) {
	if err := o.enc.Encode(v); err != nil {
		fmt.Fprintf(o.cfg.stderr, "star-deploy: writing event: %v\n", err)
	}
}

// jsonSchema is the version of the --json event schema, in run_start. It
// grows when a field changes meaning or goes away; new fields keep it.
const jsonSchema = 1

// The kinds of the first and the last line of --json output.
const (
	kindRunStart = "run_start"
	kindRunEnd   = "run_end"
)

// runEvent is the first (run_start) and the last (run_end) line of --json
// output; the host events come between them. README.md documents the schema.
type runEvent struct {
	Time        time.Time  `json:"time"`
	Kind        string     `json:"kind"`
	Schema      int        `json:"schema,omitempty"`      // run_start: jsonSchema
	Hosts       int        `json:"hosts"`                 // how many hosts the run has
	Version     string     `json:"version,omitempty"`     // run_start
	ExitCode    *int       `json:"exit_code,omitempty"`   // run_end
	Counts      *runCounts `json:"counts,omitempty"`      // run_end: hosts by status
	Interrupted bool       `json:"interrupted,omitempty"` // run_end
	Seconds     float64    `json:"duration,omitempty"`    // run_end
}

// errorEvent is the one event of a run that ended before any host ran
// (a usage, inventory or script error), with --json.
type errorEvent struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"` // kindError
	Error    string    `json:"error"`
	ExitCode int       `json:"exit_code"`
}

const kindError = "error"

// writeErrorEvent writes err as an error event on w.
func writeErrorEvent(w io.Writer, err error, code int) {
	var exit kongExit
	if errors.As(err, &exit) {
		return // --help, --version
	}
	newJSONEncoder(w).Encode(errorEvent{Time: time.Now(), Kind: kindError, Error: err.Error(), ExitCode: code})
}

// jsonRequested reports whether the command line (or STAR_DEPLOY_JSON)
// asks for JSON, for errors found before the flags could be parsed.
func jsonRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "--json=true":
			return true
		}
	}
	v, _ := strconv.ParseBool(os.Getenv(envName("json")))
	return v
}

// runCounts tallies hosts by the status word of their host_end.
type runCounts struct {
	OK          int `json:"ok"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	Stopped     int `json:"stopped"`
	Interrupted int `json:"interrupted"`
	NotStarted  int `json:"not_started"`
}

// add counts one host of summary state s (see hostState).
func (c *runCounts) add(s string) {
	switch s {
	case "ok":
		c.OK++
	case "failed":
		c.Failed++
	case "unreachable":
		c.Unreachable++
	case "stopped":
		c.Stopped++
	case "interrupted":
		c.Interrupted++
	default:
		c.NotStarted++
	}
}

// ---- plain lines ----

// plainOutput writes one line per finished operation and print(), then a
// plain summary: the format for pipes, files and CI logs.
type plainOutput struct {
	cfg      outputConfig
	w        io.Writer
	opFailed map[string]bool // hosts whose failure an op_end line showed
}

func (o *plainOutput) event(e sdrt.Event) {
	var b bytes.Buffer
	switch o.cfg.mode {
	case modeExec:
		if e.Kind == sdrt.KindOpEnd {
			// The command's output is the result; stderr stays on stderr.
			writePrefixed(o.w, e.Host, e.Stdout)
			writePrefixed(o.cfg.stderr, e.Host, e.Stderr)
			writePrefixed(o.cfg.stderr, e.Host, droppedNote(e))
			if e.Status == sdrt.StatusFailed {
				o.opFailed[e.Host] = true
			}
			return
		}
	}
	if o.cfg.quiet && e.Kind == sdrt.KindOpEnd && e.Status != sdrt.StatusFailed {
		return
	}
	formatEvent(&b, e, o.cfg.verbose, o.opFailed, plainPaint)
	o.w.Write(b.Bytes())
}

func (o *plainOutput) finish(rep *sdrt.Report, elapsed time.Duration, _ int) {
	w := o.w
	if o.cfg.mode != modeScripts {
		// exec and fact print results on stdout; keep it clean for pipes.
		w = o.cfg.stderr
	}
	writeSummary(w, rep, elapsed, summaryStyle{verbose: o.cfg.verbose, opFailed: o.opFailed})
}

// formatEvent writes the lines an event shows in plain and terminal
// output: finished operations, print() text, host failures that no
// operation reported. opFailed tracks which hosts an op_end already showed
// failing.
func formatEvent(b *bytes.Buffer, e sdrt.Event, verbose bool, opFailed map[string]bool, paint painter) {
	switch e.Kind {
	case sdrt.KindOpEnd:
		word := statusWord(e)
		c := statusColor(e.Status)
		if word == "interrupted" {
			c = colorMagenta
		}
		fmt.Fprintf(b, "[%s] %s: %s (%s)", e.Host, opName(e), paint(c, word), formatDuration(e.Duration))
		if e.Status == sdrt.StatusFailed {
			if !e.Ignored {
				opFailed[e.Host] = true
			}
			b.WriteString(": ")
			if e.Pos != "" && !generated(e.Pos) && !strings.HasPrefix(e.Error, e.Pos) {
				b.WriteString(e.Pos + ": ")
			}
			b.WriteString(e.Error)
		}
		b.WriteByte('\n')
		if e.Message != "" && (e.Dry || verbose) && e.Message != "would run: "+e.Name {
			writeIndented(b, "    ", e.Message)
		}
		if e.Diff != "" {
			writeIndented(b, "    ", e.Diff)
		}
		if verbose {
			writeIndented(b, "    out| ", e.Stdout)
			writeIndented(b, "    err| ", e.Stderr)
			writeIndented(b, "    ", droppedNote(e))
		}
	case sdrt.KindPrint:
		writePrefixedBuf(b, e.Host, e.Message)
	case sdrt.KindCommand: // -vv
		first, rest, _ := strings.Cut(e.Message, "\n")
		fmt.Fprintf(b, "[%s] %s %s\n", e.Host, paint(colorDim, "$"), first)
		writeIndented(b, "    ", rest)
	case sdrt.KindOutput: // -vvv
		tag := "out|"
		if e.Stream == "stderr" {
			tag = "err|"
		}
		fmt.Fprintf(b, "[%s] %s %s\n", e.Host, paint(colorDim, tag), e.Message)
	case sdrt.KindHostEnd:
		// A failure no op_end showed: the connection, the script itself.
		switch {
		case e.Error == "" || opFailed[e.Host]:
		case e.Status == sdrt.StatusFailed, e.Status == sdrt.StatusUnreachable:
			fmt.Fprintf(b, "[%s] %s: %s\n", e.Host, paint(colorRed, string(e.Status)), e.Error)
		case e.Status == sdrt.StatusStopped:
			fmt.Fprintf(b, "[%s] %s\n", e.Host, paint(colorMagenta, e.Error))
		}
	}
}

// opName is the name an operation is shown under.
func opName(e sdrt.Event) string {
	if e.Name != "" {
		return e.Name
	}
	return e.Op
}

// statusWord is the status shown for a finished operation.
func statusWord(e sdrt.Event) string {
	if e.Dry && e.Status == sdrt.StatusChanged {
		return "would change"
	}
	if e.Ignored {
		return "failed (ignored)"
	}
	if e.Status == sdrt.StatusFailed && strings.HasSuffix(e.Error, context.Canceled.Error()) {
		return "interrupted"
	}
	if e.Status == "" {
		return "done"
	}
	return string(e.Status)
}

// writePrefixed writes each line of text as "[host] line".
// It streams through a small buffer: text may be a command's whole output.
func writePrefixed(w io.Writer, host, text string) {
	if text == "" {
		return
	}
	prefix := "[" + host + "] "
	// The buffer fits the whole output when it is small, so that the usual
	// short output costs one small allocation and one write.
	size := len(text) + (strings.Count(text, "\n")+1)*(len(prefix)+1)
	bw := bufio.NewWriterSize(w, min(size, 64<<10))
	writeLines(bw, prefix, text)
	bw.Flush()
}

func writePrefixedBuf(b *bytes.Buffer, host, text string) {
	writeLines(b, "["+host+"] ", text)
}

// droppedNote says how much of a command's output max_output dropped, or
// is empty when nothing was.
func droppedNote(e sdrt.Event) string {
	if e.StdoutDropped == 0 && e.StderrDropped == 0 {
		return ""
	}
	return fmt.Sprintf("(output cut to max_output=%d bytes per stream: %d bytes of stdout and %d of stderr dropped from the middle)\n", e.MaxOutput, e.StdoutDropped, e.StderrDropped)
}

// writeIndented writes each line of text after prefix.
func writeIndented(b *bytes.Buffer, prefix, text string) {
	writeLines(b, prefix, text)
}

// writeLines writes each line of text (see splitLines) after prefix,
// without holding the lines in memory at once.
func writeLines(w io.StringWriter, prefix, text string) {
	for line := range strings.Lines(text) {
		if l, ok := strings.CutSuffix(line, "\n"); ok {
			line = strings.TrimSuffix(l, "\r")
		}
		w.WriteString(prefix)
		w.WriteString(line)
		w.WriteString("\n")
	}
}

// splitLines splits text into lines without a trailing empty line.
func splitLines(text string) []string {
	return strings.Split(strings.TrimSuffix(strings.ReplaceAll(text, "\r\n", "\n"), "\n"), "\n")
}

// formatDuration shows short times with two decimals, long ones rounded.
func formatDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// ---- summary ----

type summaryStyle struct {
	color   bool
	verbose bool
	// opFailed holds the hosts whose failure an operation's op_end counted.
	// A failed host not in it (a bad argument, the script itself) counts
	// one more under FAILED.
	opFailed map[string]bool
}

// hostState is what the summary says about a host: its status word, with
// "not started" for not_started. The runtime sets every host's Status.
func hostState(h sdrt.HostResult) string {
	if h.Status == sdrt.StatusNotStarted {
		return "not started"
	}
	return string(h.Status)
}

// writeSummary writes the table of hosts (host, status, and operations
// unchanged, changed, failed and skipped, time), a totals line and the
// error of every failed host. Colours only with style.color.
func writeSummary(w io.Writer, rep *sdrt.Report, elapsed time.Duration, style summaryStyle) {
	paint := plainPaint
	if style.color {
		paint = ansiPaint
	}
	header := []string{"HOST", "STATUS", "UNCHANGED", "CHANGED", "FAILED", "SKIPPED", "TIME"}
	rows := [][]string{header}
	states := make([]string, len(rep.Hosts))
	for i, h := range rep.Hosts {
		states[i] = hostState(h)
		t := formatDuration(h.Duration)
		if !h.Started {
			t = "-"
		}
		failed := h.Counts.Failed
		if states[i] == "failed" && !style.opFailed[h.Name] {
			failed++ // what failed was no operation: it counts all the same
		}
		rows = append(rows, []string{
			h.Name, states[i],
			fmt.Sprint(h.Counts.OK), fmt.Sprint(h.Counts.Changed),
			fmt.Sprint(failed), fmt.Sprint(h.Counts.Skipped), t,
		})
	}
	widths := make([]int, len(header))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b bytes.Buffer
	for ri, r := range rows {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			cell := c
			if ri == 0 {
				cell = paint(colorBold, c)
			} else {
				cell = paint(cellColor(i, c), c)
			}
			if i >= 2 { // numbers and times align right
				b.WriteString(pad + cell)
			} else {
				b.WriteString(cell + pad)
			}
			if i < len(r)-1 {
				b.WriteString("  ")
			}
		}
		b.WriteByte('\n')
	}

	counts := map[string]int{}
	for _, s := range states {
		counts[s]++
	}
	var parts []string
	for _, s := range []string{"ok", "failed", "unreachable", "stopped", "interrupted", "not started"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	noun := "hosts"
	if len(rep.Hosts) == 1 {
		noun = "host"
	}
	fmt.Fprintf(&b, "%d %s: %s in %s", len(rep.Hosts), noun, strings.Join(parts, ", "), formatDuration(elapsed))
	if rep.Interrupted && counts["interrupted"] == 0 {
		b.WriteString(" (" + paint(colorMagenta, "interrupted") + ")")
	}
	b.WriteByte('\n')
	for i, h := range rep.Hosts {
		// Why hosts were stopped or not started: one line for them all.
		if (states[i] == "stopped" || states[i] == "not started") && h.Err != nil {
			b.WriteString(paint(colorMagenta, h.Err.Error()) + "\n")
			break
		}
	}

	first := true
	for i, h := range rep.Hosts {
		if states[i] != "failed" && states[i] != "unreachable" {
			continue
		}
		if first {
			b.WriteString("\n" + paint(colorBold, "Failures:") + "\n")
			first = false
		}
		b.WriteString(formatHostError(h.Name, h.Err, style.verbose))
	}
	w.Write(b.Bytes())
}

// formatHostError renders a host's error as "[host] file:line:col: message",
// with the Starlark backtrace when verbose. It never includes a Go stack.
func formatHostError(host string, err error, verbose bool) string {
	var b strings.Builder
	var se *sdrt.ScriptError
	if errors.As(err, &se) {
		msg := se.Error()
		if generated(se.Pos) {
			msg = se.Msg
		}
		fmt.Fprintf(&b, "[%s] %s\n", host, msg)
		if verbose && se.Backtrace != "" {
			for _, line := range splitLines(se.Backtrace) {
				b.WriteString("    " + line + "\n")
			}
		}
		return b.String()
	}
	fmt.Fprintf(&b, "[%s] %v\n", host, err)
	return b.String()
}

// generated reports whether pos is in a script the CLI generated (exec,
// fact), whose positions mean nothing to the user.
func generated(pos string) bool { return strings.HasPrefix(pos, "<") }

// ---- colours ----

type color string

const (
	colorNone    color = ""
	colorBold    color = "1"
	colorRed     color = "31"
	colorGreen   color = "32"
	colorYellow  color = "33"
	colorMagenta color = "35"
	colorDim     color = "2"
)

// painter colours text (or not).
type painter func(c color, s string) string

func plainPaint(_ color, s string) string { return s }

func ansiPaint(c color, s string) string {
	if c == colorNone || s == "" {
		return s
	}
	return "\x1b[" + string(c) + "m" + s + "\x1b[0m"
}

func statusColor(s sdrt.Status) color {
	switch s {
	case sdrt.StatusOK:
		return colorGreen
	case sdrt.StatusChanged:
		return colorYellow
	case sdrt.StatusFailed:
		return colorRed
	case sdrt.StatusSkipped:
		return colorDim
	}
	return colorNone
}

// cellColor colours a summary cell by column.
func cellColor(col int, v string) color {
	switch col {
	case 1:
		switch v {
		case "ok":
			return colorGreen
		case "failed", "unreachable":
			return colorRed
		default:
			return colorMagenta
		}
	case 3:
		if v != "0" {
			return colorYellow
		}
	case 4:
		if v != "0" {
			return colorRed
		}
	}
	return colorNone
}

// ---- terminal ----

const (
	redrawEvery   = 100 * time.Millisecond // at most this often
	maxShownHosts = 15                     // running hosts shown in the live block
)

// ttyOutput shows live progress on a terminal: a block with one line per
// running host (its current operation and counts), redrawn in place at most
// every redrawEvery; failures, print() output and (with -v) shell output
// scroll above it. At the end, a coloured summary table.
type ttyOutput struct {
	cfg   outputConfig
	paint painter

	mu       sync.Mutex
	hosts    map[string]*liveHost
	order    []*liveHost // in start order
	done     int
	lines    int  // lines of the block now on screen
	dirty    bool // the block is out of date
	opFailed map[string]bool
	dry      bool // an operation ran under --dry
	stop     chan struct{}
	stopped  chan struct{}
	now      func() time.Time
}

// liveHost is the progress of one host.
type liveHost struct {
	name    string
	op      string
	opStart time.Time
	start   time.Time
	counts  sdrt.Counts
	running bool
	changed []string // the operations that changed the host (or would), listed after the run
}

func newTTYOutput(cfg outputConfig) *ttyOutput {
	o := &ttyOutput{
		cfg:      cfg,
		paint:    plainPaint,
		hosts:    map[string]*liveHost{},
		opFailed: map[string]bool{},
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		now:      time.Now,
	}
	if cfg.color {
		o.paint = ansiPaint
	}
	if o.cfg.width <= 0 {
		o.cfg.width = 80
	}
	go o.loop()
	return o
}

// loop redraws the block while the run lasts.
func (o *ttyOutput) loop() {
	defer close(o.stopped)
	t := time.NewTicker(redrawEvery)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.mu.Lock()
			if o.dirty || o.runningCount() > 0 {
				o.redraw()
			}
			o.mu.Unlock()
		}
	}
}

func (o *ttyOutput) event(e sdrt.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.hosts[e.Host]
	if h == nil {
		h = &liveHost{name: e.Host, start: e.Time}
		if h.start.IsZero() {
			h.start = o.now()
		}
		o.hosts[e.Host] = h
		o.order = append(o.order, h)
	}
	var scroll bytes.Buffer
	var execOut [2]string // stdout and stderr of an exec
	switch e.Kind {
	case sdrt.KindHostStart:
		h.running = true
	case sdrt.KindOpStart:
		h.running = true
		h.op, h.opStart = opName(e), e.Time
		if h.opStart.IsZero() {
			h.opStart = o.now()
		}
	case sdrt.KindOpEnd:
		h.counts.Add(e.Status)
		h.op = ""
		if e.Status == sdrt.StatusChanged && o.cfg.mode != modeExec {
			h.changed = append(h.changed, opName(e))
			o.dry = o.dry || e.Dry
		}
		switch {
		case o.cfg.mode == modeExec:
			// The command's output streams out below, not through scroll.
			execOut = [2]string{e.Stdout, e.Stderr}
			if e.Status == sdrt.StatusFailed {
				o.opFailed[e.Host] = true
			}
		case e.Status == sdrt.StatusFailed || o.cfg.verbose || e.Diff != "":
			formatEvent(&scroll, e, o.cfg.verbose, o.opFailed, o.paint)
		}
	case sdrt.KindCommand, sdrt.KindOutput:
		formatEvent(&scroll, e, o.cfg.verbose, o.opFailed, o.paint)
	case sdrt.KindPrint, sdrt.KindHostEnd:
		if e.Kind == sdrt.KindHostEnd {
			if h.running {
				o.done++
			}
			h.running = false
		}
		formatEvent(&scroll, e, o.cfg.verbose, o.opFailed, o.paint)
	}
	o.dirty = true
	if scroll.Len() > 0 || execOut != [2]string{} {
		var b bytes.Buffer
		o.erase(&b)
		b.Write(scroll.Bytes())
		o.cfg.stdout.Write(b.Bytes())
		writePrefixed(o.cfg.stdout, e.Host, execOut[0])
		writePrefixed(o.cfg.stdout, e.Host, execOut[1])
		if execOut != [2]string{} {
			writePrefixed(o.cfg.stdout, e.Host, droppedNote(e))
		}
		// The block is redrawn by the next tick, so bursts of output cost
		// one redraw.
	}
}

func (o *ttyOutput) finish(rep *sdrt.Report, elapsed time.Duration, _ int) {
	close(o.stop)
	<-o.stopped
	o.mu.Lock()
	defer o.mu.Unlock()
	var b bytes.Buffer
	o.erase(&b)
	o.writeChanged(&b)
	o.cfg.stdout.Write(b.Bytes())
	w := o.cfg.stdout
	writeSummary(w, rep, elapsed, summaryStyle{color: o.cfg.color, verbose: o.cfg.verbose, opFailed: o.opFailed})
}

// writeChanged lists the operations that changed each host, in the order
// hosts started: the live block that showed them is gone. Nothing when
// nothing changed.
func (o *ttyOutput) writeChanged(b *bytes.Buffer) {
	title := "Changed:"
	if o.dry {
		title = "Would change:"
	}
	for _, h := range o.order {
		for _, name := range h.changed {
			if title != "" {
				b.WriteString(o.paint(colorBold, title) + "\n")
				title = ""
			}
			fmt.Fprintf(b, "[%s] %s\n", h.name, o.paint(colorYellow, name))
		}
	}
	if title == "" {
		b.WriteByte('\n')
	}
}

func (o *ttyOutput) runningCount() int {
	n := 0
	for _, h := range o.order {
		if h.running {
			n++
		}
	}
	return n
}

// erase removes the block from the screen: up to its first line, then
// clear to the end of the screen.
func (o *ttyOutput) erase(b *bytes.Buffer) {
	if o.lines > 0 {
		fmt.Fprintf(b, "\r\x1b[%dA\x1b[J", o.lines)
		o.lines = 0
	}
}

// redraw replaces the block with the current state. o.mu must be held.
func (o *ttyOutput) redraw() {
	var b bytes.Buffer
	o.erase(&b)
	lines := o.block()
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	o.lines = len(lines)
	o.dirty = false
	o.cfg.stdout.Write(b.Bytes())
}

// block returns the lines of the live block.
func (o *ttyOutput) block() []string {
	now := o.now()
	running := o.runningCount()
	if running == 0 && o.done == 0 {
		return nil
	}
	var lines []string
	head := fmt.Sprintf("%d/%d hosts done, %d running", o.done, o.cfg.hosts, running)
	lines = append(lines, o.paint(colorBold, truncate(head, o.cfg.width-1)))
	shown := 0
	for _, h := range o.order {
		if !h.running {
			continue
		}
		if shown == maxShownHosts {
			lines = append(lines, fmt.Sprintf("  … %d more", running-shown))
			break
		}
		shown++
		c := h.counts
		counts := fmt.Sprintf("%d unchanged", c.OK)
		for _, n := range []struct {
			n    int
			name string
		}{{c.Changed, "changed"}, {c.Failed, "failed"}, {c.Skipped, "skipped"}} {
			if n.n > 0 {
				counts += fmt.Sprintf(", %d %s", n.n, n.name)
			}
		}
		cur := ""
		if h.op != "" {
			cur = fmt.Sprintf(" · %s (%s)", h.op, formatDuration(now.Sub(h.opStart).Truncate(100*time.Millisecond)))
		}
		line := truncate(fmt.Sprintf("  %s  %s%s", h.name, counts, cur), o.cfg.width-1)
		lines = append(lines, line)
	}
	return lines
}

// truncate shortens s to n runes so that a line never wraps (which would
// break the cursor arithmetic of erase).
func truncate(s string, n int) string {
	if n < 1 {
		n = 1
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
