package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/star-deploy/star-deploy/connectors/conntest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sampleEvents is a run of two hosts: web1 changes a file, prints and
// fails a shell command; web2 dry-runs an operation and skips one.
func sampleEvents() []sdrt.Event {
	return []sdrt.Event{
		{Time: t0, Kind: sdrt.KindHostStart, Host: "web1"},
		{Time: t0, Kind: sdrt.KindHostStart, Host: "web2"},
		{Time: t0, Kind: sdrt.KindOpStart, Host: "web1", Op: "put", Name: "write motd", Pos: "deploy.star:1:4"},
		{Time: t0, Kind: sdrt.KindOpEnd, Host: "web1", Op: "put", Name: "write motd", Pos: "deploy.star:1:4", Status: sdrt.StatusChanged, Duration: 120 * time.Millisecond},
		{Time: t0, Kind: sdrt.KindPrint, Host: "web1", Message: "hello\nworld"},
		{Time: t0, Kind: sdrt.KindOpStart, Host: "web2", Op: "shell", Name: "touch /x", Pos: "deploy.star:2:6"},
		{Time: t0, Kind: sdrt.KindOpEnd, Host: "web2", Op: "shell", Name: "touch /x", Pos: "deploy.star:2:6", Status: sdrt.StatusChanged, Dry: true, Message: "would run: touch /x", Duration: 10 * time.Millisecond},
		{Time: t0, Kind: sdrt.KindOpEnd, Host: "web2", Op: "shell", Name: "make", Pos: "deploy.star:3:6", Status: sdrt.StatusSkipped, Message: "/x exists", Duration: 5 * time.Millisecond},
		{Time: t0, Kind: sdrt.KindOpStart, Host: "web1", Op: "shell", Name: "false", Pos: "deploy.star:3:6"},
		{Time: t0, Kind: sdrt.KindOpEnd, Host: "web1", Op: "shell", Name: "false", Pos: "deploy.star:3:6", Status: sdrt.StatusFailed,
			Error: `command "false" on web1 exited with status 1`, Stdout: "out1\nout2\n", Stderr: "oops\n", Duration: 1500 * time.Millisecond},
		{Time: t0, Kind: sdrt.KindHostEnd, Host: "web1", Status: sdrt.StatusFailed, Error: `deploy.star:3:6: command "false" on web1 exited with status 1`,
			Counts: &sdrt.Counts{Changed: 1, Failed: 1}},
		{Time: t0, Kind: sdrt.KindHostEnd, Host: "web2", Status: sdrt.StatusOK, Counts: &sdrt.Counts{Changed: 1, Skipped: 1}},
	}
}

func sampleReport() *sdrt.Report {
	return &sdrt.Report{Hosts: []sdrt.HostResult{
		{Name: "web1", Started: true, Status: sdrt.StatusFailed, Counts: sdrt.Counts{Changed: 1, Failed: 1}, Duration: 1620 * time.Millisecond,
			Err: &sdrt.ScriptError{Host: "web1", Pos: "deploy.star:3:6", Msg: `command "false" on web1 exited with status 1`,
				Backtrace: "Traceback (most recent call last):\n  deploy.star:3:6: in <toplevel>\nError in shell: ..."}},
		{Name: "web2", Started: true, Status: sdrt.StatusOK, Counts: sdrt.Counts{Changed: 1, Skipped: 1}, Duration: 15 * time.Millisecond},
	}}
}

func render(cfg outputConfig, events []sdrt.Event, rep *sdrt.Report) (stdout, stderr string) {
	var out, errOut bytes.Buffer
	cfg.stdout, cfg.stderr = &out, &errOut
	o := newOutput(cfg)
	for _, e := range events {
		o.event(e)
	}
	o.finish(rep, 2*time.Second, exitCode(context.Background(), rep, nil))
	return out.String(), errOut.String()
}

