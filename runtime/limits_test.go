package runtime_test

import (
	"go.starlark.net/starlark"

	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// limitTimeout is the Options.Timeout of the tests below; every script
// starts its long builtin call well within it.
const limitTimeout = 300 * time.Millisecond

// longBuiltins are calls that, before builtins observed cancellation, ran
// on for seconds past a deadline. Each builds its input in one fast
// operation, so that the deadline falls inside the named builtin.
var longBuiltins = []struct{ name, script string }{
	{"re.findall", "s = 'ab' * (1 << 22)\nx = re.findall('a', s)\n"},
	{"re.sub", "s = 'ab' * (1 << 22)\nx = re.sub('a', 'c', s)\n"},
	{"re.search", "s = 'a' * (1 << 25)\nx = re.search('a{2,5}b', s)\n"},
	{"sorted", "x = sorted(range(1 << 23), reverse = True)\n"},
	{"str", "l = ['abc'] * (1 << 12)\nx = str([l] * (1 << 12))\n"},
}

// pastDeadline reports how long after start+limitTimeout it is now, and
// logs it as the figure of the test.
func pastDeadline(t *testing.T, start time.Time) time.Duration {
	t.Helper()
	past := time.Since(start) - limitTimeout
	t.Logf("stopped %v past the deadline", past.Round(time.Millisecond))
	return past
}

// TestTimeoutStopsLongBuiltins: Options.Timeout stops a script within a
// second of its deadline also while a long builtin runs.
func TestTimeoutStopsLongBuiltins(t *testing.T) {
	for _, c := range longBuiltins {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"long.star": c.script})
			r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Timeout: limitTimeout})
			p := compile(t, r, dir, "long.star")
			start := time.Now()
			rep := r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{localHost(t, "h", nil)})
			if past := pastDeadline(t, start); past > time.Second {
				t.Errorf("%s ran %v past the deadline, want at most 1s", c.name, past)
			}
			if err := rep.Hosts[0].Err; err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
				t.Errorf("err = %v, want deadline exceeded", err)
			}
		})
	}
}

// TestCancelStopsLongBuiltin: cancelling Run's context stops a long
// builtin as the timeout does.
func TestCancelStopsLongBuiltin(t *testing.T) {
	dir := writeFiles(t, map[string]string{"long.star": longBuiltins[0].script})
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor()})
	p := compile(t, r, dir, "long.star")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := time.Now()
	time.AfterFunc(limitTimeout, cancel)
	rep := r.Run(ctx, []*sdrt.Program{p}, []sdrt.Host{localHost(t, "h", nil)})
	if past := pastDeadline(t, start); past > time.Second {
		t.Errorf("re.findall ran %v past the cancel, want at most 1s", past)
	}
	if err := rep.Hosts[0].Err; err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("err = %v, want context canceled", err)
	}
}

// TestCompileHonoursTimeout: the top level of a loaded module runs under
// Options.Timeout, also when the caller's context has no deadline.
func TestCompileHonoursTimeout(t *testing.T) {
	for _, c := range []struct{ name, module string }{
		{"infinite loop", "x = 0\nwhile True:\n    x += 1\n"},
		{"long builtin", longBuiltins[3].script},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"deploy.star":  "load('lib/mod.star', 'x')\n",
				"lib/mod.star": c.module,
			})
			r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Timeout: limitTimeout})
			// The test's own context stops a Compile that ignores the
			// timeout once the test has failed.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := r.Compile(ctx, filepath.Join(dir, "deploy.star"), nil)
				done <- err
			}()
			select {
			case err := <-done:
				if past := pastDeadline(t, start); past > time.Second {
					t.Errorf("Compile returned %v past the deadline, want at most 1s", past)
				}
				var ce *sdrt.CompileError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), "deadline exceeded") || !strings.Contains(err.Error(), "mod.star") {
					t.Errorf("err = %v, want a *CompileError naming mod.star and the deadline", err)
				}
			case <-time.After(limitTimeout + 5*time.Second):
				t.Fatal("Compile still runs 5s past Options.Timeout")
			}
		})
	}
}

// hugeRange are calls that allocate their argument's whole length at once.
var hugeRange = []string{"list", "tuple", "sorted", "enumerate", "reversed", "bytes", "zip"}

