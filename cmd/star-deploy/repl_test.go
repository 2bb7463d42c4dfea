package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// replPipe runs the real binary's REPL with input on a pipe and returns
// its exit code and output.
func replPipe(t *testing.T, input string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), append(args, "repl")...)
	cmd.Stdin = strings.NewReader(input)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 30 * time.Second
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// TestREPLPipe: lines from a pipe run one after another on @local, with
// globals kept, values printed, an error printed and the next line run,
// blocks read until a blank line, and load() and the stdlib at hand.
func TestREPLPipe(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hosts")
	input := strings.Join([]string{
		`fact("arch")`,
		`x = 20`,
		`x + 1`,
		`shel("true")`,
		`x * 2`,
		`def twice(s):`,
		`    return s + s`,
		``,
		`twice("ab")`,
		`for i in range(2):`,
		`    print("i=%d" % i)`,
		``,
		`load("@stdlib//files.star", f = "files")`,
		`f.line(` + q(file) + `, "127.0.0.1 x").changed`,
		`files.line(` + q(file) + `, "127.0.0.1 x").changed`,
		`shell("echo out").stdout`,
		`print("done")`,
	}, "\n") + "\n"
	code, out, errOut := replPipe(t, input, "@local")
	arch, _ := exec.Command("uname", "-m").Output()
	want := []string{
		`[@local] "` + strings.TrimSpace(string(arch)) + `"`,
		`[@local] 21`,
		`[@local] 40`,
		`[@local] "abab"`,
		"[@local] i=0\n[@local] i=1",
		`[@local] True`,
		`[@local] False`,
		`[@local] "out\n"`,
		`[@local] done`,
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q\nstdout:\n%s\nstderr:\n%s", w, out, errOut)
		}
	}
	if !strings.Contains(errOut, `[@local] error: <repl>:1:1: undefined: shel (did you mean shell?)`) {
		t.Errorf("stderr lacks the error of shel:\n%s", errOut)
	}
	if code != exitFailed {
		t.Errorf("exit code %d, want %d: a line failed", code, exitFailed)
	}
	if b, _ := os.ReadFile(file); string(b) != "127.0.0.1 x\n" {
		t.Errorf("%s = %q", file, b)
	}

	// Without a failing line it exits 0; a block at the end of the input
	// needs no blank line; a syntax error names its line.
	code, out, errOut = replPipe(t, "def f():\n    return 7\n\nf()\nif True:\n    print('last')", "@local")
	if code != 0 || !strings.Contains(out, "[@local] 7\n") || !strings.Contains(out, "[@local] last\n") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = replPipe(t, "x = (1,\n2))\n3\n", "@local")
	if code != exitFailed || !strings.Contains(errOut, "error: <repl>:2:3:") || !strings.Contains(out, "[@local] 3\n") {
		t.Errorf("syntax error: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestREPLDry: under --dry nothing changes, and each operation says what
// it would do.
func TestREPLDry(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	input := `put(` + q(file) + `, content = "x")` + "\n" +
		`files.line(` + q(file) + `, "y").changed` + "\n" +
		`shell("touch ` + file + `")` + "\n"
	code, out, errOut := replPipe(t, input, "--dry", "@local")
	if code != 0 || !strings.Contains(out, "would change") || !strings.Contains(out, "[@local] True") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if exists(t, file) {
		t.Errorf("--dry created %s", file)
	}
}

// TestREPLUsage: repl takes no arguments and no --json, and a misspelt
// repl is suggested.
func TestREPLUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"@local", "repl", "x"}, "repl takes no arguments"},
		{[]string{"--json", "@local", "repl"}, "repl does not write --json"},
		{[]string{"repl"}, "repl follows the hosts"},
		{[]string{"rpel"}, "did you mean repl?"},
	} {
		code, _, errOut := runCLI(t, tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
}

// TestREPLTwoHosts: @local and a real sshd on loopback each get every
// line, print their own results and keep their own globals; the SSH host
// stays on one connection (the same client port) from line to line.
func TestREPLTwoHosts(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	ssh := srv.Addr // as the output names it
	input := strings.Join([]string{
		`n = host.name`,
		`n`,
		`port = shell("echo ${SSH_CONNECTION:-none}").stdout.split(" ")[1] if host.name != "@local" else "-"`,
		`port == shell("echo ${SSH_CONNECTION:-none}").stdout.split(" ")[1] if host.name != "@local" else "-"`,
		`if host.name == "@local":`,
		`    only = 1`,
		``,
		`only`,
		`"after"`,
	}, "\n") + "\n"
	code, out, errOut := replPipe(t, input, "--key", srv.ClientKeyPath, "--user", srv.User, "--data", "ssh_allow_agent=false",
		"--data", "ssh_known_hosts_file="+filepath.Join(t.TempDir(), "kh"), "@local,@ssh/"+ssh)
	for _, w := range []string{
		`[@local] "@local"`, `[` + ssh + `] "` + ssh + `"`,
		`[` + ssh + `] True`, `[@local] "-"`,
		`[@local] 1`, `[@local] "after"`, `[` + ssh + `] "after"`,
	} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q\nstdout:\n%s\nstderr:\n%s", w, out, errOut)
		}
	}
	if !strings.Contains(errOut, "["+ssh+"] error: <repl>:1:1: undefined: only") || strings.Contains(errOut, "[@local] error") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
}

