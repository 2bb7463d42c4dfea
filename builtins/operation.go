package builtins

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/star-deploy/star-deploy/connectors"
)

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
	if out.shell && !h.Dry {
		code := out.exitCode
		ev.ExitCode = &code
	}
	if out.stdoutDropped > 0 || out.stderrDropped > 0 {
		ev.MaxOutput, ev.StdoutDropped, ev.StderrDropped = out.maxOutput, out.stdoutDropped, out.stderrDropped
	}
	h.Counts.Add(out.status)
	h.emit(ev)
	if err != nil && (!ctl.IgnoreErrors || ctx.Err() != nil) {
		return nil, err
	}
	// The fields in sorted order, as starlarkstruct keeps them: FromKeywords
	// then has nothing to reorder, and no map is built per operation.
	n := 4
	if out.shell {
		n = 10
	}
	vals := make([]starlark.Value, 0, 2*n)
	field := func(k string, v starlark.Value) { vals = append(vals, resultKeys[k], v) }
	field("changed", starlark.Bool(out.status == StatusChanged))
	field("dry", starlark.Bool(h.Dry))
	if out.shell {
		field("exit_code", starlark.MakeInt(out.exitCode))
		field("max_output", starlark.MakeInt64(out.maxOutput))
	}
	field("ok", starlark.Bool(err == nil))
	field("skipped", starlark.Bool(out.status == StatusSkipped))
	if out.shell {
		field("stderr", starlark.String(stderr))
		field("stderr_dropped", starlark.MakeInt64(out.stderrDropped))
		field("stdout", starlark.String(stdout))
		field("stdout_dropped", starlark.MakeInt64(out.stdoutDropped))
	}
	kw := make([]starlark.Tuple, n)
	for i := range kw {
		kw[i] = starlark.Tuple(vals[2*i : 2*i+2 : 2*i+2])
	}
	r := starlarkstruct.FromKeywords(resultName, kw)
	r.Freeze()
	return r, nil
}

// resultName is the constructor of operation results; resultKeys are
// their field names as Starlark values, made once.
var (
	resultName = starlark.String("result")
	resultKeys = func() map[string]starlark.Value {
		m := map[string]starlark.Value{}
		for _, k := range []string{"changed", "dry", "exit_code", "max_output", "ok", "skipped", "stderr", "stderr_dropped", "stdout", "stdout_dropped"} {
			m[k] = starlark.String(k)
		}
		return m
	}()
)

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

var noopSpec = &Spec{
	Name: "noop",
	Doc: "Reports an operation that has nothing to do, without touching the host: " +
		"it shows in the output and events as ok and returns an unchanged result. " +
		"Operations written in Starlark call it when their facts say the host is already as asked.",
	Params: []Param{
		{"reason?", "str", "None", "Why nothing is done, shown in verbose output and events."},
	},
	Control: true,
	Returns: "a result with `.changed == False` and `.ok == True`",
	Example: `if "nginx" in fact("packages"):
    noop(name = "apt nginx", reason = "installed")`,
	Effects: EffectReadHost,
	Fn:      noopFn,
}

func noopFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	var reason string
	if err := s.Unpack(args, kw, &reason); err != nil {
		return nil, err
	}
	if name == "" {
		name = "noop"
	}
	ctl.Retries, ctl.Timeout = 0, 0
	return h.operation(thread, s.Name, name, ctl, func(context.Context) (outcome, error) {
		return outcome{status: StatusOK, message: reason}, nil
	})
}
