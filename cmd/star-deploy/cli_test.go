package main

// End-to-end tests: they run the whole command line in-process, with the
// local connector, on real files in temporary directories.

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// q quotes s as a Starlark string literal.
func q(s string) string { return syntax.Quote(s, false) }

// jsonEvents decodes --json output, failing on any line that is not JSON.
func jsonEvents(t *testing.T, stdout string) []sdrt.Event {
	t.Helper()
	var events []sdrt.Event
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var e sdrt.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("stdout line is not a JSON event: %v\n%s", err, sc.Text())
		}
		events = append(events, e)
	}
	return events
}

// countStatus counts the op_end events with status s.
func countStatus(events []sdrt.Event, s sdrt.Status) int {
	n := 0
	for _, e := range events {
		if e.Kind == sdrt.KindOpEnd && e.Status == s {
			n++
		}
	}
	return n
}

func noGoStack(t *testing.T, outputs ...string) {
	t.Helper()
	for _, out := range outputs {
		if strings.Contains(out, "goroutine ") || regexp.MustCompile(`\.go:\d+`).MatchString(out) {
			t.Errorf("output contains a Go stack trace:\n%s", out)
		}
	}
}

func TestHelloTwice(t *testing.T) {
	dir := t.TempDir()
	example := filepath.Join("..", "..", "examples", "hello.star")

	code, stdout, stderr := runCLI(t, "@local", example, "--data", "dir="+dir)
	if code != exitOK {
		t.Fatalf("first run: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"hello.txt: changed (", "[@local] hello from @local", "1 host: 1 ok"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("first run output does not contain %q:\n%s", want, stdout)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "hello.txt"))
	if err != nil || !strings.HasPrefix(string(got), "Hello from @local!\n") {
		t.Errorf("hello.txt = %q, %v", got, err)
	}

	code, stdout, stderr = runCLI(t, "--json", "@local", example, "--data", "dir="+dir)
	if code != exitOK {
		t.Fatalf("second run: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	events := jsonEvents(t, stdout)
	if n := countStatus(events, sdrt.StatusChanged); n != 0 {
		t.Errorf("second run changed %d operations, want 0:\n%s", n, stdout)
	}
	if countStatus(events, sdrt.StatusOK)+countStatus(events, sdrt.StatusSkipped) == 0 {
		t.Errorf("second run: no operation ok or skipped:\n%s", stdout)
	}
}

func TestTemplateAndPutAreIdempotent(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "app.conf.tmpl", "port={{ .port }} host={{ .host.name }}\n")
	script := writeFile(t, dir, "deploy.star", `
template("app.conf.tmpl", `+q(filepath.Join(dir, "out", "app.conf"))+`, vars={"port": 8080})
put(`+q(filepath.Join(dir, "out", "motd"))+`, content="hi\n", mode="0600")
`)
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "--json", "@local", script)
	if code != exitOK {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if n := countStatus(jsonEvents(t, stdout), sdrt.StatusChanged); n != 2 {
		t.Errorf("first run changed %d operations, want 2", n)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "out", "app.conf"))
	if string(got) != "port=8080 host=@local\n" {
		t.Errorf("app.conf = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "out", "motd")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("motd: %v, %v", fi, err)
	}
	code, stdout, _ = runCLI(t, "--json", "@local", script)
	if code != exitOK || countStatus(jsonEvents(t, stdout), sdrt.StatusChanged) != 0 {
		t.Errorf("second run: exit code %d, want 0 and no changes:\n%s", code, stdout)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   []string // in stderr
	}{
		{"syntax error", "print('a')\n\ndef f(:\n    pass\n", []string{"bad.star:3:"}},
		{"undefined name", "print('a')\nshell(no_such_name)\n", []string{"bad.star:2:", "no_such_name"}},
		{"missing module", "load('lib/nope.star', 'x')\nprint(x)\n", []string{"bad.star:1:", "nope.star"}},
		{"missing stdlib module", "load('@stdlib//nope.star', 'x')\n", []string{"bad.star:1:", "nope.star"}},
		// The resolver suggests the file's own names; the predeclared ones come from us.
		{"misspelt builtin", "shel('true')\n", []string{"bad.star:1:1: undefined: shel (did you mean shell?)"}},
		{"misspelt module", "load('@stdlib//files.star', 'files')\nfiels.put('/x', content = 'x')\n", []string{"bad.star:2:1: undefined: fiels (did you mean files?)"}},
		// The parser finds the missing ':' at the newline, which it puts on the next line.
		{"missing colon", "x = 1\nif x == 1\n    print(x)\n", []string{"bad.star:2:10: got newline, want ':'"}},
		{"unknown keyword of a builtin", "put('/x', contents = 'x')\n", []string{`bad.star:1:11: put: unexpected keyword argument "contents" (did you mean content?)`}},
		{"unknown keyword of a stdlib operation", "load('@stdlib//files.star', 'files')\nfiles.line('/x', 'a', presnt = True)\n", []string{`bad.star:2:23: files.line: unexpected keyword argument "presnt" (did you mean present?)`}},
		{"missing colon, blank lines after", "def f()\n\n\n    pass\n", []string{"bad.star:1:8: got newline, want ':'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			script := writeFile(t, dir, "bad.star", tt.script)
			code, stdout, stderr := runCLI(t, "@local", script)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("a host ran; stdout:\n%s", stdout)
			}
			noGoStack(t, stdout, stderr)
		})
	}
}

func TestFailingShell(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	script := writeFile(t, dir, "fail.star", "put("+q(a)+", content='a')\nshell('echo to-stderr >&2; exit 3')\nput("+q(b)+", content='b')\n")
	code, stdout, stderr := runCLI(t, "@local", script)
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	for _, want := range []string{"fail.star:2:", "status 3", "Failures:", "[@local] "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, stdout)
		}
	}
	if !exists(t, a) || exists(t, b) {
		t.Errorf("a exists: %v (want true), b exists: %v (want false: the host stops at the failure)", exists(t, a), exists(t, b))
	}
	noGoStack(t, stdout, stderr)
}

func TestVerboseShowsOutputAndBacktrace(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "v.star", "def step():\n    shell('echo visible-output; exit 1')\n\nstep()\n")
	code, stdout, stderr := runCLI(t, "-v", "@local", script)
	if code != exitFailed {
		t.Errorf("exit code %d, want %d\n%s", code, exitFailed, stderr)
	}
	for _, want := range []string{"visible-output", "v.star:2:", "v.star:4:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("-v output does not contain %q:\n%s", want, stdout)
		}
	}
	noGoStack(t, stdout, stderr)
}

func TestDryChangesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "t.tmpl", "x={{ .x }}\n")
	script := writeFile(t, dir, "dry.star", `
put(`+q(filepath.Join(dir, "put.txt"))+`, content="a")
shell("touch "+`+q(filepath.Join(dir, "touched"))+`)
template("t.tmpl", `+q(filepath.Join(dir, "t.txt"))+`, vars={"x": 1})
`)
	code, stdout, stderr := runCLI(t, "--dry", "@local", script)
	if code != exitOK {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"put.txt", "touched", "t.txt"} {
		if exists(t, filepath.Join(dir, f)) {
			t.Errorf("--dry created %s", f)
		}
	}
	if n := strings.Count(stdout, "would change"); n != 3 {
		t.Errorf("%d operations say \"would change\", want 3:\n%s", n, stdout)
	}
}

func TestJSONEmitsOnlyJSON(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "j.star", "print('hello', host.name)\nput("+q(filepath.Join(dir, "f"))+", content='x')\nshell('exit 1')\n")
	code, stdout, stderr := runCLI(t, "--json", "-v", "@local", script)
	if code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
	events := jsonEvents(t, stdout)
	if len(events) < 2 || events[0].Kind != kindRunStart || events[len(events)-1].Kind != kindRunEnd {
		t.Fatalf("--json does not open with run_start and end with run_end:\n%s", stdout)
	}
	kinds := map[sdrt.Kind]int{}
	for _, e := range events[1 : len(events)-1] {
		kinds[e.Kind]++
		if e.Host != "@local" {
			t.Errorf("event for host %q: %+v", e.Host, e)
		}
	}
	for _, k := range []sdrt.Kind{sdrt.KindHostStart, sdrt.KindOpStart, sdrt.KindOpEnd, sdrt.KindPrint, sdrt.KindHostEnd} {
		if kinds[k] == 0 {
			t.Errorf("no %s event:\n%s", k, stdout)
		}
	}
	if !strings.Contains(stderr, "HOST") || !strings.Contains(stderr, "j.star:3:") {
		t.Errorf("stderr does not hold the summary and the error:\n%s", stderr)
	}
}

