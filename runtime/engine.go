package runtime

import (
	"context"
)

// Runner compiles scripts and runs them on hosts. A Runner is safe for
// concurrent use; each Run is independent.
type Runner struct {
	opts Options
}

// New returns a Runner with opts.
func New(opts Options) *Runner { return &Runner{opts: opts} }

// Program is a compiled deploy script with its loaded modules, ready to run
// on any number of hosts.
type Program struct {
	Filename string
}

// Compile parses and resolves the script filename (src, or the file itself
// when src is nil) and loads every module it loads, so that syntax errors,
// undefined names, missing modules and load cycles are reported before any
// host is touched. Errors are *CompileError.
func (r *Runner) Compile(ctx context.Context, filename string, src []byte) (*Program, error) {
	panic("TODO")
}

// Run runs progs, in order, on every host, each host in its own goroutine,
// at most Options.Parallel at once. A failing host stops only itself. When
// ctx is cancelled every host stops, the commands they started are killed,
// and the report holds what finished (Report.Interrupted is set).
func (r *Runner) Run(ctx context.Context, progs []*Program, hosts []Host) *Report {
	panic("TODO")
}

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

func (e *ScriptError) Unwrap() error { return e.Err }
