package builtins_test

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
)

// traced runs src on a fake host at trace level tr and returns its
// command and output events.
func traced(t *testing.T, tr builtins.Trace, conn *fake.Conn, data map[string]any, src string) []builtins.Event {
	t.Helper()
	f := fake.NewFactory(func(connectors.Target) *fake.Conn { return conn })
	target, _ := f.Parse("h", nil)
	c, err := f.Open(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	var evs []builtins.Event
	h := &builtins.Host{Name: "h", Conn: c, Data: data, Trace: tr, Emit: func(e builtins.Event) {
		if e.Kind == builtins.KindCommand || e.Kind == builtins.KindOutput {
			evs = append(evs, e)
		}
	}}
	thread := &starlark.Thread{Name: "test"}
	builtins.WithHost(thread, t.Context(), h)
	if _, err := starlark.ExecFileOptions(&syntax.FileOptions{}, thread, "trace.star", src, builtins.Predeclared(^builtins.Effect(0))); err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestTraceCommandsRedactsSecrets(t *testing.T) {
	conn := fake.New("h").On("", connectors.Result{Stdout: []byte("out\n")})
	data := map[string]any{"db_password": "hunter2-canary", "ssh_user": "deploy"}
	evs := traced(t, builtins.TraceCommands, conn, data,
		`shell("mysql -phunter2-canary -e 'select 1'", env = {"API_TOKEN": "tok-canary", "LANG": "C"})`)
	if len(evs) != 1 || evs[0].Kind != builtins.KindCommand {
		t.Fatalf("want one command event, got %+v", evs)
	}
	msg := evs[0].Message
	for _, secret := range []string{"hunter2-canary", "tok-canary"} {
		if strings.Contains(msg, secret) {
			t.Errorf("the command event shows the secret %q:\n%s", secret, msg)
		}
	}
	if !strings.Contains(msg, "mysql -p[secret] -e 'select 1'") || !strings.Contains(msg, "LANG=C") {
		t.Errorf("the command event is not the command sent, redacted:\n%s", msg)
	}
	// The host got the real command.
	if sent := conn.Commands(); len(sent) != 1 || !strings.Contains(sent[0], "hunter2-canary") {
		t.Errorf("sent %q", sent)
	}
}

func TestTraceOffAndCommandsEmitNoOutput(t *testing.T) {
	conn := fake.New("h").On("", connectors.Result{Stdout: []byte("out\n")})
	if evs := traced(t, builtins.TraceOff, conn, nil, `shell("echo out")`); len(evs) != 0 {
		t.Errorf("TraceOff emitted %+v", evs)
	}
	for _, e := range traced(t, builtins.TraceCommands, conn, nil, `shell("echo out")`) {
		if e.Kind == builtins.KindOutput {
			t.Errorf("TraceCommands emitted output %+v", e)
		}
	}
}

func TestTraceOutputLines(t *testing.T) {
	long := strings.Repeat("x", 4096*2+10)
	conn := fake.New("h").On("", connectors.Result{Stdout: []byte("one\ntwo\n" + long + "\npartial"), Stderr: []byte("warn\n")})
	evs := traced(t, builtins.TraceOutput, conn, nil, `shell("talk")`)
	var out, errs []string
	for _, e := range evs {
		switch {
		case e.Kind == builtins.KindOutput && e.Stream == "stdout":
			out = append(out, e.Message)
		case e.Kind == builtins.KindOutput && e.Stream == "stderr":
			errs = append(errs, e.Message)
		}
	}
	// A line longer than 4 KiB comes in pieces; the last line without a
	// newline comes when the command ends.
	want := []string{"one", "two", long[:4096], long[4096:8192], long[8192:], "partial"}
	if strings.Join(out, "|") != strings.Join(want, "|") {
		t.Errorf("stdout lines: got %d pieces %q..., want %d", len(out), out[:min(len(out), 2)], len(want))
	}
	if len(errs) != 1 || errs[0] != "warn" {
		t.Errorf("stderr lines %q", errs)
	}
}
