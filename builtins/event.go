package builtins

import (
	"encoding/json"
	"time"
)

// Status is the outcome of one operation.
type Status string

// Operation outcomes.
const (
	StatusOK      Status = "ok"      // ran (or probed) and changed nothing
	StatusChanged Status = "changed" // changed the host (or would, under dry-run)
	StatusFailed  Status = "failed"  // failed; the host stops unless ignore_errors
	StatusSkipped Status = "skipped" // not run: creates=/unless= said so
)

// Host outcomes: the Status of a host_end event, besides StatusOK and
// StatusFailed (an operation, the script or the connector's end failed).
const (
	StatusUnreachable Status = "unreachable" // never connected: the connector could not open the host
	StatusNotStarted  Status = "not_started" // never began: --fail-percent was passed, or the run was interrupted
	StatusStopped     Status = "stopped"     // began, then --fail-percent stopped it before its next operation
	StatusInterrupted Status = "interrupted" // began, then the run was interrupted (or timed out)
)

// Kind says what an Event reports.
type Kind string

// Event kinds, in the order a host produces them.
const (
	KindHostStart Kind = "host_start" // the host's scripts start
	KindOpStart   Kind = "op_start"   // an operation starts
	KindOpEnd     Kind = "op_end"     // an operation ended with Status
	KindPrint     Kind = "print"      // the script called print()
	KindHostEnd   Kind = "host_end"   // the host finished (or never began); Status is a host outcome, counts are set
	KindCommand   Kind = "command"    // a command was sent to the host (Trace ≥ TraceCommands); Message holds it, secrets redacted
	KindOutput    Kind = "output"     // a line a command printed (Trace ≥ TraceOutput); Stream says which, Message holds it
)

// Event is one thing that happened on one host. Events reach embedders
// through the runtime's callback and the CLI's --json output unchanged.
// Secrets never appear in an Event.
type Event struct {
	Time     time.Time     `json:"time"`
	Kind     Kind          `json:"kind"`
	Host     string        `json:"host"`
	Op       string        `json:"op,omitempty"`   // builtin name: "shell", "put", ...
	Name     string        `json:"name,omitempty"` // display name (name= or a summary of the call)
	Pos      string        `json:"pos,omitempty"`  // file:line:col of the call in the script
	Status   Status        `json:"status,omitempty"`
	Duration time.Duration `json:"-"`
	Error    string        `json:"error,omitempty"`
	Message  string        `json:"message,omitempty"` // print() text, or what a dry-run would do
	Diff     string        `json:"diff,omitempty"`    // unified diff, with --diff
	Dry      bool          `json:"dry,omitempty"`
	Ignored  bool          `json:"ignored,omitempty"` // a failure that ignore_errors=True let pass
	Stdout   string        `json:"stdout,omitempty"`  // shell output, only when verbose
	Stderr   string        `json:"stderr,omitempty"`
	Stream   string        `json:"stream,omitempty"` // output events: "stdout" or "stderr"
	// ExitCode is the exit status of the last command an op_end's
	// operation ran (shell; another operation when its command failed).
	ExitCode *int    `json:"exit_code,omitempty"`
	Counts   *Counts `json:"counts,omitempty"` // host_end only

	// MaxOutput is the cap on each stream of a command (max_output), set
	// with the dropped counts on op_end when output was cut.
	MaxOutput     int64 `json:"max_output,omitempty"`
	StdoutDropped int64 `json:"stdout_dropped,omitempty"` // bytes of stdout not kept
	StderrDropped int64 `json:"stderr_dropped,omitempty"` // bytes of stderr not kept
}

// Counts tallies a host's operations by status.
type Counts struct {
	OK      int `json:"ok"`
	Changed int `json:"changed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Add counts one operation of status s.
func (c *Counts) Add(s Status) {
	switch s {
	case StatusOK:
		c.OK++
	case StatusChanged:
		c.Changed++
	case StatusFailed:
		c.Failed++
	case StatusSkipped:
		c.Skipped++
	}
}

// MarshalJSON writes Duration as seconds ("duration": 0.12).
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	out := struct {
		plain
		Seconds float64 `json:"duration,omitempty"`
	}{plain(e), e.Duration.Seconds()}
	return json.Marshal(out)
}