// TestREPLInterrupt: a SIGINT stops the running line (its command is
// killed) and the REPL goes on with the next line.
func TestREPLInterrupt(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	mark := filepath.Join(dir, "started")
	r := &binaryRun{cmd: exec.Command(bin, "@local", "repl"), done: make(chan error, 1)}
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	stdin, err := r.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill() })
	go func() { r.done <- r.cmd.Wait() }()
	io.WriteString(stdin, `shell("touch `+mark+`; sleep 41")`+"\n")
	r.waitForFile(t, mark)
	time.Sleep(300 * time.Millisecond) // let the sleep start
	r.cmd.Process.Signal(syscall.SIGINT)
	io.WriteString(stdin, `"went on"`+"\n")
	waitFor(t, &r.stdout, `[@local] "went on"`, r)
	stdin.Close()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the REPL did not end at EOF\nstdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
	}
	if out, _ := exec.Command("pgrep", "-f", "^sleep 41$").Output(); len(out) != 0 {
		t.Errorf("the interrupted command still runs: %s", out)
	}
	if !strings.Contains(r.stderr.String(), "interrupted") {
		t.Errorf("stderr:\n%s", r.stderr.String())
	}
}

// waitFor waits until buf holds want, failing t after 20 s or when the
// run ends first.
func waitFor(t *testing.T, buf *conntest.SyncBuffer, want string, r *binaryRun) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(buf.String(), want); {
		if r != nil {
			select {
			case err := <-r.done:
				r.done <- err
				t.Fatalf("the run ended (%v) before it wrote %q\nstdout:\n%s\nstderr:\n%s", err, want, r.stdout.String(), r.stderr.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after 20s:\n%s", want, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestREPLTerminal drives the REPL on a pseudo-terminal (util-linux
// script): it prompts, Tab completes a builtin's name and a module's
// member, Up brings back the line before, Ctrl-C drops a typed line, Tab
// indents a block, Ctrl-D exits.
func TestREPLTerminal(t *testing.T) {
	bin := buildBinary(t)
	scriptCmd, err := exec.LookPath("script")
	if err != nil {
		sshtest.Skip(t, "script (util-linux) is not installed")
	}
	// See startAtPassphrasePrompt for the trap.
	cmd := exec.Command(scriptCmd, "-qec", "trap '' INT; "+bin+" @local repl; echo exit=$?", "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=xterm", "NO_COLOR=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out conntest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	prompts := 0
	// typ waits for the next prompt, then types keys.
	typ := func(keys string) {
		prompts++
		for deadline := time.Now().Add(20 * time.Second); strings.Count(out.String(), ">>> ")+strings.Count(out.String(), "... ") < prompts; {
			if time.Now().After(deadline) {
				t.Fatalf("no prompt %d:\n%s", prompts, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		io.WriteString(stdin, keys)
	}
	typ("x = 6 * 7\r")
	typ("x\r")
	waitFor(t, &out, "[@local] 42", nil)
	typ("fac\t(\"arch\") and \"tab-ok\"\r") // fac -> fact
	waitFor(t, &out, `[@local] "tab-ok"`, nil)
	typ("\x1b[A\r") // Up: the line before, again
	waitFor(t, &out, "fact(\"arch\") and \"tab-ok\"\r\n[@local] \"tab-ok\"\r\n>>> fact(\"arch\") and \"tab-ok\"", nil)
	typ("host.na\t\r") // a member: host.name
	waitFor(t, &out, `[@local] "@local"`, nil)
	typ("\"dropped\"\x03") // Ctrl-C drops the line
	typ("def f():\r")
	typ("\treturn \"indented\"\r") // Tab indents
	typ("\r")
	typ("f()\r")
	waitFor(t, &out, `[@local] "indented"`, nil)
	typ("\x04") // Ctrl-D
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("Ctrl-D did not end the REPL:\n%s", out.String())
	}
	got := out.String()
	t.Logf("the terminal showed:\n%s", got)
	if strings.Contains(got, `[@local] "dropped"`) {
		t.Errorf("the line dropped with Ctrl-C ran:\n%s", got)
	}
	if !strings.Contains(got, "exit=0") {
		t.Errorf("want exit 0:\n%s", got)
	}
}
