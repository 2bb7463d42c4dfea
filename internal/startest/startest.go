// Package startest runs Starlark test files (testdata/*.star) against a
// real host: the local connector, with a fresh temporary directory per
// test. Its callers are external test packages (package builtins_test),
// since it imports the packages under test.
//
// Each file runs as a subtest. If it defines test_* functions, each runs as
// its own subtest on a fresh thread and host;
// otherwise the top-level code is the test. Files see the production
// builtins, `host`, `json`, `struct`, load("assert.star", "assert"),
// load("@stdlib//NAME.star", ...), and test helpers:
//
//	tmp                      a temporary directory of the test (absolute path)
//	read(path)               a local file's content, or None when missing
//	write(path, content)     write a local file (and its directories); drops cached facts
//	config(dry=, diff=)      switch the host's dry-run and diff modes
//	events()                 op_end and print events so far, as dicts
//	fake(responses)          from now on, run on an in-memory host (connectors/fake)
//	                         instead: responses maps a command prefix to its stdout,
//	                         or to (stdout, exit_code); other commands exit 0 silently
//	commands()               the commands the fake host has run, in order
//
// fake() is how operations' decisions are tested on output captured from
// systems the test machine is not (systemd, rpm, apk): a test asserts which
// commands an operation chose.
package startest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/starlarktest"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/stdlib"
)

var fileOptions = syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}

// Run runs every file matching glob as a subtest.
func Run(t *testing.T, glob string) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files match %s", glob)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			runFile(t, f)
		})
	}
}

func runFile(t *testing.T, file string) {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := newEnv(t)
	globals, err := starlark.ExecFileOptions(&fileOptions, env.thread, file, src, env.predeclared())
	if err != nil {
		reportErr(t, err)
		return
	}
	var tests []string
	for name, v := range globals {
		if _, ok := v.(*starlark.Function); ok && strings.HasPrefix(name, "test_") {
			tests = append(tests, name)
		}
	}
	sort.Strings(tests)
	for _, name := range tests {
		t.Run(name, func(t *testing.T) {
			// The file runs again for each test, so that its globals
			// (tmp) are the test's own.
			env := newEnv(t)
			globals, err := starlark.ExecFileOptions(&fileOptions, env.thread, file, src, env.predeclared())
			if err != nil {
				reportErr(t, err)
				return
			}
			if _, err := starlark.Call(env.thread, globals[name], nil, nil); err != nil {
				reportErr(t, err)
			}
		})
	}
}

func reportErr(t *testing.T, err error) {
	t.Helper()
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		t.Error(ee.Backtrace())
		return
	}
	t.Error(err)
}

// env is one test's thread, host and temporary directory.
type env struct {
	t      *testing.T
	thread *starlark.Thread
	host   *builtins.Host
	tmp    string

	mu     sync.Mutex
	events []builtins.Event
	fake   *fake.Conn
}