func TestPlainOutput(t *testing.T) {
	stdout, stderr := render(outputConfig{hosts: 2}, sampleEvents(), sampleReport())
	want := `[web1] write motd: changed (0.12s)
[web1] hello
[web1] world
[web2] touch /x: would change (0.01s)
[web2] make: skipped (0.01s)
[web1] false: failed (1.50s): deploy.star:3:6: command "false" on web1 exited with status 1
HOST  STATUS  UNCHANGED  CHANGED  FAILED  SKIPPED   TIME
web1  failed          0        1       1        0  1.62s
web2  ok              0        1       0        1  0.01s
2 hosts: 1 ok, 1 failed in 2.00s

Failures:
[web1] deploy.star:3:6: command "false" on web1 exited with status 1
`
	if stdout != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", stdout, want)
	}
	if stderr != "" {
		t.Errorf("stderr is not empty:\n%s", stderr)
	}
	if strings.Contains(stdout, "\x1b[") {
		t.Error("plain output contains ANSI escapes")
	}
}

func TestPlainOutputVerbose(t *testing.T) {
	stdout, _ := render(outputConfig{hosts: 2, verbose: true}, sampleEvents(), sampleReport())
	for _, want := range []string{
		"[web1] false: failed (1.50s): deploy.star:3:6: command \"false\" on web1 exited with status 1\n    out| out1\n    out| out2\n    err| oops\n",
		"[web2] make: skipped (0.01s)\n    /x exists\n",
		"[web1] deploy.star:3:6: command \"false\" on web1 exited with status 1\n    Traceback (most recent call last):\n      deploy.star:3:6: in <toplevel>\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verbose output does not contain\n%s\ngot:\n%s", want, stdout)
		}
	}
}

// TestPlainHostFailureWithoutOp checks that a host failing outside any
// operation (it could not connect, fail() was called) shows a line.
func TestPlainHostFailureWithoutOp(t *testing.T) {
	events := []sdrt.Event{
		{Kind: sdrt.KindHostStart, Host: "db1"},
		{Kind: sdrt.KindHostEnd, Host: "db1", Status: sdrt.StatusFailed, Error: "connect db1: connection refused"},
	}
	rep := &sdrt.Report{Hosts: []sdrt.HostResult{{Name: "db1", Started: true, Status: sdrt.StatusFailed, Err: errors.New("connect db1: connection refused")}}}
	stdout, _ := render(outputConfig{hosts: 1}, events, rep)
	if !strings.HasPrefix(stdout, "[db1] failed: connect db1: connection refused\n") {
		t.Errorf("output:\n%s", stdout)
	}
	if !strings.Contains(stdout, "1 host: 1 failed") {
		t.Errorf("summary:\n%s", stdout)
	}
}

func TestPlainExecOutput(t *testing.T) {
	events := []sdrt.Event{
		{Kind: sdrt.KindHostStart, Host: "a"},
		{Kind: sdrt.KindOpEnd, Host: "a", Op: "shell", Name: "exec", Status: sdrt.StatusChanged, Stdout: "hi\nthere\n", Stderr: "warn\n"},
		{Kind: sdrt.KindHostEnd, Host: "a", Status: sdrt.StatusOK},
	}
	rep := &sdrt.Report{Hosts: []sdrt.HostResult{{Name: "a", Started: true, Status: sdrt.StatusOK, Counts: sdrt.Counts{Changed: 1}}}}
	stdout, stderr := render(outputConfig{hosts: 1, mode: modeExec}, events, rep)
	if stdout != "[a] hi\n[a] there\n" {
		t.Errorf("exec stdout = %q, want only the command's output", stdout)
	}
	if !strings.HasPrefix(stderr, "[a] warn\n") || !strings.Contains(stderr, "HOST") {
		t.Errorf("exec stderr = %q, want the command's stderr, then the summary", stderr)
	}
}

