package builtins

// The execution path: every command a builtin sends to a host goes through
// here. Operations call run or check, facts and the probes of operations
// call probe (or run, when a non-zero exit is an answer), get streams with
// execStream; all of them end in runCommand, which renders the control
// settings (sudo, su, doas, env, chdir, shell) around the script and feeds
// a sudo password on stdin.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/star-deploy/star-deploy/connectors"
)

// native returns the host's connectors.Native, when its connector has
// one, for what runs under ctl: only as the user star-deploy runs as (no
// sudo=, su_user= or doas=; those keep the shell, which becomes that
// user). A caller uses it in place of a probe's or a chmod's shell command
// and, on any error from it, runs that command after all, so that results
// and messages are the shell's (see connectors.Native). A trace of -vv
// shows each native call as a command line starting with "(native)". A
// connectors.NativeGate that is not ready leaves everything to the shell.
func (h *Host) native(ctx context.Context, ctl Control) (connectors.Native, bool) {
	if ctl.privileged() {
		return nil, false
	}
	n, ok := h.Conn.(connectors.Native)
	if g, gated := n.(connectors.NativeGate); ok && gated && !g.NativeReady(ctx) {
		return nil, false
	}
	return n, ok
}

// traceNative is traceCommand for a call to connectors.Native.
func (h *Host) traceNative(ctl Control, what string) {
	h.traceCommand("(native) "+what, ctl)
}

// run renders script with ctl's privilege and environment settings and runs
// it. Probes and operations both go through here.
func (h *Host) run(ctx context.Context, script string, ctl Control, stdin string) (connectors.Result, error) {
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	res, err := h.exec(ctx, script, ctl, in)
	if err != nil {
		// The connector's error names the host ("run on web1: ...").
		return res, fmt.Errorf("command %q: %w", short(script), err)
	}
	return res, nil
}

// check runs script and turns an exit status outside ctl's success codes
// into an *connectors.ExitError.
func (h *Host) check(ctx context.Context, script string, ctl Control, stdin string) (connectors.Result, error) {
	res, err := h.run(ctx, script, ctl, stdin)
	if err != nil {
		return res, err
	}
	if !ctl.success(res.ExitCode) {
		return res, &connectors.ExitError{Target: h.Name, Script: short(script), Result: res}
	}
	return res, nil
}

// probe runs a read-only command that must succeed and returns its stdout.
func (h *Host) probe(ctx context.Context, ctl Control, script string) (string, error) {
	res, err := h.check(ctx, script, ctl, "")
	if err == nil {
		err = whole(res)
	}
	return string(res.Stdout), err
}

// whole fails when max_output cut the stdout of res: a probe parses all of
// its output, and a part would give a wrong answer.
func whole(res connectors.Result) error {
	if res.StdoutDropped == 0 {
		return nil
	}
	return fmt.Errorf("output is larger than max_output (%d bytes, %d more): raise max_output", res.MaxOutput, res.StdoutDropped)
}

// exec renders script with ctl and runs it with stdin.
func (h *Host) exec(ctx context.Context, script string, ctl Control, stdin io.Reader) (connectors.Result, error) {
	return h.runCommand(ctx, script, ctl, connectors.Command{Stdin: stdin, PTY: ctl.GetPTY, MaxOutput: ctl.MaxOutput})
}

// execStream is exec with standard output streamed to stdout instead of
// kept in the result.
func (h *Host) execStream(ctx context.Context, script string, ctl Control, stdout io.Writer) (connectors.Result, error) {
	return h.runCommand(ctx, script, ctl, connectors.Command{Stdout: stdout, StreamOnly: true, PTY: ctl.GetPTY, MaxOutput: ctl.MaxOutput})
}