func newEnv(t *testing.T) *env {
	ctx := t.Context()
	conn, err := local.NewFactory().Open(ctx, connectors.Target{Scheme: "local", Name: "@local"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e := &env{t: t, tmp: t.TempDir()}
	e.host = &builtins.Host{
		Name: "@local",
		Data: map[string]any{"role": "test", "sudo_password": "canary-pw"},
		Conn: conn,
		Emit: func(ev builtins.Event) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.events = append(e.events, ev)
		},
		Local: builtins.OSFiles{},
	}
	e.thread = &starlark.Thread{
		Name: t.Name(),
		Load: load,
		Print: func(_ *starlark.Thread, msg string) {
			t.Log(msg)
			e.host.Emit(builtins.Event{Kind: builtins.KindPrint, Message: msg})
		},
	}
	starlarktest.SetReporter(e.thread, t)
	e.thread.SetLocal(envKey, e)
	builtins.WithHost(e.thread, ctx, e.host)
	return e
}

func (e *env) predeclared() starlark.StringDict {
	d := builtins.Predeclared(^builtins.Effect(0))
	d["host"] = e.host.Value()
	d["json"] = json.Module
	d["struct"] = starlark.NewBuiltin("struct", starlarkstruct.Make)
	d["tmp"] = starlark.String(e.tmp)
	d["read"] = starlark.NewBuiltin("read", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		var p string
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 1, &p); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return starlark.None, nil
		}
		return starlark.String(data), err
	})
	d["write"] = starlark.NewBuiltin("write", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		var p, content string
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 2, &p, &content); err != nil {
			return nil, err
		}
		// A change behind the host's back: cached facts are stale.
		envOf(thread).host.ForgetFacts()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		return starlark.None, os.WriteFile(p, []byte(content), 0o644)
	})
	d["config"] = starlark.NewBuiltin("config", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		e := envOf(thread)
		dry, diff := e.host.Dry, e.host.Diff
		if err := starlark.UnpackArgs(b.Name(), args, kw, "dry?", &dry, "diff?", &diff); err != nil {
			return nil, err
		}
		e.host.Dry, e.host.Diff = dry, diff
		return starlark.None, nil
	})
	d["events"] = starlark.NewBuiltin("events", func(thread *starlark.Thread, _ *starlark.Builtin, _ starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		e := envOf(thread)
		e.mu.Lock()
		defer e.mu.Unlock()
		var out []starlark.Value
		for _, ev := range e.events {
			if ev.Kind != builtins.KindOpEnd && ev.Kind != builtins.KindPrint {
				continue
			}
			out = append(out, starlarkstruct.FromStringDict(starlark.String("event"), starlark.StringDict{
				"kind":    starlark.String(ev.Kind),
				"op":      starlark.String(ev.Op),
				"name":    starlark.String(ev.Name),
				"status":  starlark.String(ev.Status),
				"message": starlark.String(ev.Message),
				"diff":    starlark.String(ev.Diff),
				"error":   starlark.String(ev.Error),
				"pos":     starlark.String(ev.Pos),
			}))
		}
		return starlark.NewList(out), nil
	})
	d["fake"] = starlark.NewBuiltin("fake", fakeHost)
	d["commands"] = starlark.NewBuiltin("commands", func(thread *starlark.Thread, b *starlark.Builtin, _ starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		e := envOf(thread)
		if e.fake == nil {
			return nil, errors.New("commands: call fake() first")
		}
		var out []starlark.Value
		for _, c := range e.fake.Commands() {
			out = append(out, starlark.String(c))
		}
		return starlark.NewList(out), nil
	})
	return d
}

// fakeHost switches the test's host to an in-memory one with scripted
// responses.
func fakeHost(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var responses *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kw, "responses?", &responses); err != nil {
		return nil, err
	}
	e := envOf(thread)
	c := fake.New("@fake")
	if responses != nil {
		for _, item := range responses.Items() {
			prefix, ok := starlark.AsString(item[0])
			if !ok {
				return nil, fmt.Errorf("fake: keys must be command prefixes (strings), got %s", item[0].Type())
			}
			var res connectors.Result
			switch v := item[1].(type) {
			case starlark.String:
				res.Stdout = []byte(v)
			case starlark.Tuple:
				var out string
				if err := starlark.UnpackPositionalArgs("fake", v, nil, 2, &out, &res.ExitCode); err != nil {
					return nil, err
				}
				res.Stdout = []byte(out)
			default:
				return nil, fmt.Errorf("fake: response for %q must be a string or (stdout, exit_code)", prefix)
			}
			c.On(prefix, res)
		}
	}
	e.fake = c
	e.host.Conn = c
	e.host.ForgetFacts()
	// reconnect() comes back at once, to the same in-memory host.
	e.host.Reopen = func(context.Context) (connectors.Connector, error) { return c, nil }
	return starlark.None, nil
}

const envKey = "startest.env"

// envOf returns the env of the test running on thread.
func envOf(thread *starlark.Thread) *env { return thread.Local(envKey).(*env) }

var stdlibCache sync.Map // module name -> starlark.StringDict

// load serves assert.star and @stdlib//NAME.star.
func load(thread *starlark.Thread, module string) (starlark.StringDict, error) {
	if module == "assert.star" {
		return starlarktest.LoadAssertModule()
	}
	name, ok := strings.CutPrefix(module, "@stdlib//")
	if !ok {
		return nil, errors.New("startest: only assert.star and @stdlib//NAME.star can be loaded")
	}
	if g, ok := stdlibCache.Load(name); ok {
		return g.(starlark.StringDict), nil
	}
	src, err := stdlib.FS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	// Like the runtime, modules load on a thread with no host bound.
	t := &starlark.Thread{Name: "load " + module, Load: load}
	pre := builtins.Predeclared(^builtins.Effect(0))
	pre["struct"] = starlark.NewBuiltin("struct", starlarkstruct.Make)
	pre["json"] = json.Module
	g, err := starlark.ExecFileOptions(&fileOptions, t, module, src, pre)
	if err != nil {
		return nil, err
	}
	g.Freeze()
	stdlibCache.Store(name, g)
	return g, nil
}

// Skip skips t with reason, except under CI=true, where a skipped test is a
// failure: CI installs everything the tests need.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot skip under CI=true: %s", reason)
	}
	t.Skip(reason)
}
