package runtime

import "github.com/star-deploy/star-deploy/builtins"

// The names below are builtins' own, re-exported so that an app (and the
// CLI) imports runtime alone, besides the connectors it chooses and the
// stdlib.

// Event is one thing that happened on one host: its Kind says what, its
// Status how an operation or a host ended.
type Event = builtins.Event

// Kind is the kind of an Event.
type Kind = builtins.Kind

// The kinds of events, in the order a host sees them.
const (
	KindHostStart = builtins.KindHostStart // the host's scripts start
	KindOpStart   = builtins.KindOpStart   // an operation starts
	KindOpEnd     = builtins.KindOpEnd     // an operation ended with Status
	KindPrint     = builtins.KindPrint     // the script called print()
	KindHostEnd   = builtins.KindHostEnd   // the host finished (or never began); Status is a host outcome
	KindCommand   = builtins.KindCommand   // a command sent to the host (Options.Trace), secrets redacted
	KindOutput    = builtins.KindOutput    // a line a command printed (Options.Trace ≥ TraceOutput)
)

// Trace is how much of the traffic with hosts a run reports (Options.Trace).
type Trace = builtins.Trace

// The levels of Trace.
const (
	TraceOff      = builtins.TraceOff      // operations only
	TraceCommands = builtins.TraceCommands // also a command event per command sent (-vv)
	TraceOutput   = builtins.TraceOutput   // also an output event per line printed (-vvv)
)

// Status is how an operation (op_end) or a host (host_end) ended.
type Status = builtins.Status

// Outcomes of an operation.
const (
	StatusOK      = builtins.StatusOK      // ran (or probed) and changed nothing
	StatusChanged = builtins.StatusChanged // changed the host (or would, under dry-run)
	StatusFailed  = builtins.StatusFailed  // failed; the host stops unless ignore_errors
	StatusSkipped = builtins.StatusSkipped // not run: creates=/unless= said so
)

// Outcomes of a host besides ok and failed.
const (
	StatusUnreachable = builtins.StatusUnreachable // never connected: the connector could not open the host
	StatusNotStarted  = builtins.StatusNotStarted  // never began: FailPercent was passed, or the run was interrupted
	StatusStopped     = builtins.StatusStopped     // began, then FailPercent stopped it before its next operation
	StatusInterrupted = builtins.StatusInterrupted // began, then the run was interrupted (or timed out)
)

// Counts are the operations of a host by outcome.
type Counts = builtins.Counts

// Control holds the control arguments of operations (sudo, env, timeout,
// ...); Options.Control sets their defaults for a run.
type Control = builtins.Control

// ControlFromData returns base with the control keys of host data
// (sudo, sudo_user, env, ...) applied; a bad value is an error naming the key.
func ControlFromData(base Control, data map[string]any) (Control, error) {
	return builtins.ControlFromData(base, data)
}

// IsControlKey reports whether key is the host data key of a control
// argument (sudo, timeout, ...).
func IsControlKey(key string) bool { return builtins.IsControlKey(key) }

// SudoPasswordKey is the host data key of the password sudo is fed.
const SudoPasswordKey = builtins.SudoPasswordKey

// Effect is what a builtin may do; a Sandbox defines only the builtins
// whose effects its Effects allow. docs/builtins.md lists each builtin's.
type Effect = builtins.Effect

// The effects a builtin may have; they combine as bit flags.
const (
	EffectPure      = builtins.EffectPure      // computes a value, touches nothing
	EffectReadHost  = builtins.EffectReadHost  // runs read-only probes on the host
	EffectWriteHost = builtins.EffectWriteHost // may change the host
	EffectLocalFS   = builtins.EffectLocalFS   // reads local files (in a sandbox, Sandbox.Files only) or writes them
	EffectNetwork   = builtins.EffectNetwork   // opens network connections of its own
	EffectLocalExec = builtins.EffectLocalExec // runs a program on this machine (rsync)
)
