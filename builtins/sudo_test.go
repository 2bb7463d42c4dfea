package builtins_test

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
)

// fakeSudo answers `sudo -S -p PROMPT` the way sudo does: it writes the
// prompt to stderr and reads a line from stdin, asking again after a wrong
// password; once satisfied it prints the ready line and runs the command,
// here `cat`, echoing the rest of stdin.
func fakeSudo(password string, seen *[]string) fake.Handler {
	promptRE := regexp.MustCompile(`sudo -H -S -p '([^']*)'`)
	return func(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
		*seen = append(*seen, cmd.Script)
		prompt := promptRE.FindStringSubmatch(cmd.Script)[1]
		in := bufio.NewReader(cmd.Stdin)
		for try := 0; try < 3; try++ {
			io.WriteString(cmd.Stderr, prompt)
			line, err := in.ReadString('\n')
			if err != nil {
				return connectors.Result{ExitCode: 1}, ctx.Err()
			}
			if strings.TrimSuffix(line, "\n") == password {
				io.WriteString(cmd.Stderr, prompt+connectors.SudoReady+"\n")
				io.WriteString(cmd.Stderr, "from the command\n")
				rest, _ := io.ReadAll(in)
				return connectors.Result{Stdout: rest}, nil
			}
			io.WriteString(cmd.Stderr, "Sorry, try again.\n")
		}
		return connectors.Result{ExitCode: 1}, nil
	}
}

func runWithSudoPassword(t *testing.T, password string, conn *fake.Conn, src string) (starlark.StringDict, error) {
	t.Helper()
	target, _ := fake.NewFactory(func(connectors.Target) *fake.Conn { return conn }).Parse("h", nil)
	c, err := fake.NewFactory(func(connectors.Target) *fake.Conn { return conn }).Open(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	h := &builtins.Host{Name: "h", Conn: c, Defaults: builtins.Control{Sudo: true, SudoPassword: password}}
	thread := &starlark.Thread{Name: "test"}
	builtins.WithHost(thread, t.Context(), h)
	return starlark.ExecFileOptions(&syntax.FileOptions{}, thread, "sudo.star", src, builtins.Predeclared(^builtins.Effect(0)))
}

func TestSudoPasswordFedOnStdin(t *testing.T) {
	var seen []string
	conn := fake.New("h").OnFunc("sudo", fakeSudo("s3cret-canary", &seen))
	g, err := runWithSudoPassword(t, "s3cret-canary", conn, `r = shell("cat", stdin = "command input\n")`)
	if err != nil {
		t.Fatal(err)
	}
	r := g["r"].(starlark.HasAttrs)
	out, _ := r.Attr("stdout")
	errs, _ := r.Attr("stderr")
	if got := string(out.(starlark.String)); got != "command input\n" {
		t.Errorf("stdout = %q: the command must get its own stdin, not the password", got)
	}
	if got := string(errs.(starlark.String)); got != "from the command\n" {
		t.Errorf("stderr = %q: the prompt and ready lines must be stripped", got)
	}
	for _, s := range seen {
		if strings.Contains(s, "s3cret-canary") {
			t.Errorf("the password is in the command line: %s", s)
		}
	}
}

func TestWrongSudoPasswordFailsAtOnce(t *testing.T) {
	var seen []string
	conn := fake.New("h").OnFunc("sudo", fakeSudo("right", &seen))
	_, err := runWithSudoPassword(t, "wrong-canary", conn, `shell("cat")`)
	if err == nil || !strings.Contains(err.Error(), "sudo rejected the password") {
		t.Fatalf("err = %v, want a wrong-password error", err)
	}
	if strings.Contains(err.Error(), "wrong-canary") {
		t.Errorf("the password is in the error: %v", err)
	}
	if len(seen) != 1 {
		t.Errorf("ran %d commands, want 1 attempt", len(seen))
	}
}

// TestSudoPasswordStderrIsCapped: with a sudo password, stderr goes through
// the prompt watcher, which keeps the command's stderr within max_output
// and stops a sudo that writes without end before the command starts.
func TestSudoPasswordStderrIsCapped(t *testing.T) {
	promptRE := regexp.MustCompile(`sudo -H -S -p '([^']*)'`)
	chunk := strings.Repeat("e", 1000) + "\n"
	noisy := func(started bool) fake.Handler {
		return func(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
			prompt := promptRE.FindStringSubmatch(cmd.Script)[1]
			if started {
				io.WriteString(cmd.Stderr, prompt)
				bufio.NewReader(cmd.Stdin).ReadString('\n')
				io.WriteString(cmd.Stderr, prompt+connectors.SudoReady+"\n")
			}
			for range 3000 { // 3 MB
				if ctx.Err() != nil {
					return connectors.Result{ExitCode: -1}, ctx.Err()
				}
				io.WriteString(cmd.Stderr, chunk)
			}
			io.WriteString(cmd.Stderr, "last line\n")
			return connectors.Result{}, nil
		}
	}
	g, err := runWithSudoPassword(t, "pw", fake.New("h").OnFunc("sudo", noisy(true)), `r = shell("noisy", max_output = 4096)`)
	if err != nil {
		t.Fatal(err)
	}
	r := g["r"].(starlark.HasAttrs)
	errs, _ := r.Attr("stderr")
	dropped, _ := r.Attr("stderr_dropped")
	if s := string(errs.(starlark.String)); len(s) != 4096 || !strings.HasSuffix(s, "e\nlast line\n") {
		t.Errorf("stderr has %d bytes ending %q, want 4096 ending with the last line", len(s), s[max(0, len(s)-20):])
	}
	if got, want := dropped.String(), "2998914"; got != want { // 3000*1001 + 10 - 4096
		t.Errorf("stderr_dropped = %s, want %s", got, want)
	}

	_, err = runWithSudoPassword(t, "pw", fake.New("h").OnFunc("sudo", noisy(false)), `shell("noisy")`)
	if err == nil || !strings.Contains(err.Error(), "without starting the command") {
		t.Fatalf("err = %v, want the sudo preamble error", err)
	}
}
