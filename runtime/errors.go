package runtime

import (
	"errors"
	"fmt"

	"github.com/star-deploy/star-deploy/builtins"
)

// Why a run, a host or a Compile stopped short. Each matches, with
// errors.Is, the error it caused: a HostResult.Err, a *CompileError (a
// module's top level runs at Compile), or the error of RunIsolated. The
// messages of those errors are unchanged; these only classify them.
var (
	// ErrStepLimit: the script took more than Options.MaxSteps steps.
	ErrStepLimit = errors.New("the step limit was reached")
	// ErrTimeout: the run or Compile went past Options.Timeout.
	ErrTimeout = errors.New("the time limit was reached")
	// ErrMemoryLimit: an isolated run went past Isolation.MemoryLimit.
	ErrMemoryLimit = errors.New("the memory limit was reached")
	// ErrSandbox: the Sandbox refused something: a path outside
	// Sandbox.Files, a builtin whose effects it does not allow, a
	// connector not in Sandbox.Connectors, a range() or print() output
	// over its bounds.
	ErrSandbox = errors.New("the sandbox refused it")
	// ErrCancelled: the context the caller passed was cancelled (or its
	// own deadline passed).
	ErrCancelled = errors.New("the run was cancelled")
)

// CompileError is an error in a script or a module it loads, found before
// any host ran: a syntax error, an undefined name, a missing module or a
// load cycle. Its message names file:line.
type CompileError struct {
	Msg string
	err error // what Unwrap returns
}

func (e *CompileError) Error() string { return e.Msg }

// Unwrap returns the error the message was made of, for errors.Is (with
// ErrSandbox, ErrStepLimit, ...).
func (e *CompileError) Unwrap() error { return e.err }

// ScriptError is a host's script failing: an operation failed, a builtin
// got bad arguments, fail() was called, or a limit was reached.
type ScriptError struct {
	Host      string
	Pos       string // file:line:col of the innermost script frame
	Msg       string // the error without the position
	Backtrace string // the Starlark backtrace, for -v output
	Err       error  // the underlying error, for errors.As/Is
	cause     error  // ErrStepLimit, ErrTimeout, ...: why the runtime stopped it
}

// Is reports whether target is the sentinel (ErrStepLimit, ErrTimeout, ...)
// of why the runtime stopped the script; errors.Is looks at Err too.
func (e *ScriptError) Is(target error) bool { return e.cause != nil && target == e.cause }

func (e *ScriptError) Error() string {
	if e.Pos != "" {
		return e.Pos + ": " + e.Msg
	}
	return e.Msg
}

// Unwrap returns the underlying error.
func (e *ScriptError) Unwrap() error { return e.Err }

// PanicError is a panic inside a host's run: a bug in star-deploy or in a
// connector, not in the script. The host fails; the others carry on.
type PanicError struct {
	Host  string
	Value any
	Stack string // the Go stack, for bug reports (shown with -v)
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error on %s: %v (this is a bug in star-deploy; please report it with the output of -v)", e.Host, e.Value)
}

// classified is an error that is not a *ScriptError, with the sentinel of
// why it happened.
type classified struct{ err, cause error }

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() []error { return []error{e.err, e.cause} }

// withCause returns err, matching cause with errors.Is too; a nil cause
// leaves err as it is.
func withCause(err, cause error) error {
	if err == nil || cause == nil || errors.Is(err, cause) {
		return err
	}
	if se, ok := err.(*ScriptError); ok {
		se.cause = cause
		return se
	}
	return &classified{err, cause}
}

// redactError returns err with h's secrets out of its message (see
// builtins.Host.Redact): a *ScriptError's message and backtrace are
// redacted in place, and any other error whose message holds a secret is
// wrapped, so that errors.Is and errors.As still see it.
func redactError(h *builtins.Host, err error) error {
	if err == nil {
		return nil
	}
	var se *ScriptError
	if errors.As(err, &se) {
		se.Msg, se.Backtrace = h.Redact(se.Msg), h.Redact(se.Backtrace)
	}
	if msg := h.Redact(err.Error()); msg != err.Error() {
		return &redacted{msg: msg, err: err}
	}
	return err
}

// redacted is an error whose message had a secret in it.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// refusal is the sandbox refusing something; it matches ErrSandbox.
type refusal struct{ msg string }

func (e *refusal) Error() string        { return e.msg }
func (e *refusal) Is(target error) bool { return target == ErrSandbox }

// refusef formats a refusal. Its args are formatted with %v, not wrapped.
func refusef(format string, args ...any) error {
	return &refusal{fmt.Sprintf(format, args...)}
}
