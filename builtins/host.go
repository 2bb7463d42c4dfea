package builtins

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/star-deploy/star-deploy/connectors"
)

// Host is the Go-side state of one host during a run: its connector, data,
// control defaults, fact cache and event sink. The runtime creates one per
// host per run and binds it to that host's thread with WithHost.
type Host struct {
	Name     string
	Groups   []string
	Data     map[string]any
	Conn     connectors.Connector
	Defaults Control // control defaults: options, then host data
	Dry      bool
	Diff     bool
	Verbose  bool
	Trace    Trace // command and output events (-vv, -vvv)

	// Emit receives this host's events; it must be safe to call from the
	// host's goroutine.
	Emit func(Event)
	// Local is the machine running star-deploy, for put src=, template
	// src=, local_tree and get dest=. The runtime restricts it when
	// sandboxed; nil makes those builtins fail.
	Local LocalFS

	// Reopen opens a new connection to the host (reconnect()); nil makes
	// reconnect fail.
	Reopen func(ctx context.Context) (connectors.Connector, error)

	// Once is shared by the hosts of one run, for run_once(); nil runs
	// every run_once call on this host.
	Once *Once
	// Secret reports whether a data key holds a secret, which host.data
	// leaves out; nil means connectors.IsSecretKey. The runtime sets it to
	// its registry's rule, which also knows the fields connectors declare
	// secret.
	Secret func(key string) bool

	// Stop, when set, is asked before each operation; an error stops the
	// host there (the run's --fail-percent was exceeded).
	Stop func() error

	// Counts tallies this host's operations.
	Counts Counts
	// Result is what the connector produced when the host finished (see
	// connectors.Finisher), set by the runtime.
	Result string

	mu    sync.Mutex
	facts map[string]starlark.Value
	value starlark.Value
	swept map[string]bool // directories cleared of earlier runs' temporary files (sweepDue)

	redact struct { // hostRedactor's cache
		mu   sync.Mutex
		made bool
		sudo string // the sudo password r was made with
		r    *strings.Replacer
	}
}

const contextKey = "context" // thread-local key of the run's context.Context

// WithHost binds h and ctx to thread.
func WithHost(thread *starlark.Thread, ctx context.Context, h *Host) {
	thread.SetLocal(contextKey, ctx)
	thread.SetLocal(hostKeyName, h)
}

const hostKeyName = "star-deploy.host"

// HostFrom returns the host bound to thread. Without one, the builtin was
// called while a module loaded, and the error says so.
func HostFrom(thread *starlark.Thread, builtin string) (*Host, error) {
	if h, ok := thread.Local(hostKeyName).(*Host); ok {
		return h, nil
	}
	return nil, fmt.Errorf("%s() called at load time: a module's top-level code runs once for all hosts, so call %s() inside a function that the deploy script calls", builtin, builtin)
}

// contextFrom returns the run's context bound to thread.
func contextFrom(thread *starlark.Thread) context.Context {
	if ctx, ok := thread.Local(contextKey).(context.Context); ok {
		return ctx
	}
	panic("internal error: no context bound to thread")
}

// Value returns the Starlark `host` value: .name, .data, .groups,
// .connector and .dry (the run is a --dry run).
func (h *Host) Value() starlark.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.value == nil {
		secret := h.Secret
		if secret == nil {
			secret = connectors.IsSecretKey
		}
		public := make(map[string]any, len(h.Data))
		for k, v := range h.Data {
			if !secret(k) {
				public[k] = v
			}
		}
		data, err := ToStarlark(public)
		if err != nil {
			data = starlark.NewDict(0)
		}
		groups := make([]starlark.Value, len(h.Groups))
		for i, g := range h.Groups {
			groups[i] = starlark.String(g)
		}
		scheme := ""
		if h.Conn != nil {
			scheme = h.Conn.Target().Scheme
		}
		v := starlarkstruct.FromStringDict(starlark.String("host"), starlark.StringDict{
			"name":      starlark.String(h.Name),
			"data":      data,
			"groups":    starlark.Tuple(groups),
			"connector": starlark.String(scheme),
			"dry":       starlark.Bool(h.Dry),
		})
		v.Freeze()
		h.value = v
	}
	return h.value
}

func (h *Host) emit(e Event) { h.Send(e) }

