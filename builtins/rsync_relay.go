package builtins

// The rsync relay: the local rsync program talks to `rsync --server` on the
// host through the host's own connection. rsync starts its "remote shell"
// (-e) with the remote command line as arguments and speaks its protocol on
// that program's stdin and stdout. Our remote shell is a small sh script,
// written to a private directory with two FIFOs: it writes its arguments to
// a file and copies its stdin into one FIFO and the other FIFO to its
// stdout. The engine reads the arguments, checks that they are an
// `rsync --server` command line, and runs it with one Run of the host's
// connector (sudo rendered around it like any command), the FIFOs as its
// stdin and stdout. No helper binary is needed, which matters to apps that
// embed the engine.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// The bounds of an rsync run's ending: how long the remote command may go
// on after the local rsync exited before it is stopped, and how long the
// local rsync has after SIGTERM before SIGKILL.
const (
	rsyncRemoteGrace = 10 * time.Second
	rsyncKillGrace   = 2 * time.Second
	// rsyncMaxLine bounds one line of rsync's output held while it is
	// parsed; a longer line is cut.
	rsyncMaxLine = 64 << 10
)

// rsyncMarker starts each line rsync prints for an itemized change
// (--out-format), telling them apart from its other messages.
const rsyncMarker = "star-deploy-rsync: "

// relayScript is the remote shell rsync runs as `sh relay HOST ARGS...`;
// %s is the quoted directory of the FIFOs.
const relayScript = `# star-deploy rsync relay: hands rsync's remote command line and its stdin
# and stdout to star-deploy, which runs the command on the host. It ends when
# the remote command does (star-deploy closes "in"), as ssh would: rsync
# waits for its remote shell to exit.
d=%s
shift
printf '%%s\000' "$@" >"$d/argv.new" && mv "$d/argv.new" "$d/argv" || exit 1
exec 3<&0
cat <&3 >"$d/out" &
c=$!
exec 3<&-
cat "$d/in"
kill $c 2>/dev/null
`

// rsyncRun is what one run of the local rsync did.
type rsyncRun struct {
	exitCode int
	out      itemizer             // its standard output
	stderr   connectors.CapBuffer // its standard error
	remote   connectors.Result    // the result of rsync --server on the host
	// remoteErr is why the remote command could not run or was cut
	// short; nil when it ran to its end (whatever its exit status).
	remoteErr error
}

// runRsync runs the local rsync at bin with args (its options and sources,
// without -e and the destination), the destination being dest on the host
// h, through the relay. It returns when the local rsync and the remote
// command have both ended; cancelling ctx kills both, within a bound.
func (h *Host) runRsync(ctx context.Context, bin string, args []string, dest string, ctl Control) (*rsyncRun, error) {
	dir, err := os.MkdirTemp("", "star-deploy-rsync-") // 0700
	if err != nil {
		return nil, fmt.Errorf("rsync relay: %w", err)
	}
	defer os.RemoveAll(dir)
	if strings.ContainsAny(dir, "'\n") {
		return nil, fmt.Errorf("rsync relay: the temporary directory %q has a quote or newline in its name; set TMPDIR to a plainer one", dir)
	}
	for _, f := range []string{"in", "out"} {
		if err := syscall.Mkfifo(filepath.Join(dir, f), 0o600); err != nil {
			return nil, fmt.Errorf("rsync relay: mkfifo: %w", err)
		}
	}
	relay := filepath.Join(dir, "relay")
	if err := os.WriteFile(relay, fmt.Appendf(nil, relayScript, connectors.Quote(dir)), 0o600); err != nil {
		return nil, fmt.Errorf("rsync relay: %w", err)
	}

	run := &rsyncRun{out: itemizer{buf: connectors.CapBuffer{Max: ctl.MaxOutput}}}
	run.stderr.Max = ctl.MaxOutput
	// rsync splits -e on spaces and honours single quotes.
	full := append(append([]string{}, args...), "-e", "sh '"+relay+"'", "star-deploy:"+dest)
	cmd := exec.Command(bin, full...)
	cmd.Stdout, cmd.Stderr = &run.out, &run.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the relay's processes go with it
	cmd.WaitDelay = rsyncRemoteGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start rsync: %w", err)
	}
	pgid := cmd.Process.Pid

	localDone := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(localDone)
	}()
	rctx, cancelRemote := context.WithCancel(ctx)
	defer cancelRemote()
	remoteDone := make(chan struct{})
	go func() {
		defer close(remoteDone)
		run.remote, run.remoteErr = h.relayRsync(rctx, dir, localDone, ctl)
	}()

	// The local rsync ends first, normally; a cancelled run kills it.
	select {
	case <-localDone:
	case <-ctx.Done():
		killRsync(pgid, localDone)
	}
	// The remote command ends when its stdin does, which the local rsync
	// closed; it gets a bounded time to.
	select {
	case <-remoteDone:
	case <-ctx.Done():
	case <-time.After(rsyncRemoteGrace):
	}
	cancelRemote()
	<-remoteDone
	run.out.flush()

	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return run, fmt.Errorf("rsync: %w", context.Cause(ctx))
	case waitErr == nil, errors.Is(waitErr, exec.ErrWaitDelay):
	case errors.As(waitErr, &exit):
		run.exitCode = exit.ExitCode()
		if run.exitCode < 0 { // killed by a signal
			run.exitCode = 128 + int(exit.Sys().(syscall.WaitStatus).Signal())
		}
	default:
		return run, fmt.Errorf("rsync: %w", waitErr)
	}
	return run, nil
}