func TestJSONOutputIsPure(t *testing.T) {
	events := sampleEvents()
	events = append(events, sdrt.Event{Kind: sdrt.KindPrint, Host: "<web3>", Message: "a & b"})
	stdout, stderr := render(outputConfig{hosts: 2, json: true, verbose: true}, events, sampleReport())
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != len(events)+2 {
		t.Fatalf("%d lines of JSON for %d events, run_start and run_end:\n%s", len(lines), len(events), stdout)
	}
	first, end := lines[0], lines[len(lines)-1]
	lines = lines[1 : len(lines)-1]
	if !strings.Contains(first, `"kind":"run_start","schema":1,"hosts":2,"version":"star-deploy `) {
		t.Errorf("first line is not run_start: %s", first)
	}
	if !strings.Contains(end, `"kind":"run_end","hosts":2,"exit_code":1,"counts":{"ok":1,"failed":1,"unreachable":0,"stopped":0,"interrupted":0,"not_started":0},"duration":2}`) {
		t.Errorf("last line is not run_end: %s", end)
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		if m["kind"] != string(events[i].Kind) || m["host"] != events[i].Host {
			t.Errorf("line %d = %s, want kind %s host %s", i+1, line, events[i].Kind, events[i].Host)
		}
	}
	if !strings.Contains(lines[3], `"duration":0.12`) {
		t.Errorf("duration is not in seconds: %s", lines[3])
	}
	var last sdrt.Event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Host != "<web3>" || last.Message != "a & b" {
		t.Errorf("last event decodes to %+v (%v)", last, err)
	}
	if !strings.Contains(stderr, "HOST") || !strings.Contains(stderr, "Failures:") {
		t.Errorf("stderr does not hold the summary:\n%s", stderr)
	}
}

// TestJSONOutputIsMarshalJSON: the CLI encodes events without calling
// Event.MarshalJSON (to spare a copy of a command's output), and must write
// exactly what it would.
func TestJSONOutputIsMarshalJSON(t *testing.T) {
	events := append(sampleEvents(), sdrt.Event{Time: t0, Kind: sdrt.KindOpEnd, Host: "a", Op: "shell", Status: sdrt.StatusChanged,
		Duration: time.Second, Stdout: "out\x00\xff", MaxOutput: 1024, StdoutDropped: 7, StderrDropped: 3})
	stdout, _ := render(outputConfig{hosts: 2, json: true, verbose: true}, events, sampleReport())
	lines := strings.SplitAfter(stdout, "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], `"kind":"run_start"`) || !strings.Contains(lines[len(lines)-2], `"kind":"run_end"`) {
		t.Fatalf("--json output does not open with run_start and end with run_end:\n%s", stdout)
	}
	got := strings.Join(lines[1:len(lines)-2], "")
	var want strings.Builder
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(e.Stdout) { // --json adds the exact bytes
			b = append(b[:len(b)-1], `,"stdout_base64":"`+base64.StdEncoding.EncodeToString([]byte(e.Stdout))+`"}`...)
		}
		want.Write(b)
		want.WriteByte('\n')
	}
	if got != want.String() {
		t.Errorf("--json wrote\n%s\nEvent.MarshalJSON writes\n%s", got, want.String())
	}
	if !strings.Contains(stdout, `"max_output":1024,"stdout_dropped":7,"stderr_dropped":3`) {
		t.Errorf("the dropped counts are missing:\n%s", stdout)
	}
}

// TestExecOutputSaysWhatWasDropped: exec shows the kept output and a note
// on stderr naming the bytes max_output dropped.
func TestExecOutputSaysWhatWasDropped(t *testing.T) {
	events := []sdrt.Event{
		{Kind: sdrt.KindOpEnd, Host: "a", Op: "shell", Name: "exec", Status: sdrt.StatusChanged, Stdout: "head\ntail\n", MaxOutput: 10, StdoutDropped: 290},
		{Kind: sdrt.KindHostEnd, Host: "a", Status: sdrt.StatusOK},
	}
	rep := &sdrt.Report{Hosts: []sdrt.HostResult{{Name: "a", Started: true, Status: sdrt.StatusOK, Counts: sdrt.Counts{Changed: 1}}}}
	stdout, stderr := render(outputConfig{hosts: 1, mode: modeExec}, events, rep)
	if stdout != "[a] head\n[a] tail\n" {
		t.Errorf("exec stdout = %q", stdout)
	}
	if note := "[a] (output cut to max_output=10 bytes per stream: 290 bytes of stdout and 0 of stderr dropped from the middle)\n"; !strings.HasPrefix(stderr, note) {
		t.Errorf("exec stderr = %q, want it to start with %q", stderr, note)
	}
}

