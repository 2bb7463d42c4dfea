package runtime_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// TestSecretsReachNoEventOrError: a secret the script puts in a command
// line, a command's output, a file's content, print() or fail() shows as
// [secret] in every event (verbose, --diff, -vvv) and in the host's error
// and backtrace, while the host still gets the real value. The secrets are
// a secret data key and the sudo password of the run's options.
func TestSecretsReachNoEventOrError(t *testing.T) {
	dir := t.TempDir()
	const pw, sudo = "canary-db-pw", "canary-sudo-pw"
	host := localHost(t, "@local", map[string]any{"dir": dir, "db_password": pw})
	var mu sync.Mutex
	var events []string
	opts := sdrt.Options{
		Connectors: connectorsFor(), Diff: true, Verbose: true, Trace: sdrt.TraceOutput,
		Control: sdrt.Control{SudoPassword: sudo},
		OnEvent: func(e sdrt.Event) {
			b, _ := json.Marshal(e)
			mu.Lock()
			events = append(events, string(b))
			mu.Unlock()
		},
	}
	os.WriteFile(filepath.Join(dir, "f"), []byte("pw=old\n"), 0o644)
	err := runOne(t, t.Context(), opts, `
d = host.data["dir"]
pw = secret("db_password")
print("print " + pw)
put(d + "/f", content = "pw=" + pw + "\n")
shell("echo out " + pw + " `+sudo+`; echo err " + pw + " >&2")
res = shell("printf %s " + pw)
if res.stdout != pw:
    fail("the script's own result lost the secret: " + res.stdout)
fail("giving up on " + pw)
`, host)
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "pw="+pw+"\n" {
		t.Errorf("the host got %q, want the real secret in the file", b)
	}
	var se *sdrt.ScriptError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "giving up on [secret]") {
		t.Fatalf("err = %v, want the script's fail() with the secret replaced", err)
	}
	all := strings.Join(events, "\n")
	for _, text := range []string{err.Error(), se.Msg, se.Backtrace, all} {
		if strings.Contains(text, pw) || strings.Contains(text, sudo) {
			t.Errorf("a secret shows:\n%s", text)
		}
	}
	// Each place a secret would have shown says [secret] instead.
	for _, want := range []string{`"message":"print [secret]"`, `+pw=[secret]`, `"name":"echo out [secret] [secret]; echo err [secret] \u003e\u00262"`,
		`"stdout":"out [secret] [secret]\n"`, `"stderr":"err [secret]\n"`, `"kind":"output","host":"@local","message":"out [secret] [secret]","stream":"stdout"`,
		`"kind":"host_end","host":"@local","status":"failed","error":"deploy.star:10:5: fail: giving up on [secret]"`} {
		if !strings.Contains(all, want) {
			t.Errorf("no event holds %s:\n%s", want, all)
		}
	}
}