// killRsync stops the local rsync's process group (rsync and the relay):
// SIGTERM, then SIGKILL after a grace period; it returns when rsync has
// been waited for.
func killRsync(pgid int, done <-chan struct{}) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(rsyncKillGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // a relay process left behind
}

// relayRsync waits for the relay to start, checks the command line rsync
// gave it and runs that command on the host, with the FIFOs as its stdin and
// stdout. It gives up when the local rsync exits without starting the relay.
func (h *Host) relayRsync(ctx context.Context, dir string, localDone <-chan struct{}, ctl Control) (connectors.Result, error) {
	abort := make(chan struct{})
	go func() {
		select {
		case <-localDone:
		case <-ctx.Done():
		}
		close(abort)
	}()
	// What the relay writes into "out" is what the local rsync sends; what
	// we write into "in" reaches it.
	toRemote, err := openFIFO(filepath.Join(dir, "out"), os.O_RDONLY, abort)
	if err != nil {
		return connectors.Result{}, err
	}
	defer toRemote.Close()
	fromRemote, err := openFIFO(filepath.Join(dir, "in"), os.O_WRONLY, abort)
	if err != nil {
		return connectors.Result{}, err
	}
	defer fromRemote.Close()

	b, err := os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil {
		return connectors.Result{}, fmt.Errorf("rsync relay: read the remote command line: %w", err)
	}
	script, err := rsyncRemoteCommand(b)
	if err != nil {
		return connectors.Result{}, err
	}
	ctl.Stdin, ctl.GetPTY = "", false // the protocol is binary and needs both streams
	res, err := h.runCommand(ctx, script, ctl, connectors.Command{Stdin: toRemote, Stdout: fromRemote, StreamOnly: true, MaxOutput: ctl.MaxOutput})
	if err != nil {
		return res, fmt.Errorf("run %s: %w", short(script), err)
	}
	return res, nil
}

// rsyncRemoteCommand turns the relay's arguments (NUL-terminated) into the
// command to run on the host, as ssh would (joined by spaces: rsync quotes
// them for a shell itself), after checking that it is rsync's server.
func rsyncRemoteCommand(b []byte) (string, error) {
	words := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	line := strings.Join(words, " ")
	if len(words) < 3 || words[0] != "rsync" || words[1] != "--server" || strings.ContainsAny(line, "\n\r") {
		return "", fmt.Errorf("rsync relay: the remote command line %q is not `rsync --server ...`: a flag changed rsync's remote command (--rsync-path, -M) or its remote shell", short(line))
	}
	return line, nil
}

// openFIFO opens the FIFO at p, which blocks until the other end is
// opened, unless abort is closed first: then the open is released (a FIFO
// opened for both reading and writing never blocks, and wakes a blocked
// opener) and an error returned.
func openFIFO(p string, flag int, abort <-chan struct{}) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.OpenFile(p, flag, 0)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, fmt.Errorf("rsync relay: %w", o.err)
		}
		return o.f, nil
	case <-abort:
	}
	if g, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
		defer g.Close()
	}
	if o := <-ch; o.f != nil {
		o.f.Close()
	}
	return nil, errRelayNotStarted
}

// errRelayNotStarted: the local rsync ended (or the run was cancelled)
// before it started its remote shell.
var errRelayNotStarted = errors.New("rsync ended before it connected to the host")

// itemizer is rsync's standard output: it counts the lines of itemized
// changes (rsyncMarker) and keeps the output, the marker taken off, within
// its buffer's cap.
type itemizer struct {
	buf     connectors.CapBuffer
	partial []byte
	changes int
}

func (w *itemizer) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b)
		}
		if room := rsyncMaxLine - len(w.partial); i > room {
			i = room
		}
		w.partial = append(w.partial, b[:i]...)
		b = b[i:]
		if len(b) > 0 && b[0] == '\n' {
			b = b[1:]
			w.line()
		} else if len(w.partial) >= rsyncMaxLine {
			w.line()
		}
	}
	return n, nil
}

// line takes the line held in w.partial.
func (w *itemizer) line() {
	l := w.partial
	if rest, ok := bytes.CutPrefix(l, []byte(rsyncMarker)); ok {
		w.changes++
		l = rest
	}
	w.buf.Write(l)
	w.buf.Write([]byte{'\n'})
	w.partial = w.partial[:0]
}

// flush takes a last line without a newline.
func (w *itemizer) flush() {
	if len(w.partial) > 0 {
		w.line()
	}
}