func TestSummary(t *testing.T) {
	rep := &sdrt.Report{
		Interrupted: true,
		Hosts: []sdrt.HostResult{
			{Name: "a-long-host-name", Started: true, Status: sdrt.StatusOK, Counts: sdrt.Counts{OK: 12, Changed: 3}, Duration: 75 * time.Second},
			{Name: "b", Started: true, Status: sdrt.StatusInterrupted, Counts: sdrt.Counts{OK: 1}, Duration: time.Second,
				Err: &sdrt.ScriptError{Host: "b", Pos: "x.star:1:1", Msg: "interrupted", Err: fmt.Errorf("run: %w", context.Canceled)}},
			{Name: "c", Started: true, Status: sdrt.StatusFailed, Err: &sdrt.ScriptError{Host: "c", Pos: "lib/x.star:9:2", Msg: "boom", Backtrace: "trace"}},
			{Name: "d", Status: sdrt.StatusNotStarted},
			{Name: "e", Started: true, Status: sdrt.StatusUnreachable, Err: errors.New("connect to e: connection refused")},
			{Name: "f", Started: true, Status: sdrt.StatusStopped, Counts: sdrt.Counts{OK: 2}, Err: errors.New("stopped: more than 0% of hosts failed (--fail-percent)")},
			{Name: "g", Status: sdrt.StatusNotStarted, Err: errors.New("stopped: more than 0% of hosts failed (--fail-percent)")},
		},
	}
	var b bytes.Buffer
	writeSummary(&b, rep, 80*time.Second, summaryStyle{})
	want := `HOST              STATUS       UNCHANGED  CHANGED  FAILED  SKIPPED   TIME
a-long-host-name  ok                  12        3       0        0  1m15s
b                 interrupted          1        0       0        0  1.00s
c                 failed               0        0       1        0  0.00s
d                 not started          0        0       0        0      -
e                 unreachable          0        0       0        0  0.00s
f                 stopped              2        0       0        0  0.00s
g                 not started          0        0       0        0      -
7 hosts: 1 ok, 1 failed, 1 unreachable, 1 stopped, 1 interrupted, 2 not started in 1m20s
stopped: more than 0% of hosts failed (--fail-percent)

Failures:
[c] lib/x.star:9:2: boom
[e] connect to e: connection refused
`
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	writeSummary(&b, rep, time.Second, summaryStyle{color: true})
	colored := b.String()
	if !strings.Contains(colored, "\x1b[31mfailed\x1b[0m") || !strings.Contains(colored, "\x1b[32mok\x1b[0m") {
		t.Errorf("coloured summary lacks colours:\n%q", colored)
	}
	// Colours must not break the alignment: strip them and compare.
	plain := stripANSI(colored)
	b.Reset()
	writeSummary(&b, rep, time.Second, summaryStyle{})
	if plain != b.String() {
		t.Errorf("coloured summary, without colours:\n%s\nwant:\n%s", plain, b.String())
	}
}

func TestFormatHostError(t *testing.T) {
	se := &sdrt.ScriptError{Host: "h", Pos: "a.star:2:3", Msg: "bad", Backtrace: "Traceback:\n  a.star:2:3: in f"}
	if got := formatHostError("h", fmt.Errorf("wrapped: %w", se), false); got != "[h] a.star:2:3: bad\n" {
		t.Errorf("got %q", got)
	}
	if got := formatHostError("h", se, true); got != "[h] a.star:2:3: bad\n    Traceback:\n      a.star:2:3: in f\n" {
		t.Errorf("verbose: got %q", got)
	}
	if got := formatHostError("h", errors.New("dial: refused"), true); got != "[h] dial: refused\n" {
		t.Errorf("plain error: got %q", got)
	}
}

