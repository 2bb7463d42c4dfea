package connectors

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Target is one parsed inventory entry. Producing a Target does no I/O
// (pyinfra's make_names_data); dialing happens in Factory.Open.
type Target struct {
	Scheme string            // "local", "ssh", "docker"
	Name   string            // display name, e.g. "web1" or "@local"
	Addr   string            // scheme-specific address: "deploy@10.0.0.5:22", a container name
	Data   map[string]string // connector data (keys declared by the factory's Fields)
}

// Factory knows one connector scheme: how to parse its inventory names,
// which data keys it accepts, and how to open a connection.
type Factory interface {
	// Scheme is the name used after "@" in inventory names ("local", "ssh").
	Scheme() string
	// Doc is a one-paragraph description shown by `star-deploy connectors`.
	Doc() string
	// Parse turns the part of an inventory name after "@scheme/" (empty for
	// "@local") plus the host's connector data into a Target. It does no I/O.
	Parse(addr string, data map[string]string) (Target, error)
	// Open connects to t and returns a ready Connector. It honours ctx for
	// the whole connection set-up.
	Open(ctx context.Context, t Target) (Connector, error)
	// Fields declares the connector data keys this scheme accepts.
	Fields() []Field
}

// Connector runs commands on and moves files to and from one host.
//
// All methods are safe for concurrent use up to Capabilities().MaxSessions
// concurrent calls (0 means unlimited). Cancelling ctx must stop the work it
// started, including the remote process of Run.
type Connector interface {
	// Target returns the target this connector was opened for.
	Target() Target
	// Capabilities declares what this connector supports.
	Capabilities() Capabilities
	// Run runs cmd.Script with `sh -c`. A non-zero exit status is reported in
	// Result.ExitCode and is not an error; errors mean the command could not
	// be run or was interrupted (ctx.Err() is wrapped then).
	Run(ctx context.Context, cmd Command) (Result, error)
	// Put streams src into the file dst, creating or replacing it with the
	// given permission bits. When Capabilities().AtomicPut is true, readers of
	// dst see either the old or the new content, never a mix, and a failed
	// Put leaves the old file and no temporary file behind.
	Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error
	// Get streams the file src into dst. A missing file yields an error that
	// wraps fs.ErrNotExist.
	Get(ctx context.Context, src string, dst io.Writer) error
	// Close releases the connection. It is safe to call more than once.
	Close() error
}

// Command is a shell command to run on a host. When Stdout and Stderr are
// the same writer, a connector never calls its Write concurrently.
type Command struct {
	Script string    // already rendered (see Render); run as `sh -c Script`
	Stdin  io.Reader // optional standard input
	Stdout io.Writer // optional live copy of standard output; Result still captures it
	Stderr io.Writer // optional live copy of standard error
	// StreamOnly sends standard output only to Stdout (which must be set):
	// Result.Stdout stays empty, so output of any size (a file read with
	// sudo cat) is never held in memory.
	StreamOnly bool
	PTY        bool // request a pseudo-terminal where supported
	// MaxOutput caps the bytes of each stream that the Result keeps
	// (DefaultMaxOutput when 0): beyond it, the first and the last
	// MaxOutput/2 bytes are kept and the rest is counted as dropped (see
	// CapBuffer). The live writers Stdout and Stderr get everything.
	MaxOutput int64
}

// Result is what a finished command produced. Of each stream it holds at
// most MaxOutput bytes: when a command writes more, the bytes in the
// middle are dropped and counted in StdoutDropped or StderrDropped.
type Result struct {
	ExitCode      int           // exit status; 128+N when killed by signal N, as a shell reports it
	Stdout        []byte        // what the command wrote to standard output (its head and tail when capped)
	Stderr        []byte        // what the command wrote to standard error (its head and tail when capped)
	Duration      time.Duration // wall-clock time from start to exit
	MaxOutput     int64         // the cap that applied to each stream, in bytes (0: not reported)
	StdoutDropped int64         // bytes of standard output not kept
	StderrDropped int64         // bytes of standard error not kept
}

// Capabilities are declared data about a connector, so that the engine and
// embedders can decide without type assertions.
type Capabilities struct {
	MaxSessions int  // concurrent Run/Put/Get calls allowed; 0 = unlimited
	PTY         bool // Command.PTY is honoured
	AtomicPut   bool // Put replaces files atomically
}

// Field declares one connector data key (pyinfra's DataMeta).
type Field struct {
	Name    string // e.g. "ssh_port"
	Type    string // "string", "int", "bool", "duration"
	Default string // shown in docs; empty when there is none
	Doc     string // one or two sentences
	Secret  bool   // never printed, logged or put in events
}

// UnixMode returns the chmod(2) bits of a Put's mode: the permission bits
// and the set-id and sticky bits, taken from either fs.FileMode's flags
// (fs.ModeSetuid, ...) or Unix's bits (0o4755, as the builtins pass them),
// as SFTP's chmod reads them.
func UnixMode(mode fs.FileMode) uint32 {
	m := uint32(mode) & 0o7777
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// DataBool reads the "bool" field key of a host's data: def when it is
// unset or empty, else yes or no, or what strconv.ParseBool takes (true,
// false, 1, 0, ...), in any case.
func DataBool(data map[string]string, key string, def bool) (bool, error) {
	v := strings.TrimSpace(data[key])
	switch strings.ToLower(v) {
	case "":
		return def, nil
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: want true or false, got %q", key, v)
	}
	return b, nil
}

// ExitError reports a command whose exit status was not accepted.
type ExitError struct {
	Target string // host name
	Script string // the command as the user wrote it (not the rendered wrapper)
	Result Result
}

// Error names the command, the host and the exit status, followed by the
// last line of standard error when there is one.
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("command %q on %s exited with status %d", e.Script, e.Target, e.Result.ExitCode)
	if s := lastLine(e.Result.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// LastLine returns the last non-empty line of b, trimmed of spaces: the
// line of a command's standard error that an error message quotes.
func LastLine(b []byte) string {
	b = bytes.TrimRight(b, " \t\r\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return strings.TrimSpace(string(b))
}

// lastLine is LastLine cut to 200 bytes, for ExitError.
func lastLine(b []byte) string {
	s := LastLine(b)
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // do not split a multi-byte character
		}
		s = s[:cut] + "…"
	}
	return s
}

// ContextReader returns a reader that fails with ctx's error once ctx ends,
// checked before each Read, so that a streaming copy stops on cancel.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// Finisher is implemented by connectors that produce something when a
// host's run ends, such as the Docker connector in image mode, which commits
// the container to a new image. The runtime calls Finish once, before
// Close, with ok reporting whether every script succeeded; the result (an
// image id) is reported to the user. Finish must release what it created
// also when ok is false.
type Finisher interface {
	Finish(ctx context.Context, ok bool) (result string, err error)
}
