package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// sentinels are the exported errors an app tells failures apart with.
var sentinels = map[string]error{
	"ErrStepLimit":   sdrt.ErrStepLimit,
	"ErrTimeout":     sdrt.ErrTimeout,
	"ErrMemoryLimit": sdrt.ErrMemoryLimit,
	"ErrSandbox":     sdrt.ErrSandbox,
	"ErrCancelled":   sdrt.ErrCancelled,
}

// matchesOnly fails t unless err matches the sentinel want, and no other.
func matchesOnly(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one matching %s", want)
	}
	for name, s := range sentinels {
		if got := errors.Is(err, s); got != (name == want) {
			t.Errorf("errors.Is(%q, %s) = %v", err, name, got)
		}
	}
}

// runOne compiles src with opts and runs it on host, returning the error of
// Compile or of the host.
func runOne(t *testing.T, ctx context.Context, opts sdrt.Options, src string, host sdrt.Host) error {
	t.Helper()
	if opts.Connectors == nil {
		opts.Connectors = connectorsFor()
	}
	r := sdrt.New(opts)
	p, err := r.Compile(ctx, "deploy.star", []byte(src))
	if err != nil {
		return err
	}
	return r.Run(ctx, []*sdrt.Program{p}, []sdrt.Host{host}).Hosts[0].Err
}