func TestTTYOutput(t *testing.T) {
	var out bytes.Buffer
	o := newTTYOutput(outputConfig{stdout: &out, hosts: 20, terminal: true, color: true, width: 50})
	now := t0.Add(2500 * time.Millisecond)
	o.now = func() time.Time { return now }
	for i := range 20 {
		h := fmt.Sprintf("host%02d", i)
		o.event(sdrt.Event{Time: t0, Kind: sdrt.KindHostStart, Host: h})
		o.event(sdrt.Event{Time: t0, Kind: sdrt.KindOpStart, Host: h, Op: "shell", Name: "apt-get install -y a-very-long-package-name"})
	}
	o.event(sdrt.Event{Time: t0, Kind: sdrt.KindOpEnd, Host: "host00", Op: "put", Name: "motd", Status: sdrt.StatusChanged})

	o.mu.Lock()
	o.redraw()
	block := o.block()
	o.mu.Unlock()
	if len(block) != 1+maxShownHosts+1 {
		t.Errorf("block has %d lines, want a header, %d hosts and a \"more\" line:\n%s", len(block), maxShownHosts, strings.Join(block, "\n"))
	}
	if last := block[len(block)-1]; !strings.Contains(last, "5 more") {
		t.Errorf("last line = %q, want \"… 5 more\"", last)
	}
	for _, l := range block {
		if n := len([]rune(stripANSI(l))); n > 49 {
			t.Errorf("line of %d runes is wider than the terminal: %q", n, l)
		}
	}
	if !strings.Contains(block[1], "host00  0 unchanged, 1 changed") {
		t.Errorf("host line = %q", block[1])
	}
	if !strings.Contains(block[2], "apt-get install") || !strings.Contains(block[2], "2.50s") && !strings.HasSuffix(block[2], "…") {
		t.Errorf("host line = %q, want the current operation", block[2])
	}

	// A print scrolls above the block: the block is erased first.
	out.Reset()
	o.event(sdrt.Event{Time: t0, Kind: sdrt.KindPrint, Host: "host01", Message: "hi"})
	if got := out.String(); got != fmt.Sprintf("\r\x1b[%dA\x1b[J[host01] hi\n", len(block)) {
		t.Errorf("print output = %q", got)
	}
	// A failure scrolls too, in red.
	out.Reset()
	o.event(sdrt.Event{Time: t0, Kind: sdrt.KindOpEnd, Host: "host02", Op: "shell", Name: "false", Status: sdrt.StatusFailed, Error: "exit 1"})
	if got := out.String(); !strings.Contains(got, "[host02] false: \x1b[31mfailed\x1b[0m (0.00s): exit 1\n") {
		t.Errorf("failure output = %q", got)
	}
	// A changed operation does not scroll.
	out.Reset()
	o.event(sdrt.Event{Time: t0, Kind: sdrt.KindOpEnd, Host: "host03", Op: "shell", Name: "true", Status: sdrt.StatusChanged})
	if out.Len() != 0 {
		t.Errorf("a changed operation printed %q", out.String())
	}

	out.Reset()
	o.mu.Lock()
	o.redraw()
	o.mu.Unlock()
	o.finish(&sdrt.Report{Hosts: []sdrt.HostResult{{Name: "host00", Started: true, Status: sdrt.StatusOK}}}, time.Second, 0)
	got := out.String()
	if !strings.Contains(got, "\x1b[J") || !strings.Contains(got, "HOST") {
		t.Errorf("finish did not erase the block and print the summary:\n%q", got)
	}
	if i, j := strings.LastIndex(got, "\x1b[J"), strings.Index(got, "HOST"); i > j {
		t.Errorf("the block was erased after the summary:\n%q", got)
	}
	// The changed operations are listed before the summary, per host.
	wantChanged := "\x1b[1mChanged:\x1b[0m\n[host00] \x1b[33mmotd\x1b[0m\n[host03] \x1b[33mtrue\x1b[0m\n\n"
	if i, j := strings.Index(got, wantChanged), strings.Index(got, "HOST"); i < 0 || i > j {
		t.Errorf("finish did not list the changed operations before the summary:\n%q\nwant %q", got, wantChanged)
	}
}

