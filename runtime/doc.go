// Package runtime is star-deploy's engine and its public embedding API.
//
// A Runner compiles deploy scripts once (Compile), loading every module they
// load, so that syntax errors, undefined names, missing modules and load
// cycles surface as a *CompileError before any host is touched. Run then
// executes the programs on every host, each host in its own goroutine on its
// own starlark.Thread, at most Options.Parallel at once, and returns a Report
// with one HostResult per host. Events (host_start, op_start, op_end, print,
// host_end) reach Options.OnEvent, one call at a time.
//
// Scripts use the dialect of deploy files: top-level if/for/while, global
// reassignment and set are allowed; recursion is not. Modules named by
// load() are either "@stdlib//NAME.star", served from Options.Stdlib, or
// paths relative to the loading file. A module's top level runs once per
// Runner, on a thread with no host bound (a host builtin called there is an
// error), and its globals are frozen and shared by every host. The name
// `host` is predeclared in deploy scripts only; module functions that need
// it take it as an argument.
//
// Cancelling the context passed to Run stops every host: the Starlark
// thread is cancelled and the command a host is running is killed by its
// connector. A host that fails, or panics, stops only itself.
//
// This package must not import a concrete connector, the CLI or the stdlib:
// callers hand it connectors (through Host.Factory) and the stdlib (through
// Options.Stdlib). Programs that import it as well as Go's runtime package
// name it sdrt.
package runtime
