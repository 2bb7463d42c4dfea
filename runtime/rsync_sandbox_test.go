package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/star-deploy/star-deploy/builtins"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// TestSandboxRsync: the rsync builtin runs a local program (local-exec), so
// a sandbox withholds it unless it allows that effect: a script calling it
// does not compile, and files.rsync, whose module sees the withheld builtin
// as a false value, is files.sync over the sandbox's files. Allowing
// local-exec does not let rsync read the app's fs.FS: it falls back too.
func TestSandboxRsync(t *testing.T) {
	files := fstest.MapFS{"site/index.html": {Data: []byte("<h1>hi</h1>\n")}}
	base := builtins.EffectReadHost | builtins.EffectWriteHost | builtins.EffectLocalFS
	run := func(t *testing.T, effects sdrt.Effect, script string) (sdrt.HostResult, error) {
		t.Helper()
		r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Stdlib: stdlib.FS,
			Sandbox: &sdrt.Sandbox{Files: files, Effects: effects, Connectors: []string{"local"}}})
		prog, err := r.Compile(t.Context(), "deploy.star", []byte(script))
		if err != nil {
			return sdrt.HostResult{}, err
		}
		return r.Run(t.Context(), []*sdrt.Program{prog}, []sdrt.Host{localHost(t, "h", nil)}).Hosts[0], nil
	}

	t.Run("a script calling rsync does not compile", func(t *testing.T) {
		_, err := run(t, base, `rsync("site/", "/srv/site")`)
		if err == nil || !errors.Is(err, sdrt.ErrSandbox) || !strings.Contains(err.Error(), "rsync is not available here: the sandbox does not allow the local-exec effect") {
			t.Fatalf("err = %v", err)
		}
	})

	for _, effects := range []sdrt.Effect{base, base | sdrt.EffectLocalExec} {
		t.Run("files.rsync is files.sync with "+effects.String(), func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "www")
			res, err := run(t, effects, `load("@stdlib//files.star", "files")
r = files.rsync("site/", `+strings.Replace(`"DEST"`, "DEST", dest, 1)+`, flags = ["-a"])
if not hasattr(r, "steps"):
    fail("not files.sync: %r" % r)
`)
			if err != nil || res.Err != nil {
				t.Fatalf("%v %v", err, res.Err)
			}
			if b, err := os.ReadFile(filepath.Join(dest, "index.html")); err != nil || string(b) != "<h1>hi</h1>\n" {
				t.Errorf("index.html = %q, %v", b, err)
			}
		})
	}

	t.Run("use_rsync = True fails", func(t *testing.T) {
		res, err := run(t, base, `load("@stdlib//files.star", "files")
files.rsync("site/", "/srv/site", use_rsync = True)
`)
		if err != nil || res.Err == nil || !strings.Contains(res.Err.Error(), "the rsync builtin is not available here (the sandbox does not allow the local-exec effect)") {
			t.Fatalf("%v %v", err, res.Err)
		}
	})

	t.Run("rsync with local-exec refuses the app's files", func(t *testing.T) {
		res, err := run(t, base|sdrt.EffectLocalExec, `rsync("site/", "/srv/site")`)
		if err != nil || res.Err == nil || !strings.Contains(res.Err.Error(), "the local files here are not this machine's own") {
			t.Fatalf("%v %v", err, res.Err)
		}
	})
}

// TestSandboxWithheldOptionalBuiltin: a stdlib module sees the withheld
// rsync as a false value, which refuses a call with the sandbox's message;
// a builtin that is not optional stays undefined there too.
func TestSandboxWithheldOptionalBuiltin(t *testing.T) {
	std := fstest.MapFS{
		"m.star":   {Data: []byte("def _probe():\n    return bool(rsync), type(rsync)\n\ndef _call():\n    rsync('a/', '/b')\n\nm = struct(probe = _probe, call = _call)\n")},
		"bad.star": {Data: []byte("def f():\n    shell('id')\n")},
	}
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Stdlib: std,
		Sandbox: &sdrt.Sandbox{Effects: builtins.EffectReadHost | builtins.EffectWriteHost | builtins.EffectLocalFS, Connectors: []string{"fake"}}})
	prog, err := r.Compile(t.Context(), "deploy.star", []byte(`load("@stdlib//m.star", "m")
if m.probe() != (False, "withheld_builtin"):
    fail("probe: %r" % (m.probe(),))
m.call()
`))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := fakeHost("h")
	err = r.Run(t.Context(), []*sdrt.Program{prog}, []sdrt.Host{host}).Hosts[0].Err
	if err == nil || !errors.Is(err, sdrt.ErrSandbox) || !strings.Contains(err.Error(), "rsync is not available here: the sandbox does not allow the local-exec effect") {
		t.Fatalf("err = %v", err)
	}
	r2 := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Stdlib: std, Sandbox: &sdrt.Sandbox{Effects: builtins.EffectReadHost}})
	if _, err := r2.Compile(t.Context(), "deploy.star", []byte(`load("@stdlib//bad.star", "f")`)); err == nil || !strings.Contains(err.Error(), "undefined: shell") {
		t.Fatalf("err = %v", err)
	}
}