// TestTTYListsChanges checks the list of changed operations after a run
// on a terminal: grouped by host in start order, "Would change:" under
// --dry, absent when nothing changed, and absent for exec.
func TestTTYListsChanges(t *testing.T) {
	finish := func(cfg outputConfig, events ...sdrt.Event) string {
		var out bytes.Buffer
		cfg.stdout, cfg.hosts, cfg.terminal = &out, 2, true
		o := newTTYOutput(cfg)
		for _, e := range events {
			o.event(e)
		}
		o.finish(&sdrt.Report{}, time.Second, 0)
		return stripANSI(out.String())
	}
	op := func(host, name string, s sdrt.Status, dry bool) sdrt.Event {
		return sdrt.Event{Time: t0, Kind: sdrt.KindOpEnd, Host: host, Op: "shell", Name: name, Status: s, Dry: dry}
	}
	got := finish(outputConfig{},
		op("a", "one", sdrt.StatusChanged, false), op("b", "two", sdrt.StatusChanged, false),
		op("a", "same", sdrt.StatusOK, false), op("a", "three", sdrt.StatusChanged, false), op("b", "skip", sdrt.StatusSkipped, false))
	if want := "Changed:\n[a] one\n[a] three\n[b] two\n\nHOST"; !strings.Contains(got, want) {
		t.Errorf("got:\n%s\nwant it to contain:\n%s", got, want)
	}
	if got := finish(outputConfig{}, op("a", "one", sdrt.StatusChanged, true)); !strings.Contains(got, "Would change:\n[a] one\n") {
		t.Errorf("dry run: got:\n%s", got)
	}
	if got := finish(outputConfig{}, op("a", "one", sdrt.StatusOK, false)); strings.Contains(got, "hange") {
		t.Errorf("nothing changed, yet: got:\n%s", got)
	}
	if got := finish(outputConfig{mode: modeExec}, op("a", "uptime", sdrt.StatusChanged, false)); strings.Contains(got, "Changed:") {
		t.Errorf("exec: got:\n%s", got)
	}
}

// TestTTYRedrawIsThrottled checks that events alone never draw the block:
// only the ticker does.
func TestTTYRedrawIsThrottled(t *testing.T) {
	var out conntest.SyncBuffer
	o := newTTYOutput(outputConfig{stdout: &out, hosts: 1, terminal: true, width: 80})
	for range 1000 {
		o.event(sdrt.Event{Kind: sdrt.KindOpStart, Host: "h", Op: "shell", Name: "x"})
		o.event(sdrt.Event{Kind: sdrt.KindOpEnd, Host: "h", Op: "shell", Name: "x", Status: sdrt.StatusOK})
	}
	time.Sleep(3 * redrawEvery)
	o.finish(&sdrt.Report{Hosts: []sdrt.HostResult{{Name: "h", Started: true, Status: sdrt.StatusOK}}}, time.Second, 0)
	if n := strings.Count(out.String(), "hosts done"); n == 0 || n > 10 {
		t.Errorf("the block was drawn %d times for 2000 events in ~%s", n, 3*redrawEvery)
	}
}