func TestScriptsRunInOrderWithHostData(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "first")
	one := writeFile(t, dir, "one.star", "put("+q(f)+", content='1')\n")
	two := writeFile(t, dir, "two.star", "shell('test -f '+"+q(f)+")\nprint(host.name, host.data['role'], host.data.get('missing', 'dflt'))\n")
	code, stdout, stderr := runCLI(t, "@local", one, two, "--data", "role=web")
	if code != exitOK {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "[@local] @local web dflt\n") {
		t.Errorf("output:\n%s", stdout)
	}
}

func TestExec(t *testing.T) {
	code, stdout, stderr := runCLI(t, "@local", "exec", "--", "echo", "hi")
	if code != exitOK {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "[@local] hi\n") {
		t.Errorf("stdout = %q, want it to start with the command's output", stdout)
	}

	// One argument is a command line; quoting of several words is exact.
	_, stdout, _ = runCLI(t, "@local", "exec", "--", "echo a | tr a b")
	if !strings.Contains(stdout, "[@local] b\n") {
		t.Errorf("pipeline: stdout = %q", stdout)
	}
	_, stdout, _ = runCLI(t, "@local", "exec", "--", "printf", "%s|", "a  b", "it's", "$HOME")
	if !strings.Contains(stdout, "[@local] a  b|it's|$HOME|\n") {
		t.Errorf("quoting: stdout = %q", stdout)
	}

	code, _, stderr = runCLI(t, "@local", "exec", "--", "sh", "-c", "echo bad >&2; exit 4")
	if code != exitFailed {
		t.Errorf("failing exec: exit code %d, want %d", code, exitFailed)
	}
	if !strings.Contains(stderr, "[@local] bad\n") {
		t.Errorf("failing exec: stderr = %q", stderr)
	}
}

func TestFact(t *testing.T) {
	code, stdout, stderr := runCLI(t, "@local", "fact", "arch")
	if code != exitOK {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	line, _, _ := strings.Cut(stdout, "\n")
	if v, ok := strings.CutPrefix(line, "[@local] "); !ok || strings.TrimSpace(v) == "" || v == "None" {
		t.Errorf("fact arch printed %q", stdout)
	}
}

// TestInterruptBinary builds the real binary, interrupts it while a
// command runs and expects exit 130, a partial summary and no wait for the
// command to finish.
func TestInterruptBinary(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "started")
	script := writeFile(t, dir, "sleep.star", "shell('touch '+"+q(mark)+")\nshell('sleep 30')\n")
	interruptBinary(t, mark, "@local", "@local", script)
}