// TestSentinelErrors: each way the runtime stops a script matches its
// exported error, and only that one.
func TestSentinelErrors(t *testing.T) {
	loop := "while True:\n    pass\n"
	sandbox := &sdrt.Sandbox{Connectors: []string{"fake"}, Effects: sdrt.EffectReadHost | sdrt.EffectWriteHost}
	withFiles := &sdrt.Sandbox{Connectors: []string{"fake"}, Effects: sdrt.EffectReadHost | sdrt.EffectWriteHost | sdrt.EffectLocalFS,
		Files: fstest.MapFS{"lib.star": {Data: []byte(loop)}}}
	fakeH, _ := fakeHost("h")
	for _, c := range []struct {
		name, want, src string
		opts            sdrt.Options
		cancel          bool // cancel the run's context after 200ms
		host            sdrt.Host
	}{
		{name: "steps", want: "ErrStepLimit", src: loop, opts: sdrt.Options{MaxSteps: 1000}},
		{name: "steps in a module at compile", want: "ErrStepLimit", src: `load("lib.star", "x")`, opts: sdrt.Options{MaxSteps: 1000, Sandbox: withFiles}},
		{name: "timeout", want: "ErrTimeout", src: loop, opts: sdrt.Options{Timeout: 200 * time.Millisecond}},
		{name: "timeout in a command", want: "ErrTimeout", src: `shell("sleep 30")`, opts: sdrt.Options{Timeout: 200 * time.Millisecond}},
		{name: "cancelled", want: "ErrCancelled", src: `shell("sleep 30")`, cancel: true},
		{name: "withheld builtin", want: "ErrSandbox", src: `shell("id")`, opts: sdrt.Options{Sandbox: &sdrt.Sandbox{Effects: sdrt.EffectReadHost}}},
		{name: "path outside", want: "ErrSandbox", src: `put("/x", src = "/etc/passwd")`, opts: sdrt.Options{Sandbox: withFiles}},
		{name: "no files", want: "ErrSandbox", src: `template("t.tmpl", "/x")`, opts: sdrt.Options{Sandbox: &sdrt.Sandbox{Connectors: []string{"fake"}, Effects: withFiles.Effects}}},
		{name: "load outside", want: "ErrSandbox", src: `load("../x.star", "x")`, opts: sdrt.Options{Sandbox: withFiles}},
		{name: "connector not allowed", want: "ErrSandbox", src: `shell("id")`, opts: sdrt.Options{Sandbox: sandbox}, host: localHost(t, "h", nil)},
		{name: "range", want: "ErrSandbox", src: `range(1 << 30)`, opts: sdrt.Options{Sandbox: sandbox}},
		{name: "print cap", want: "ErrSandbox", src: "while True:\n    print('x' * 1000)\n", opts: sdrt.Options{Sandbox: &sdrt.Sandbox{Connectors: []string{"fake"}, MaxOutput: 10_000}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if c.cancel {
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			host := c.host
			if host.Name == "" {
				host = fakeH
			}
			if c.opts.Sandbox == nil && c.host.Name == "" {
				host = localHost(t, "h", nil)
			}
			matchesOnly(t, runOne(t, ctx, c.opts, c.src, host), c.want)
		})
	}
}

// TestWithheldBuiltinSaysWhy: a builtin the sandbox withholds is reported
// at compile time as not available, naming the effect the sandbox lacks.
func TestWithheldBuiltinSaysWhy(t *testing.T) {
	for _, c := range []struct {
		effects sdrt.Effect
		src     string
		want    string
	}{
		{sdrt.EffectReadHost | sdrt.EffectWriteHost, `put("/x", content = "y")`, "deploy.star:1:1: undefined: put (put is not available here: the sandbox does not allow the local-fs effect)"},
		{sdrt.EffectReadHost, `shell("id")`, "deploy.star:1:1: undefined: shell (shell is not available here: the sandbox does not allow the write-host effect)"},
		{0, `get("/a", "b")`, "deploy.star:1:1: undefined: get (get is not available here: the sandbox does not allow the read-host+local-fs effects)"},
	} {
		r := sdrt.New(sdrt.Options{Sandbox: &sdrt.Sandbox{Effects: c.effects}})
		_, err := r.Compile(t.Context(), "deploy.star", []byte(c.src))
		var ce *sdrt.CompileError
		if !errors.As(err, &ce) || err.Error() != c.want || !errors.Is(err, sdrt.ErrSandbox) {
			t.Errorf("%s: err = %v, want a *CompileError %q matching ErrSandbox", c.src, err, c.want)
		}
	}
	// A name that is no builtin is plainly undefined.
	r := sdrt.New(sdrt.Options{Sandbox: &sdrt.Sandbox{}})
	if _, err := r.Compile(t.Context(), "deploy.star", []byte("nosuch()")); err == nil || err.Error() != "deploy.star:1:1: undefined: nosuch" || errors.Is(err, sdrt.ErrSandbox) {
		t.Errorf("err = %v", err)
	}
}

// TestIsolatedSentinels: the sentinels cross the process boundary of an
// isolated run: a step limit in the child, and the child's memory limit.
func TestIsolatedSentinels(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	h, _ := fakeHost("h")
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), MaxSteps: 10_000})
	rep, err := r.RunIsolated(t.Context(), sdrt.Isolation{}, []sdrt.Script{{Filename: "loop.star", Src: []byte("while True:\n    pass\n")}}, []sdrt.Host{h})
	if err != nil {
		t.Fatal(err)
	}
	matchesOnly(t, rep.Hosts[0].Err, "ErrStepLimit")

	hog := "x = []\nfor i in range(1000):\n    x.append('a' * (1 << 24) + str(i))\n"
	r = sdrt.New(sdrt.Options{Connectors: connectorsFor()})
	rep, err = r.RunIsolated(t.Context(), sdrt.Isolation{MemoryLimit: 128 << 20}, []sdrt.Script{{Filename: "hog.star", Src: []byte(hog)}}, []sdrt.Host{h})
	if err != nil {
		t.Fatal(err)
	}
	var ie *sdrt.IsolationError
	if !errors.As(rep.Hosts[0].Err, &ie) {
		t.Fatalf("err = %v, want an *IsolationError", rep.Hosts[0].Err)
	}
	matchesOnly(t, rep.Hosts[0].Err, "ErrMemoryLimit")
}

