package runtime

import "fmt"

// CompileError is an error in a script or a module it loads, found before
// any host ran: a syntax error, an undefined name, a missing module or a
// load cycle. Its message names file:line.
type CompileError struct {
	Msg string
}

func (e *CompileError) Error() string { return e.Msg }

// ScriptError is a host's script failing: an operation failed, a builtin
// got bad arguments, fail() was called, or a limit was reached.
type ScriptError struct {
	Host      string
	Pos       string // file:line:col of the innermost script frame
	Msg       string // the error without the position
	Backtrace string // the Starlark backtrace, for -v output
	Err       error  // the underlying error, for errors.As/Is
}

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