// TestInterruptBinarySSH interrupts a run over SSH: the remote command is
// killed, not left running, and the run exits 130.
func TestInterruptBinarySSH(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	mark := filepath.Join(dir, "started")
	script := writeFile(t, dir, "sleep.star", "shell('touch '+"+q(mark)+")\nshell('sleep 37; touch "+dir+"/late')\n")
	interruptBinary(t, mark, srv.Addr, "--key", srv.ClientKeyPath, "--user", srv.User, "--data", "ssh_allow_agent=false",
		"--data", "ssh_known_hosts_file="+filepath.Join(dir, "kh"), "@ssh/"+srv.Addr, script)
	for i := 0; ; i++ {
		out, _ := exec.Command("pgrep", "-f", "^sleep 37$").Output()
		if len(out) == 0 {
			break
		}
		if i == 50 {
			t.Fatalf("the remote command still runs after the interrupt: pids %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// interruptBinary builds the binary, runs it with args until mark exists,
// sends SIGINT and checks the exit code and the partial summary naming host.
func interruptBinary(t *testing.T, mark, host string, args ...string) {
	t.Helper()
	bin := buildBinary(t)
	r := startBinary(t, bin, args...)
	r.waitForFile(t, mark)
	time.Sleep(300 * time.Millisecond)                 // let the long command start
	r.signalAndWait(t, syscall.SIGINT, 15*time.Second) // well before the command would end by itself
	if code := r.cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit code %d, want %d", code, exitInterrupted)
	}
	out := r.stdout.String()
	for _, want := range []string{"HOST", host, "interrupted"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
	}
	noGoStack(t, out, r.stderr.String())
}

// TestDidYouMean: a misspelt subcommand, run word, fact, stdlib module or
// operation is named with the nearest right one, before any host runs.
func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"conectors"}, `"conectors" is no command (did you mean connectors?)`},
		{[]string{"docz"}, `"docz" is no command (did you mean docs?)`},
		{[]string{"exce"}, `"exce" is no command (did you mean exec? it follows the hosts: star-deploy INVENTORY exec ...)`},
		{[]string{"exec", "--", "ls"}, "exec follows the hosts: star-deploy INVENTORY exec ..."},
		{[]string{"@local", "exce", "--", "ls"}, "script exce does not exist (did you mean exec?)"},
		{[]string{"@local", "fiels.put", "/tmp/x"}, "no stdlib module fiels (did you mean files?)"},
		{[]string{"@local", "files.putt", "/tmp/x"}, "has no operation putt (did you mean put?)"},
		{[]string{"@local", "fact", "oss"}, `unknown fact "oss" (did you mean os?)`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d; stderr does not say %q:\n%s%s", code, tc.want, stderr, stdout)
			}
			if tc.args[0] != "@local" || tc.args[1] != "fact" {
				if code != exitUsage || stdout != "" {
					t.Errorf("exit %d, want %d before any host ran; stdout:\n%s", code, exitUsage, stdout)
				}
			}
		})
	}
}

// TestInterruptedCommandSaysItOnce: the error of an interrupted command
// names the command and the host once each.
func TestInterruptedCommandSaysItOnce(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "mark")
	script := writeFile(t, dir, "s.star", "shell('touch "+mark+"; sleep 30')\n")
	r := startBinary(t, buildBinary(t), "@local", script)
	r.waitForFile(t, mark)
	r.signalAndWait(t, syscall.SIGINT, 10*time.Second)
	out := r.stderr.String() + r.stdout.String()
	if !strings.Contains(out, "run on @local") || strings.Count(out, "@local: run on @local") > 0 || strings.Contains(out, "run \"") {
		t.Errorf("the interrupted command's error repeats itself or lost the host:\n%s", out)
	}
}

// TestUnknownKeywordReportedOnce: a keyword no callee takes fails the run
// before any host connects (the second host has nothing listening), with
// one message, not one per host.
func TestUnknownKeywordReportedOnce(t *testing.T) {
	script := writeFile(t, t.TempDir(), "s.star", "shell('true', tmeout = 3)\n")
	code, stdout, stderr := runCLI(t, "@local,@ssh/127.0.0.1:1", script)
	if code != exitUsage || stdout != "" {
		t.Errorf("exit %d, want %d with no host run; stdout:\n%s", code, exitUsage, stdout)
	}
	if n := strings.Count(stderr, `unexpected keyword argument "tmeout" (did you mean timeout?)`); n != 1 {
		t.Errorf("the error is reported %d times, want once:\n%s", n, stderr)
	}
}

