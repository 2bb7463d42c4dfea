// Package runtime is star-deploy's engine and its public embedding API.
// An app imports it, the connector packages it offers (connectors/local,
// connectors/ssh, connectors/docker, or its own) and, for the stdlib,
// package stdlib; the names it needs from the engine's lower layers
// (Event, Kind*, Status*, Control, Counts, Effect*) are re-exported here.
//
// Options.Connectors is the registry of connectors hosts run through, and
// Runner.Host builds a Host from an inventory name ("@local", "@ssh/web1",
// "@docker/app") and its data. Options.Stdlib = stdlib.FS serves
// load("@stdlib//NAME.star").
//
// A Runner compiles deploy scripts once (Compile), loading every module they
// load, so that syntax errors, undefined names, missing modules and load
// cycles surface as a *CompileError before any host is touched. Run then
// executes the programs on every host, each host in its own goroutine on its
// own starlark.Thread, at most Options.Parallel at once, and returns a Report
// with one HostResult per host. Events (host_start, op_start, op_end, print,
// host_end) reach Options.OnEvent, one call at a time. Every host ends with
// one host_end whose Status, like HostResult.Status, tells ok, failed,
// unreachable (the connector could not open it), stopped (by FailPercent,
// after it began), interrupted and not_started (FailPercent or the
// cancellation came first; such a host has no host_start) apart.
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
// Runner.OpenSession is the engine of a REPL: it connects the hosts once,
// and each Session.Eval runs a chunk of source (a line, or a block) on all
// of them, each host on a thread of its own with globals that persist from
// chunk to chunk, and returns each host's value or error; Session.Close
// disconnects them.
//
// Options.Serial runs the hosts in batches (a rolling deploy), each batch
// finishing before the next starts; run_once() calls in the scripts run on
// the first host to reach them and share the result with the others.
//
// # Running automation users wrote
//
// An app that runs scripts it did not write sets Options.Sandbox: local
// files then come only from Sandbox.Files (DirFS of a directory, or any
// fs.FS: load(), put(src=), template() and local_tree() can name nothing
// outside it, by absolute path, "..", or a link), only the builtins whose
// declared effects (Effect: pure, read-host, write-host, local-fs,
// network, local-exec) Sandbox.Effects allows are defined (the stdlib sees
// the optional rsync, when withheld, as a false value, so files.rsync
// falls back to files.sync), hosts can use only the
// connectors in Sandbox.Connectors, and print() output is capped.
// Options.MaxSteps and Options.Timeout bound steps and wall-clock time;
// Options.Builtins, Modules and Print add the app's own builtins, modules
// and print sink. Example_sandbox is such an app, in under 30 lines.
//
// Errors tell why a script stopped with errors.Is: ErrStepLimit
// (Options.MaxSteps), ErrTimeout (Options.Timeout), ErrMemoryLimit
// (Isolation.MemoryLimit), ErrSandbox (the sandbox refused a path, a
// builtin, a connector or an output) and ErrCancelled (the caller's
// context). They match a HostResult.Err, a *CompileError or an
// *IsolationError; the messages stay those of the underlying errors.
//
// Memory cannot be bounded inside one process. Runner.RunIsolated runs the
// scripts in a child process (by default the running executable, whose
// main calls ServeChild when IsChild reports true) with a memory cap
// (Isolation.MemoryLimit) enforced in the child and watched from the
// parent: a script that allocates without end fails its run with an
// *IsolationError and the app carries on. examples/embed is a complete app.
//
// Cancelling the context passed to Run stops every host: the Starlark
// thread is cancelled and the command a host is running is killed by its
// connector. A host that fails, or panics, stops only itself.
//
// # Limits inside builtins
//
// Options.Timeout bounds each Run and, on its own, each Compile, which runs
// the top level of the modules a script loads. The timeout and a cancelled
// context stop a script within milliseconds also while it is inside a long
// builtin call, because the builtins that can take long observe the
// context (go.starlark.net's Thread.Cancel is seen only between steps of
// Starlark code):
//
//   - re.search, re.findall and re.sub search a string of more than 256 KiB
//     one match at a time, through a reader that looks at the context every
//     thousand runes; one search of the whole string could not be stopped
//     and takes seconds for 100 MB.
//   - Starlark's sorted, str, repr, print, list, tuple, enumerate, reversed,
//     zip, bytes, set, dict, any, all, min and max are replaced by versions
//     that look at the context every thousand items (builtins.Predeclared).
//   - Those that copy a whole value refuse more than builtins.MaxElements
//     (1<<28) items: list(range(1 << 62)) fails at its line with "list:
//     range too large: 4611686018427387904 elements, at most 268435456"
//     rather than panicking on the allocation.
//
// What a Go program cannot replace runs to its end: operators and methods
// of Starlark's types (x.extend(y), x += y, "%s" % x, "{}".format(x),
// sep.join(x), x == y on huge values, and str() of a struct holding one).
// They take tens of nanoseconds per item, so they overrun a deadline by as
// long as the value is large; in a sandbox, range() is bounded (see
// Sandbox), and memory, which bounds how large a value can grow, is bounded
// by RunIsolated.
//
// Options.MaxSteps counts Starlark steps; a builtin call is one step,
// whatever its work. A script stopped at the limit names the line of the loop
// it was in: go.starlark.net gives the test of a while loop no position of
// its own, so the thread runs on for a few steps until it reaches one.
//
// This package must not import a concrete connector, the CLI or the stdlib:
// callers hand it connectors (through Options.Connectors) and the stdlib
// (through Options.Stdlib). Programs that import it as well as Go's runtime package
// name it sdrt.
package runtime