// TestTTYExecOutput: on a terminal, exec shows each host's output, then
// its stderr and what max_output dropped.
func TestTTYExecOutput(t *testing.T) {
	var out conntest.SyncBuffer
	o := newTTYOutput(outputConfig{stdout: &out, hosts: 1, terminal: true, width: 80, mode: modeExec})
	o.event(sdrt.Event{Kind: sdrt.KindOpEnd, Host: "h", Op: "shell", Name: "exec", Status: sdrt.StatusChanged,
		Stdout: "one\ntwo", Stderr: "warn\n", MaxOutput: 8, StderrDropped: 5})
	o.finish(&sdrt.Report{Hosts: []sdrt.HostResult{{Name: "h", Started: true, Status: sdrt.StatusOK}}}, time.Second, 0)
	want := "[h] one\n[h] two\n[h] warn\n[h] (output cut to max_output=8 bytes per stream: 0 bytes of stdout and 5 of stderr dropped from the middle)\n"
	if got := stripANSI(out.String()); !strings.Contains(got, want) {
		t.Errorf("terminal output %q lacks %q", got, want)
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"héllo wörld", 6, "héllo…"},
		{"x", 0, "x"},
	} {
		if got := truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// stripANSI removes colour escapes.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestInterruptedLines(t *testing.T) {
	events := []sdrt.Event{
		{Kind: sdrt.KindOpEnd, Host: "h", Op: "shell", Name: "sleep 30", Status: sdrt.StatusFailed, Error: `run "sleep 30" on h: context canceled`, Duration: time.Second},
	}
	rep := &sdrt.Report{Interrupted: true, Hosts: []sdrt.HostResult{{Name: "h", Status: sdrt.StatusNotStarted}}}
	stdout, _ := render(outputConfig{hosts: 1}, events, rep)
	for _, want := range []string{"[h] sleep 30: interrupted (1.00s)", "1 host: 1 not started in 2.00s (interrupted)\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output does not contain %q:\n%s", want, stdout)
		}
	}
}

// TestJSONKeepsBytes: output that is not UTF-8 comes with its exact bytes
// in a _base64 field; UTF-8 output has none.
func TestJSONKeepsBytes(t *testing.T) {
	events := []sdrt.Event{
		{Time: t0, Kind: sdrt.KindOpEnd, Host: "h", Op: "shell", Status: sdrt.StatusChanged, Stdout: "\xff\xfe", Stderr: "fine ☃"},
		{Time: t0, Kind: sdrt.KindPrint, Host: "h", Message: "a\x80"},
	}
	stdout, _ := render(outputConfig{hosts: 1, json: true}, events, &sdrt.Report{Hosts: []sdrt.HostResult{{Name: "h", Started: true, Status: sdrt.StatusOK}}})
	lines := strings.Split(stdout, "\n")
	var op, print map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &op); err != nil {
		t.Fatalf("%v: %s", err, lines[1])
	}
	if err := json.Unmarshal([]byte(lines[2]), &print); err != nil {
		t.Fatalf("%v: %s", err, lines[2])
	}
	if op["stdout_base64"] != "//4=" || op["stderr"] != "fine ☃" || op["stderr_base64"] != nil {
		t.Errorf("op_end: %s", lines[1])
	}
	if print["message_base64"] != "YYA=" {
		t.Errorf("print: %s", lines[2])
	}
}

// TestSummaryCountsEveryFailure runs the real CLI: a host that failed on a
// bad argument (no operation ran, so none counted it) shows 1 under
// FAILED; a host whose operation failed shows that one failure, not two.
func TestSummaryCountsEveryFailure(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ script, row string }{
		{`shell("true")` + "\n" + `put(dest="/nonexistent/x", **{"contents": "x"})`, "@local  failed          0        1       1        0"}, // **: past the compile-time check
		{`shell("exit 3")`, "@local  failed          0        0       1        0"},
		{`shell("exit 3", ignore_errors=True)` + "\n" + `fail("boom")`, "@local  failed          0        0       2        0"},
	} {
		script := writeFile(t, dir, "deploy.star", c.script+"\n")
		for _, json := range []bool{false, true} {
			args := []string{"@local", script}
			if json {
				args = append([]string{"--json"}, args...)
			}
			_, stdout, stderr := runCLI(t, args...)
			out := stdout
			if json {
				out = stderr
			}
			if !strings.Contains(out, "HOST    STATUS  UNCHANGED  CHANGED  FAILED  SKIPPED") || !strings.Contains(out, c.row) {
				t.Errorf("%s (json %v): summary lacks %q:\n%s", c.script, json, c.row, out)
			}
		}
	}
}