// TestVerbosityLevels: -vv shows every command sent (probes too, secrets
// redacted), -vvv also each line of output, -q only failures, print() and
// the summary; the level also comes from STAR_DEPLOY_VERBOSE.
func TestVerbosityLevels(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "s.star", `shell("echo line-one; echo line-two >&2")
put("`+dir+`/f", content = "x")
print("printed")
shell("exit 3", ignore_errors = True, name = "fails")
`)
	run := func(env []string, args ...string) string {
		t.Helper()
		for _, e := range env {
			k, v, _ := strings.Cut(e, "=")
			t.Setenv(k, v)
		}
		code, stdout, stderr := runCLI(t, append(args, "--data", "api_password=pw-canary-1", "@local", script)...)
		if code != 0 {
			t.Fatalf("%q: exit %d\n%s%s", args, code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, "pw-canary-1") {
			t.Errorf("%q: a secret reached the output", args)
		}
		return stdout
	}
	plain := run(nil)
	vv := run(nil, "-vv")
	vvv := run(nil, "-vvv")
	quiet := run(nil, "-q")
	env := run([]string{"STAR_DEPLOY_VERBOSE=2"}) // last: t.Setenv holds to the end

	for _, c := range []struct {
		name, out, want string
		has             bool
	}{
		{"plain shows no command", plain, "[@local] $ ", false},
		{"-vv shows the command", vv, "[@local] $ echo line-one; echo line-two >&2", true},
		{"-vv shows put's probe", vv, dir + "/f", true},
		{"-vv shows no live output", vv, "[@local] out| line-one", false},
		{"-vvv shows stdout lines", vvv, "[@local] out| line-one", true},
		{"-vvv shows stderr lines", vvv, "[@local] err| line-two", true},
		{"STAR_DEPLOY_VERBOSE=2 is -vv", env, "[@local] $ echo line-one", true},
		{"-q hides changes", quiet, "changed", false},
		{"-q keeps print()", quiet, "[@local] printed", true},
		{"-q keeps failures", quiet, "[@local] fails: failed (ignored)", true},
		{"-q keeps the summary", quiet, "1 host: 1 ok", true},
	} {
		if strings.Contains(c.out, c.want) != c.has {
			t.Errorf("%s: contains %q = %v, want %v:\n%s", c.name, c.want, !c.has, c.has, c.out)
		}
	}
	t.Setenv("STAR_DEPLOY_VERBOSE", "0")
	if code, _, stderr := runCLI(t, "-q", "-v", "@local", script); code != exitUsage || !strings.Contains(stderr, "-q and -v cannot go together") {
		t.Errorf("-q -v: exit %d\n%s", code, stderr)
	}
}

// TestJSONTraceEvents: with --json -vvv, commands and output lines are
// events of their own.
func TestJSONTraceEvents(t *testing.T) {
	script := writeFile(t, t.TempDir(), "s.star", `shell("echo hello")`+"\n")
	code, stdout, stderr := runCLI(t, "--json", "-vvv", "@local", script)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var cmd, out bool
	for _, e := range jsonEvents(t, stdout) {
		cmd = cmd || e.Kind == sdrt.KindCommand && strings.Contains(e.Message, "echo hello")
		out = out || e.Kind == sdrt.KindOutput && e.Stream == "stdout" && e.Message == "hello"
	}
	if !cmd || !out {
		t.Errorf("command event %v, output event %v:\n%s", cmd, out, stdout)
	}
}

// TestJSONFactAndErrorEvents: with --json a fact is a JSON value, not text,
// and an error before any host runs is an error event on stdout.
func TestJSONFactAndErrorEvents(t *testing.T) {
	code, stdout, stderr := runCLI(t, "--json", "@local", "fact", "file", "/")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var found bool
	for line := range strings.Lines(stdout) {
		var e struct {
			Kind  string
			Host  string
			Value struct {
				Exists bool
				Type   string
			}
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if e.Kind == "fact" {
			found = e.Host == "@local" && e.Value.Exists && e.Value.Type == "directory"
		}
		if e.Kind == "print" {
			t.Errorf("the fact came as a print event: %s", line)
		}
	}
	if !found {
		t.Errorf("no fact event with the value of file /:\n%s", stdout)
	}

	bad := writeFile(t, t.TempDir(), "bad.star", "shel('x')\n")
	for _, args := range [][]string{{"--json", "@local", bad}, {"--json", "@local", "no-such.star"}, {"--json", "--parallel", "-1", "@local", bad}} {
		code, stdout, _ := runCLI(t, args...)
		var e errorEvent
		if err := json.Unmarshal([]byte(stdout), &e); err != nil || e.Kind != "error" || e.ExitCode != exitUsage || code != exitUsage || e.Error == "" {
			t.Errorf("%q: exit %d, want one error event on stdout, got %q (%v)", args, code, stdout, err)
		}
	}
}
