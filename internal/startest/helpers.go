package startest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/starlarktest"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/runtime"
)

// env is one test script's state, shared by the helpers its runner
// predeclares: what the engine does not provide.
type env struct {
	t   testing.TB
	tmp string

	mu     sync.Mutex
	events []runtime.Event
	fake   *fake.Conn // set by fake(), on the host's goroutine
}

func newEnv(t testing.TB) *env { return &env{t: t, tmp: t.TempDir()} }

// record is the runner's OnEvent: it keeps the events for events() and
// logs what the script prints.
func (e *env) record(ev runtime.Event) {
	if ev.Kind == builtins.KindPrint {
		e.t.Log(ev.Message)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
}

// modules serves load("assert.star"): starlarktest's assert module, each
// function wrapped so that it reports to this test. The module reports to
// the thread's starlarktest.Reporter, and the runner makes the threads.
func (e *env) modules() map[string]starlark.StringDict {
	m, err := starlarktest.LoadAssertModule()
	if err != nil {
		e.t.Fatal(err)
	}
	orig, ok := m["assert"].(*starlarkstruct.Module)
	if !ok {
		e.t.Fatalf("starlarktest's assert.star defines no assert module")
	}
	members := make(starlark.StringDict, len(orig.Members))
	for name, v := range orig.Members {
		fn, ok := v.(starlark.Callable)
		if !ok {
			members[name] = v
			continue
		}
		members[name] = starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			starlarktest.SetReporter(thread, e.t)
			return starlark.Call(thread, fn, args, kw)
		})
	}
	wrapped := &starlarkstruct.Module{Name: orig.Name, Members: members}
	return map[string]starlark.StringDict{"assert.star": {"assert": wrapped}}
}

// helpers returns the predeclared test helpers of the package doc.
func (e *env) helpers() starlark.StringDict {
	return starlark.StringDict{
		"tmp":      starlark.String(e.tmp),
		"read":     starlark.NewBuiltin("read", readHelper),
		"write":    starlark.NewBuiltin("write", writeHelper),
		"config":   starlark.NewBuiltin("config", configHelper),
		"events":   starlark.NewBuiltin("events", e.eventsHelper),
		"fake":     starlark.NewBuiltin("fake", e.fakeHelper),
		"commands": starlark.NewBuiltin("commands", e.commandsHelper),
	}
}

func readHelper(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var p string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 1, &p); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return starlark.None, nil
	}
	return starlark.String(data), err
}

func writeHelper(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var p, content string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 2, &p, &content); err != nil {
		return nil, err
	}
	h, err := builtins.HostFrom(thread, b.Name())
	if err != nil {
		return nil, err
	}
	// A change behind the host's back: cached facts are stale.
	h.ForgetFacts()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	return starlark.None, os.WriteFile(p, []byte(content), 0o644)
}

func configHelper(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, err := builtins.HostFrom(thread, b.Name())
	if err != nil {
		return nil, err
	}
	dry, diff := h.Dry, h.Diff
	if err := starlark.UnpackArgs(b.Name(), args, kw, "dry?", &dry, "diff?", &diff); err != nil {
		return nil, err
	}
	h.Dry, h.Diff = dry, diff
	return starlark.None, nil
}

func (e *env) eventsHelper(_ *starlark.Thread, _ *starlark.Builtin, _ starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
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
}

// fakeHelper switches the test's host to an in-memory one with scripted
// responses.
func (e *env) fakeHelper(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var responses *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kw, "responses?", &responses); err != nil {
		return nil, err
	}
	h, err := builtins.HostFrom(thread, b.Name())
	if err != nil {
		return nil, err
	}
	c := fake.New("@fake")
	if responses != nil {
		for _, item := range responses.Items() {
			prefix, res, err := fakeResponse(item)
			if err != nil {
				return nil, err
			}
			c.On(prefix, res)
		}
	}
	// The runner closes the host's connection when the script ends:
	// after this, the fake one.
	h.Conn.Close()
	e.fake = c
	h.Conn = c
	h.ForgetFacts()
	// No sudo runs on the in-memory host, so none asks for the test
	// host's sudo password: commands render as they would without one.
	h.Defaults.SudoPassword = ""
	// reconnect() comes back at once, to the same in-memory host.
	h.Reopen = func(context.Context) (connectors.Connector, error) { return c, nil }
	return starlark.None, nil
}

// fakeResponse reads one item of fake()'s responses: a command prefix and
// its stdout, or (stdout, exit_code).
func fakeResponse(item starlark.Tuple) (string, connectors.Result, error) {
	var res connectors.Result
	prefix, ok := starlark.AsString(item[0])
	if !ok {
		return "", res, fmt.Errorf("fake: keys must be command prefixes (strings), got %s", item[0].Type())
	}
	switch v := item[1].(type) {
	case starlark.String:
		res.Stdout = []byte(v)
	case starlark.Tuple:
		var out string
		if err := starlark.UnpackPositionalArgs("fake", v, nil, 2, &out, &res.ExitCode); err != nil {
			return "", res, err
		}
		res.Stdout = []byte(out)
	default:
		return "", res, fmt.Errorf("fake: response for %q must be a string or (stdout, exit_code)", prefix)
	}
	return prefix, res, nil
}

func (e *env) commandsHelper(_ *starlark.Thread, _ *starlark.Builtin, _ starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if e.fake == nil {
		return nil, errors.New("commands: call fake() first")
	}
	var out []starlark.Value
	for _, c := range e.fake.Commands() {
		out = append(out, starlark.String(c))
	}
	return starlark.NewList(out), nil
}