// Send emits e as one of the host's events: stamped with the time and the
// host's name, and every text in it (name, message, error, output, diff)
// with the host's secrets replaced (see Redact). The runtime sends its own
// events of a host (print, host_end) through here too.
func (h *Host) Send(e Event) {
	if h.Emit == nil {
		return
	}
	e.Time = time.Now()
	e.Host = h.Name
	if r := h.hostRedactor(); r != nil {
		for _, f := range []*string{&e.Name, &e.Message, &e.Error, &e.Stdout, &e.Stderr, &e.Diff} {
			*f = r.Replace(*f)
		}
	}
	h.Emit(e)
}

// fact returns the cached value of key, computing it with fn on a miss.
func (h *Host) fact(key string, fn func() (starlark.Value, error)) (starlark.Value, error) {
	h.mu.Lock()
	v, ok := h.facts[key]
	h.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := fn()
	if err != nil {
		return nil, err
	}
	v.Freeze()
	h.mu.Lock()
	if h.facts == nil {
		h.facts = map[string]starlark.Value{}
	}
	h.facts[key] = v
	h.mu.Unlock()
	return v, nil
}

// cachedFact returns the cached value of key, if any.
func (h *Host) cachedFact(key string) (starlark.Value, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.facts[key]
	return v, ok
}

// remember caches v, frozen, as the value of key.
func (h *Host) remember(key string, v starlark.Value) {
	v.Freeze()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.facts == nil {
		h.facts = map[string]starlark.Value{}
	}
	h.facts[key] = v
}

// ForgetFacts drops every cached fact of h, so that the next read asks the
// host again.
func (h *Host) ForgetFacts() { h.forget("") }

// forget drops cached facts: those with path, or a directory above it,
// among their arguments (the file, content, tree and git facts a write to
// path may change), or every fact when path is empty (after a shell
// command, which may have changed anything).
func (h *Host) forget(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if path == "" {
		h.facts = nil
		return
	}
	for k := range h.facts {
		if aboutPath(k, path) {
			delete(h.facts, k)
		}
	}
}

// aboutPath reports whether the fact cache key k (name, arguments and
// privilege, NUL-separated) has p or a directory above p as an argument.
func aboutPath(k, p string) bool {
	args := strings.Split(k, "\x00")
	for _, a := range args[1 : len(args)-1] {
		if a == p || (strings.HasPrefix(p, a) && (strings.HasSuffix(a, "/") || p[len(a)] == '/')) {
			return true
		}
	}
	return false
}

// callerPos returns file:line:col of the innermost Starlark frame.
func callerPos(thread *starlark.Thread) string {
	for i := 0; i < thread.CallStackDepth(); i++ {
		fr := thread.CallFrame(i)
		if userFrame(fr) {
			return fr.Pos.String()
		}
	}
	return ""
}

// callerFile returns the file making the current call (a path, or the key
// of a remote module), for resolving relative local paths; "" when no user
// code is calling.
func callerFile(thread *starlark.Thread) string {
	for i := 0; i < thread.CallStackDepth(); i++ {
		fr := thread.CallFrame(i)
		if userFrame(fr) {
			return fr.Pos.Filename()
		}
	}
	return ""
}

// userFrame reports whether fr is in the user's own code: not a Go builtin
// and not the embedded stdlib, whose callers are the ones to blame and whose
// relative paths mean the user's files.
func userFrame(fr starlark.CallFrame) bool {
	name := fr.Pos.Filename()
	return fr.Pos.IsValid() && name != "<builtin>" && !strings.HasPrefix(name, "@stdlib//")
}

var currentHostSpec = &Spec{
	Name: "current_host",
	Doc: "Returns the host the script is running on: the same value as the global `host` of a " +
		"deploy script, for module functions, which do not see that global.",
	Returns: "the host: `.name`, `.data`, `.groups`, `.connector`, `.dry`",
	Example: `def banner():
    h = current_host()
    return "%s (%s)" % (h.name, h.data.get("role", "none"))`,
	Effects: EffectPure,
	Fn: func(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		if err := s.Unpack(args, kw); err != nil {
			return nil, err
		}
		h, err := HostFrom(thread, s.Name)
		if err != nil {
			return nil, err
		}
		return h.Value(), nil
	},
}
