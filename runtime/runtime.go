package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// Options configure a Runner. The zero value is usable but reaches no
// host: set Connectors. Otherwise it runs all hosts at once, with no step or
// time limit, on the operating system's files, without the stdlib.
type Options struct {
	// Connectors are the connectors hosts can use: a host runs through the
	// factory of its Target's scheme. Build it with connectors.NewRegistry
	// of the factories the app offers (local.NewFactory(), ...), or
	// connectors/all.Registry() for every built-in one.
	Connectors *connectors.Registry
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
	// Stdlib serves load("@stdlib//NAME.star"). Set it to stdlib.FS (the
	// package github.com/star-deploy/star-deploy/stdlib) for the embedded
	// stdlib; nil disables it.
	Stdlib fs.FS
	// CompileCache is a directory where the compiled form of stdlib
	// modules is kept between runs, created (0700) when first written;
	// "" keeps nothing. A run then decodes a module in place of parsing
	// it again (files.star: 0.14 ms, not 3.6). An entry serves only the
	// same build of the program (executable path, size and time), source,
	// predeclared names and loaded modules, and anything wrong with one
	// makes the module compile from source. The directory and its entries
	// are used only when they are the running user's and writable by no
	// one else (a directory not made yet: when its nearest existing parent
	// is).
	// The CLI keeps it in star-deploy/compiled in the user's cache
	// directory. A RunIsolated child keeps none.
	CompileCache string
	// Dry reports what each operation would do without changing a host.
	Dry bool
	// Diff adds unified diffs of file contents to events.
	Diff bool
	// Verbose adds shell output to op_end events.
	Verbose bool
	// Trace adds command events (every command sent to a host, probes
	// included, secrets redacted) and output events (each line a command
	// prints, as it prints it).
	Trace Trace
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
	// Remote serves remote modules: load("git+https://HOST/ORG/REPO@REF//PATH.star")
	// and load("@NAME//PATH.star") of a source other than the stdlib. It is
	// asked at Compile, before any host connects. nil refuses every remote
	// load (the default). package modules (modules.New) is the CLI's.
	// In RunIsolated the parent's Remote serves the child: the child asks
	// the parent, which reads only keys of RemoteAllow.
	Remote RemoteModules
	// RemoteAllow lists the prefixes of the module keys
	// (git+URL@REF//PATH) that scripts may load through Remote, e.g.
	// "git+https://git.example.com/ops/"; "git+" allows every source.
	// Empty refuses every remote load, Remote or not.
	RemoteAllow []string
	// Print receives what a script prints, instead of print events; nil
	// sends them as events. It may be called from many goroutines at once.
	Print func(host, msg string)
	// OnEvent receives every event. Calls are serialised by the runner, so
	// the callback need not be safe for concurrent use; it must not block
	// for long.
	OnEvent func(Event)
}

// Host is one host to run scripts on. Runner.Host builds one from an
// inventory name; its Target is opened by the factory of Target.Scheme in
// Options.Connectors.
type Host struct {
	Name   string         // display name, e.g. "@local" or "web1"
	Groups []string       // inventory groups, in order
	Data   map[string]any // host data: string, bool, int64, float64, []any, map[string]any
	Target connectors.Target
}

// Host returns the host of an inventory name ("@local", "@ssh/deploy@web1",
// "@docker/app", a bare "web1" for SSH) with host data. The data keys of
// the host's connector ("ssh_port", "docker_user") must be ones it declares
// and hold a string, number or bool; they reach the connector as strings.
// It does no I/O.
func (r *Runner) Host(name string, data map[string]any) (Host, error) {
	if r.opts.Connectors == nil {
		return Host{}, fmt.Errorf("host %q: %w", name, errNoConnectors)
	}
	scheme, _ := connectors.SplitName(name)
	own := map[string]string{}
	for k, v := range data {
		if !r.opts.Connectors.ConnectorKey(scheme, k) {
			continue // host data, or another connector's: not this one's
		}
		s, ok := connectorValue(v)
		if !ok {
			return Host{}, fmt.Errorf("host %q: data key %s: want a string, number or bool, got %T", name, k, v)
		}
		own[k] = s
	}
	t, err := r.opts.Connectors.Target(name, own)
	if err != nil {
		return Host{}, err
	}
	return Host{Name: t.Name, Data: data, Target: t}, nil
}

// Hosts returns the hosts an inventory name stands for: the one host of
// Host, or, for a name that stands for many ("@docker/label=role=web",
// "@terraform/web_ips": see connectors.Expander), each host it expands
// to, with its data under data and its groups. Expansion may do I/O
// (it asks the Docker engine, runs terraform) and stops when ctx ends.
func (r *Runner) Hosts(ctx context.Context, name string, data map[string]any) ([]Host, error) {
	if r.opts.Connectors == nil {
		return nil, fmt.Errorf("host %q: %w", name, errNoConnectors)
	}
	scheme, _ := connectors.SplitName(name)
	own := map[string]string{}
	for k, v := range data {
		if s, ok := connectorValue(v); ok && strings.HasPrefix(k, scheme+"_") {
			own[k] = s
		}
	}
	xs, ok, err := r.opts.Connectors.Expand(ctx, name, own)
	if err != nil {
		return nil, err
	}
	if !ok {
		h, err := r.Host(name, data)
		return []Host{h}, err
	}
	hosts := make([]Host, 0, len(xs))
	for _, x := range xs {
		d := maps.Clone(x.Data)
		if d == nil {
			d = map[string]any{}
		}
		maps.Copy(d, data)
		h, err := r.Host(x.Name, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		h.Groups = x.Groups
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// connectorValue is v as connector data, which is text.
func connectorValue(v any) (string, bool) {
	switch v.(type) {
	case string, bool, int, int64, float64:
		return fmt.Sprint(v), true
	}
	return "", false
}

// errNoConnectors is the error of a host when Options.Connectors is nil.
var errNoConnectors = errors.New("no connectors: set Options.Connectors to a registry of the connectors hosts may use")

// factory returns the factory that opens host.
func (r *Runner) factory(host Host) (connectors.Factory, error) {
	if r.opts.Connectors == nil {
		return nil, fmt.Errorf("%s: %w", host.Name, errNoConnectors)
	}
	f, ok := r.opts.Connectors.Lookup(host.Target.Scheme)
	if !ok {
		return nil, fmt.Errorf("%s: no connector %q in Options.Connectors (it has %s)", host.Name, host.Target.Scheme, strings.Join(r.opts.Connectors.Schemes(), ", "))
	}
	return f, nil
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

// RemoteModules serves modules that are not files of this machine: those
// of git repositories (load("git+https://HOST/ORG/REPO@REF//PATH.star")) and
// of sources the app names (load("@web//nginx.star")). The runner asks it
// for keys and content at Compile, serialised, before any host connects.
type RemoteModules interface {
	// Resolve returns the key of module name loaded from the module from.
	// name starts with "git+" or is "@NAME//PATH" (NAME not stdlib), or
	// from is a key Resolve returned and name is relative to it. Keys
	// start with "git+". It does no I/O.
	Resolve(from, name string) (key string, err error)
	// Read returns the content of the module key.
	Read(ctx context.Context, key string) ([]byte, error)
}