// TestHugeRangesAreScriptErrors: materialising a huge range is a script
// error naming the line, on a host, in a module's top level and in the
// sandbox, not an internal error.
func TestHugeRangesAreScriptErrors(t *testing.T) {
	for _, fn := range hugeRange {
		script := fmt.Sprintf("n = 1 << 62\nx = %s(range(n))\n", fn)
		t.Run(fn+" on a host", func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"deploy.star": script})
			r := sdrt.New(sdrt.Options{Connectors: connectorsFor()})
			rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "deploy.star")}, []sdrt.Host{localHost(t, "h", nil)})
			err := rep.Hosts[0].Err
			var se *sdrt.ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want a *ScriptError", err, err)
			}
			if want := fn + ": range too large: 4611686018427387904 elements, at most"; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
			if !strings.HasSuffix(se.Pos, "deploy.star:2:"+fmt.Sprint(5+len(fn))) {
				t.Errorf("position %q, want deploy.star:2:%d", se.Pos, 5+len(fn))
			}
		})
		t.Run(fn+" in a module", func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"deploy.star": "load('mod.star', 'x')\n", "mod.star": script})
			r := sdrt.New(sdrt.Options{Connectors: connectorsFor()})
			_, err := r.Compile(t.Context(), filepath.Join(dir, "deploy.star"), nil)
			var ce *sdrt.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("got %T %v, want a *CompileError", err, err)
			}
			if want := fmt.Sprintf("mod.star:2:%d: %s: range too large", 5+len(fn), fn); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		})
		t.Run(fn+" in the sandbox", func(t *testing.T) {
			host, conn := fakeHost("h")
			r := sdrt.New(sdrt.Options{Connectors: connectorsFor(conn), Sandbox: &sdrt.Sandbox{Connectors: []string{"fake"}}})
			p, err := r.Compile(t.Context(), "deploy.star", []byte(script))
			if err != nil {
				t.Fatal(err)
			}
			rep := r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{host})
			var se *sdrt.ScriptError
			if err := rep.Hosts[0].Err; !errors.As(err, &se) || !strings.Contains(err.Error(), "more than the sandbox allows") || se.Pos != "deploy.star:2:"+fmt.Sprint(11+len(fn)) {
				t.Errorf("err = %v, want a *ScriptError at deploy.star:2:%d saying the sandbox refuses it", err, 11+len(fn))
			}
		})
	}
}

// TestStepLimitNamesTheRunningLine: a script stopped by Options.MaxSteps
// names the line of its loop, not the line before it.
func TestStepLimitNamesTheRunningLine(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"loop.star":    "x = 0\nwhile True:\n    x += 1\n",
		"func.star":    "def f():\n    x = 0\n    while True:\n        x += 1\n\nf()\n",
		"deploy.star":  "load('lib/mod.star', 'y')\n",
		"lib/mod.star": "y = 0\nwhile True:\n    y += 1\n",
	})
	for steps := uint64(100_000); steps < 100_012; steps++ {
		r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), MaxSteps: steps})
		for _, c := range []struct{ file, want string }{
			{"loop.star", "loop.star:3:"},
			{"func.star", "func.star:4:"},
		} {
			rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, c.file)}, []sdrt.Host{localHost(t, "h", nil)})
			err := rep.Hosts[0].Err
			var se *sdrt.ScriptError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), "too many steps") || !strings.Contains(se.Pos, c.want) {
				t.Errorf("MaxSteps %d, %s: err = %v, want too many steps at %s", steps, c.file, err, c.want)
			}
		}
		_, err := r.Compile(t.Context(), filepath.Join(dir, "deploy.star"), nil)
		if err == nil || !strings.Contains(err.Error(), "too many steps") || !strings.Contains(err.Error(), "mod.star:3:") {
			t.Errorf("MaxSteps %d, module: err = %v, want too many steps at mod.star:3", steps, err)
		}
	}
}

// TestCompileRecoversPanicAtLoad: a builtin that panics while a module
// loads (an app's own) fails Compile with an internal error naming the
// module, instead of crashing the app.
func TestCompileRecoversPanicAtLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"deploy.star":  "load('lib/mod.star', 'x')\n",
		"lib/mod.star": "x = boom()\n",
	})
	boom := starlark.NewBuiltin("boom", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		panic("app bug")
	})
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Builtins: starlark.StringDict{"boom": boom}})
	_, err := r.Compile(t.Context(), filepath.Join(dir, "deploy.star"), nil)
	if err == nil || !strings.Contains(err.Error(), "internal error on load ") || !strings.Contains(err.Error(), "mod.star: app bug") {
		t.Fatalf("err = %v, want an internal error naming mod.star and the panic", err)
	}
}