// TestRunnerHost: Runner.Host parses an inventory name through
// Options.Connectors and checks the connector's data keys; a host whose
// connector is not there fails, naming the option.
func TestRunnerHost(t *testing.T) {
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor()})
	h, err := r.Host("@fake/web1", map[string]any{"role": "web"})
	if err != nil || h.Name != "@fake/web1" || h.Target.Scheme != "fake" || h.Data["role"] != "web" {
		t.Errorf("Host = %+v, %v", h, err)
	}
	if _, err := r.Host("@nosuch/x", nil); err == nil || !strings.Contains(err.Error(), `unknown connector "nosuch"`) {
		t.Errorf("unknown connector: err = %v", err)
	}
	if _, err := r.Host("@local", map[string]any{"local_x": []any{"a"}}); err == nil || !strings.Contains(err.Error(), "want a string, number or bool") {
		t.Errorf("bad connector value: err = %v", err)
	}
	if _, err := sdrt.New(sdrt.Options{}).Host("@local", nil); err == nil || !strings.Contains(err.Error(), "set Options.Connectors") {
		t.Errorf("no registry: err = %v", err)
	}
	// Run opens a host through the registry of its runner only.
	other := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry()})
	p, err := other.Compile(t.Context(), "s.star", []byte("x = 1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{h}).Hosts[0].Err; err == nil || !strings.Contains(err.Error(), `no connector "fake" in Options.Connectors`) {
		t.Errorf("unregistered scheme: err = %v", err)
	}
}

// TestNoStdlibNamesTheOption: loading the stdlib from a Runner without
// one says which option serves it.
func TestNoStdlibNamesTheOption(t *testing.T) {
	_, err := sdrt.New(sdrt.Options{}).Compile(t.Context(), "s.star", []byte(`load("@stdlib//files.star", "files")`))
	if err == nil || !strings.Contains(err.Error(), "no stdlib is available here; the app serves it with Options.Stdlib = stdlib.FS") {
		t.Errorf("err = %v", err)
	}
}

// TestPutContentInASandboxWithoutFiles: put(content=) reads no local file,
// so a sandbox that allows local-fs but has no files lets it through and
// refuses put(src=).
func TestPutContentInASandboxWithoutFiles(t *testing.T) {
	sandbox := &sdrt.Sandbox{Connectors: []string{"fake"}, Effects: sdrt.EffectReadHost | sdrt.EffectWriteHost | sdrt.EffectLocalFS}
	host, conn := fakeHost("h")
	opts := sdrt.Options{Connectors: connectorsFor(conn), Sandbox: sandbox}
	if err := runOne(t, t.Context(), opts, `put("/etc/motd", content = "hi\n")`, host); err != nil {
		t.Fatal(err)
	}
	if f, ok := conn.File("/etc/motd"); !ok || string(f.Content) != "hi\n" {
		t.Errorf("/etc/motd = %q", f.Content)
	}
	err := runOne(t, t.Context(), opts, `put("/etc/motd", src = "motd")`, host)
	if err == nil || !strings.Contains(err.Error(), "this sandbox has no local files") {
		t.Errorf("put(src=): err = %v", err)
	}
	matchesOnly(t, err, "ErrSandbox")
}

// tokenFactory is the local connector with one more data key, declared
// secret, as a plugin connector may declare its own.
type tokenFactory struct{ connectors.Factory }

func (f tokenFactory) Fields() []connectors.Field {
	return append(f.Factory.Fields(), connectors.Field{Name: "local_token", Type: "string", Doc: "a token", Secret: true})
}

// TestHostDataLeavesOutDeclaredSecrets: a key that only a connector's
// Fields declare secret (no "password" in its name) is not in host.data.
func TestHostDataLeavesOutDeclaredSecrets(t *testing.T) {
	r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(tokenFactory{local.NewFactory()})})
	// Built by hand: the local connector's Parse takes no data keys.
	h := sdrt.Host{Name: "@local", Data: map[string]any{"local_token": "canary-token", "role": "web"},
		Target: connectors.Target{Scheme: "local", Name: "@local"}}
	p, err := r.Compile(t.Context(), "s.star", []byte(`
if "local_token" in host.data or host.data["role"] != "web":
    fail("host.data = %r" % host.data)
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{h}).Hosts[0].Err; err != nil {
		t.Error(err)
	}
}
