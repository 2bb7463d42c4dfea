package builtins

import (
	"fmt"
	"sync"

	"go.starlark.net/starlark"
)

// Once is the run_once state of one run, shared by all its hosts: the
// result of each run_once call site, computed by the first host to reach
// it.
type Once struct {
	mu    sync.Mutex
	calls map[string]*onceCall
}

type onceCall struct {
	done  chan struct{}
	host  string
	value starlark.Value
	err   error
}

var runOnceSpec = &Spec{
	Name: "run_once",
	Doc: "Calls a function on one host only, the first to reach this call, and hands every host " +
		"its result: a fleet-wide step (a database migration, a token fetched once) in the middle " +
		"of a per-host script. The other hosts wait at the call until the result is there; when the " +
		"function fails, the call fails on every host. Each call site runs once per run, also " +
		"under `--serial`; calls to run_once must not nest.",
	Params: []Param{
		{"fn", "function", "", "The function to call, with no arguments; its result is frozen and shared."},
	},
	Returns: "fn's result",
	Example: `def migrate():
    return shell("app migrate", name = "migrate").stdout.strip()

version = run_once(migrate)`,
	Effects: EffectReadHost | EffectWriteHost,
	Fn:      runOnceFn,
}

func runOnceFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, err := HostFrom(thread, s.Name)
	if err != nil {
		return nil, err
	}
	var fn starlark.Callable
	if err := s.Unpack(args, kw, &fn); err != nil {
		return nil, err
	}
	if h.Once == nil {
		// A host run alone (tests, embedders without a Once) runs fn itself.
		return starlark.Call(thread, fn, nil, nil)
	}
	key := callerPos(thread)
	h.Once.mu.Lock()
	if h.Once.calls == nil {
		h.Once.calls = map[string]*onceCall{}
	}
	c, started := h.Once.calls[key]
	if !started {
		c = &onceCall{done: make(chan struct{}), host: h.Name}
		h.Once.calls[key] = c
	}
	h.Once.mu.Unlock()

	if !started {
		v, err := starlark.Call(thread, fn, nil, nil)
		if err == nil {
			v.Freeze()
		}
		c.value, c.err = v, err
		close(c.done)
		return v, err
	}
	ctx := contextFrom(thread)
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("run_once: stopped while waiting for %s: %w", c.host, ctx.Err())
	}
	if c.err != nil {
		return nil, fmt.Errorf("run_once: the call failed on %s: %w", c.host, c.err)
	}
	return c.value, nil
}
