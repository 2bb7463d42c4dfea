package builtins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

	// Emit receives this host's events; it must be safe to call from the
	// host's goroutine.
	Emit func(Event)
	// OpenLocal opens a file on the machine running star-deploy (put src=,
	// template src=). The runtime restricts it when sandboxed.
	OpenLocal func(path string) (io.ReadCloser, error)
	// ReadLocalDir lists a local directory (local_tree). The runtime
	// restricts it when sandboxed; nil makes local_tree fail.
	ReadLocalDir func(path string) ([]fs.DirEntry, error)
	// WriteLocal atomically replaces a local file with the content of r
	// (get dest=); nil makes get fail before it touches the host.
	WriteLocal func(path string, r io.Reader) error

	// Reopen opens a new connection to the host (reconnect()); nil makes
	// reconnect fail.
	Reopen func(ctx context.Context) (connectors.Connector, error)

	// Once is shared by the hosts of one run, for run_once(); nil runs
	// every run_once call on this host.
	Once *Once

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
		public := make(map[string]any, len(h.Data))
		for k, v := range h.Data {
			if !connectors.IsSecretKey(k) {
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

func (h *Host) emit(e Event) {
	if h.Emit == nil {
		return
	}
	e.Time = time.Now()
	e.Host = h.Name
	h.Emit(e)
}

// outcome is what one operation did.
type outcome struct {
	status   Status
	message  string // what a dry run would do, or what was done
	diff     string
	shell    bool // add stdout/stderr/exit_code to the result
	stdout   []byte
	stderr   []byte
	exitCode int
	// maxOutput is the cap on each stream; stdoutDropped and
	// stderrDropped count the bytes it dropped.
	maxOutput, stdoutDropped, stderrDropped int64
}

// add appends what res kept of a command's output to o, within the cap of
// one stream, and takes its exit status.
func (o *outcome) add(res connectors.Result) {
	o.shell, o.exitCode, o.maxOutput = true, res.ExitCode, res.MaxOutput
	o.stdout, o.stdoutDropped = joinCapped(o.stdout, res.Stdout, o.stdoutDropped+res.StdoutDropped, res.MaxOutput)
	o.stderr, o.stderrDropped = joinCapped(o.stderr, res.Stderr, o.stderrDropped+res.StderrDropped, res.MaxOutput)
}

// joinCapped returns a followed by b, cut to limit bytes as a
// connectors.CapBuffer would, and dropped plus what the cut dropped.
func joinCapped(a, b []byte, dropped, limit int64) ([]byte, int64) {
	if len(a) == 0 {
		return b, dropped
	}
	buf := connectors.CapBuffer{Max: limit}
	buf.Write(a)
	buf.Write(b)
	return buf.Bytes(), dropped + buf.Dropped()
}

// operation runs fn as one operation: it emits op_start and op_end, applies
// timeout=, retries= and ignore_errors=, counts the outcome and returns the
// Starlark result.
func (h *Host) operation(thread *starlark.Thread, op, name string, ctl Control, fn func(ctx context.Context) (outcome, error)) (starlark.Value, error) {
	pos := callerPos(thread)
	if h.Stop != nil {
		if err := h.Stop(); err != nil {
			return nil, err
		}
	}
	h.emit(Event{Kind: KindOpStart, Op: op, Name: name, Pos: pos, Dry: h.Dry})
	start := time.Now()
	ctx := contextFrom(thread)

	var out outcome
	var err error
	for attempt := 0; ; attempt++ {
		out, err = h.attempt(ctx, ctl, fn)
		if err == nil || attempt >= ctl.Retries || ctx.Err() != nil {
			break
		}
		if ctl.RetryDelay > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(ctl.RetryDelay):
			}
		}
	}
	ev := Event{Kind: KindOpEnd, Op: op, Name: name, Pos: pos, Dry: h.Dry, Duration: time.Since(start), Message: out.message, Diff: out.diff}
	if err != nil {
		out.status = StatusFailed
		ev.Error = err.Error()
		var exit *connectors.ExitError
		if errors.As(err, &exit) && !out.shell {
			out.add(exit.Result)
		}
	}
	ev.Status = out.status
	ev.Ignored = err != nil && ctl.IgnoreErrors && ctx.Err() == nil
	// One copy of each stream serves the event and the result.
	stdout, stderr := string(out.stdout), string(out.stderr)
	out.stdout, out.stderr = nil, nil
	if h.Verbose && out.shell {
		ev.Stdout, ev.Stderr = stdout, stderr
	}
	if out.stdoutDropped > 0 || out.stderrDropped > 0 {
		ev.MaxOutput, ev.StdoutDropped, ev.StderrDropped = out.maxOutput, out.stdoutDropped, out.stderrDropped
	}
	h.Counts.Add(out.status)
	h.emit(ev)
	if err != nil && (!ctl.IgnoreErrors || ctx.Err() != nil) {
		return nil, err
	}
	fields := starlark.StringDict{
		"changed": starlark.Bool(out.status == StatusChanged),
		"ok":      starlark.Bool(err == nil),
		"skipped": starlark.Bool(out.status == StatusSkipped),
		"dry":     starlark.Bool(h.Dry),
	}
	if out.shell {
		fields["stdout"] = starlark.String(stdout)
		fields["stderr"] = starlark.String(stderr)
		fields["exit_code"] = starlark.MakeInt(out.exitCode)
		fields["max_output"] = starlark.MakeInt64(out.maxOutput)
		fields["stdout_dropped"] = starlark.MakeInt64(out.stdoutDropped)
		fields["stderr_dropped"] = starlark.MakeInt64(out.stderrDropped)
	}
	r := starlarkstruct.FromStringDict(starlark.String("result"), fields)
	r.Freeze()
	return r, nil
}

func (h *Host) attempt(ctx context.Context, ctl Control, fn func(ctx context.Context) (outcome, error)) (outcome, error) {
	if ctl.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ctl.Timeout)
		defer cancel()
	}
	out, err := fn(ctx)
	if err != nil && ctl.Timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w", ctl.Timeout, err)
	}
	return out, err
}

// run renders script with ctl's privilege and environment settings and runs
// it. Probes and operations both go through here.
func (h *Host) run(ctx context.Context, script string, ctl Control, stdin string) (connectors.Result, error) {
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	res, err := h.exec(ctx, script, ctl, in)
	if err != nil {
		return res, fmt.Errorf("run %q on %s: %w", short(script), h.Name, err)
	}
	return res, nil
}

// check runs script and turns an exit status outside ctl's success codes
// into an *connectors.ExitError.
func (h *Host) check(ctx context.Context, script string, ctl Control, stdin string) (connectors.Result, error) {
	res, err := h.run(ctx, script, ctl, stdin)
	if err != nil {
		return res, err
	}
	if !ctl.success(res.ExitCode) {
		return res, &connectors.ExitError{Target: h.Name, Script: short(script), Result: res}
	}
	return res, nil
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

// callerDir returns the directory of the file making the current call, for
// resolving relative local paths.
func callerDir(thread *starlark.Thread) string {
	for i := 0; i < thread.CallStackDepth(); i++ {
		fr := thread.CallFrame(i)
		if userFrame(fr) {
			return dirOf(fr.Pos.Filename())
		}
	}
	return "."
}

// userFrame reports whether fr is in the user's own code: not a Go builtin
// and not the embedded stdlib, whose callers are the ones to blame and whose
// relative paths mean the user's files.
func userFrame(fr starlark.CallFrame) bool {
	name := fr.Pos.Filename()
	return fr.Pos.IsValid() && name != "<builtin>" && !strings.HasPrefix(name, "@stdlib//")
}

func short(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