// runCommand renders script with ctl into cmd and runs it on the
// connector. With a sudo password, sudo runs with -S behind a random
// prompt: the password is written to sudo's stdin when the prompt appears
// on stderr (sudoFeeder), the command's own stdin follows once the command
// has started, and the prompt never reaches the result. A second prompt
// means a wrong password: the command is stopped at once. The password
// never appears in argv, the environment, output or errors.
func (h *Host) runCommand(ctx context.Context, script string, ctl Control, cmd connectors.Command) (connectors.Result, error) {
	stdin := cmd.Stdin
	w := ctl.Wrap()
	if !w.Sudo || ctl.SudoPassword == "" {
		rendered, err := connectors.Render(script, w)
		if err != nil {
			return connectors.Result{}, err
		}
		h.traceCommand(rendered, ctl)
		cmd, flush := h.traceOutput(cmd, ctl)
		defer flush()
		cmd.Script = rendered
		return h.Conn.Run(ctx, cmd)
	}
	w.SudoPrompt = "[star-deploy:" + randomToken() + "] sudo password: "
	rendered, err := connectors.Render(script, w)
	if err != nil {
		return connectors.Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	defer pr.Close()
	f := &sudoFeeder{prompt: []byte(w.SudoPrompt), ready: []byte(w.SudoPrompt + connectors.SudoReady + "\n"), password: ctl.SudoPassword, stdin: stdin, pipe: pw, cancel: cancel}
	f.after.Max = cmd.MaxOutput
	h.traceCommand(rendered, ctl)
	cmd.Script, cmd.Stdin, cmd.Stderr = rendered, pr, f
	cmd, flush := h.traceOutput(cmd, ctl)
	defer flush()
	res, err := h.Conn.Run(ctx, cmd)
	f.finish()
	res.Stderr, res.StderrDropped = f.stderr()
	if ferr := f.failure(); ferr != nil {
		return res, ferr
	}
	return res, err
}

// errWrongSudoPassword is returned when sudo asks for the password again.
var errWrongSudoPassword = errors.New("sudo rejected the password (one attempt was made; check sudo_password or --sudo-password)")

// maxSudoPreamble bounds what sudo may write to stderr before the command
// starts (its prompt, a lecture).
const maxSudoPreamble = 1 << 20

// errSudoPreamble is returned when sudo writes more than maxSudoPreamble
// bytes without starting the command.
var errSudoPreamble = fmt.Errorf("sudo wrote more than %d bytes to stderr without starting the command (check the sudo configuration of the host)", maxSudoPreamble)

// sudoFeeder watches stderr for the sudo prompt and the ready line.
type sudoFeeder struct {
	prompt, ready []byte
	password      string
	stdin         io.Reader
	pipe          *io.PipeWriter
	cancel        context.CancelFunc

	mu      sync.Mutex
	before  bytes.Buffer         // stderr until the ready line, at most maxSudoPreamble bytes
	after   connectors.CapBuffer // stderr after it, within max_output
	started bool
	asked   int
	failed  error // errWrongSudoPassword or errSudoPreamble
}

func (f *sudoFeeder) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return f.after.Write(b)
	}
	if f.failed != nil {
		return len(b), nil
	}
	f.before.Write(b)
	if f.before.Len() > maxSudoPreamble && !bytes.Contains(f.before.Bytes(), f.ready) {
		f.stop(errSudoPreamble)
		return len(b), nil
	}
	if n := bytes.Count(f.before.Bytes(), f.prompt) - bytes.Count(f.before.Bytes(), f.ready); n > f.asked {
		f.asked = n
		if n == 1 {
			go func() { io.WriteString(f.pipe, f.password+"\n") }()
		} else {
			f.stop(errWrongSudoPassword)
		}
	}
	if i := bytes.Index(f.before.Bytes(), f.ready); i >= 0 {
		f.started = true
		rest := append([]byte(nil), f.before.Bytes()[i+len(f.ready):]...)
		f.before.Truncate(i)
		f.after.Write(rest)
		go func() {
			if f.stdin != nil {
				_, err := io.Copy(f.pipe, f.stdin)
				f.pipe.CloseWithError(err)
				return
			}
			f.pipe.Close()
		}()
	}
	return len(b), nil
}

// stop ends the command because of err; f.mu is held.
func (f *sudoFeeder) stop(err error) {
	f.failed = err
	f.cancel()
	f.pipe.CloseWithError(err)
}

// finish unblocks the stdin pipe after the command ended.
func (f *sudoFeeder) finish() { f.pipe.CloseWithError(io.ErrClosedPipe) }

// failure returns why f stopped the command, if it did.
func (f *sudoFeeder) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// stderr returns what the command and sudo wrote, without the prompts, and
// the number of bytes of the command's stderr dropped by max_output.
func (f *sudoFeeder) stderr() ([]byte, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := bytes.ReplaceAll(f.before.Bytes(), f.prompt, nil)
	return append(out, f.after.Bytes()...), f.after.Dropped()
}

func randomToken() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("internal error: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

func short(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
