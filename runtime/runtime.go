package runtime

import (
	"io/fs"
	"time"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// Options configure a Runner. The zero value is usable: all hosts at once,
// no step or time limit, the operating system's files, no stdlib.
type Options struct {
	// Parallel bounds how many hosts run at once; 0 means all of them.
	Parallel int
	// Serial runs the hosts in batches of this many, in order, each batch
	// finishing before the next starts (a rolling deploy); 0 means one
	// batch. With FailPercent, a roll-out that fails stops at its batch.
	Serial int
	// MaxSteps bounds the Starlark steps of each host's run; 0 = unlimited.
	MaxSteps uint64
	// Timeout bounds the wall-clock time of a whole Run, and of each
	// Compile (which runs the top level of the modules a script loads);
	// 0 = none. Long builtins stop at it too (see the package doc).
	Timeout time.Duration
	// Stdlib serves load("@stdlib//NAME.star"); nil disables it.
	Stdlib fs.FS
	// Dry reports what each operation would do without changing a host.
	Dry bool
	// Diff adds unified diffs of file contents to events.
	Diff bool
	// Verbose adds shell output to op_end events.
	Verbose bool
	// Control holds the default control arguments (e.g. sudo) of every
	// operation; host data and keywords on a call override them.
	Control Control
	// FailPercent stops the run early: once more than this percentage of the
	// hosts have failed, no host starts a new operation or a new host. nil
	// never stops early; 0 stops at the first failure.
	FailPercent *int
	// Sandbox, when set, restricts the files, builtins and connectors
	// scripts can reach; see Sandbox.
	Sandbox *Sandbox
	// Builtins are extra predeclared names the app adds (its own
	// builtins, constants or modules), also in a sandbox. They must be safe
	// for concurrent use by every host; freeze values that can be mutated.
	Builtins starlark.StringDict
	// Modules are extra modules the app serves to load(), by the exact
	// name a script loads ("@app//deploy.star"); their globals are shared
	// by every host and frozen.
	Modules map[string]starlark.StringDict
	// Print receives what a script prints, instead of print events; nil
	// sends them as events. It may be called from many goroutines at once.
	Print func(host, msg string)
	// OnEvent receives every event. Calls are serialised by the runner, so
	// the callback need not be safe for concurrent use; it must not block
	// for long.
	OnEvent func(Event)
}

// Host is one host to run scripts on.
type Host struct {
	Name    string             // display name, e.g. "@local" or "web1"
	Groups  []string           // inventory groups, in order
	Data    map[string]any     // host data: string, bool, int64, float64, []any, map[string]any
	Factory connectors.Factory // opens Target
	Target  connectors.Target
}

// Report is the outcome of a Run.
type Report struct {
	Hosts       []HostResult // in the order the hosts were given
	Interrupted bool         // the context was cancelled before every host finished
}

// HostResult is the outcome of one host.
type HostResult struct {
	Name    string
	Started bool // false when the run was cancelled, or --fail-percent passed, before this host began
	// Status is the host's outcome, as in its host_end event: ok, failed,
	// unreachable (the connector could not open it), not_started, stopped
	// (by FailPercent, after it began) or interrupted.
	Status   Status
	Counts   Counts
	Duration time.Duration
	Err      error  // nil when every script finished; a *ScriptError for script failures
	Output   string // what the connector produced at the end (an image id in Docker image mode)
}

// Failed returns how many hosts failed.
func (r *Report) Failed() int {
	n := 0
	for _, h := range r.Hosts {
		if h.Err != nil {
			n++
		}
	}
	return n
}
