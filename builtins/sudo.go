package builtins

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/star-deploy/star-deploy/connectors"
)

// errWrongSudoPassword is returned when sudo asks for the password again.
var errWrongSudoPassword = errors.New("sudo rejected the password (one attempt was made; check sudo_password or --sudo-password)")

// exec renders script with ctl and runs it with stdin. With a sudo
// password, sudo runs with -S behind a random prompt: the password is
// written to sudo's stdin when the prompt appears on stderr, the command's
// own stdin follows once the command has started, and the prompt never
// reaches the result. A second prompt means a wrong password: the command
// is stopped at once. The password never appears in argv, the environment,
// output or errors.
func (h *Host) exec(ctx context.Context, script string, ctl Control, stdin io.Reader) (connectors.Result, error) {
	return h.run1(ctx, script, ctl, connectors.Command{Stdin: stdin, PTY: ctl.GetPTY})
}

// execStream is exec with standard output streamed to stdout instead of
// kept in the result.
func (h *Host) execStream(ctx context.Context, script string, ctl Control, stdout io.Writer) (connectors.Result, error) {
	return h.run1(ctx, script, ctl, connectors.Command{Stdout: stdout, StreamOnly: true, PTY: ctl.GetPTY})
}

// run1 renders script into cmd and runs it, feeding a sudo password if any.
func (h *Host) run1(ctx context.Context, script string, ctl Control, cmd connectors.Command) (connectors.Result, error) {
	stdin := cmd.Stdin
	w := ctl.Wrap()
	if !w.Sudo || ctl.SudoPassword == "" {
		rendered, err := connectors.Render(script, w)
		if err != nil {
			return connectors.Result{}, err
		}
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
	cmd.Script, cmd.Stdin, cmd.Stderr = rendered, pr, f
	res, err := h.Conn.Run(ctx, cmd)
	f.finish()
	res.Stderr = f.stderr()
	if f.wrong() {
		return res, errWrongSudoPassword
	}
	return res, err
}

// sudoFeeder watches stderr for the sudo prompt and the ready line.
type sudoFeeder struct {
	prompt, ready []byte
	password      string
	stdin         io.Reader
	pipe          *io.PipeWriter
	cancel        context.CancelFunc

	mu      sync.Mutex
	before  bytes.Buffer // stderr until the ready line
	after   bytes.Buffer // stderr after it
	started bool
	asked   int
	bad     bool
}

func (f *sudoFeeder) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return f.after.Write(b)
	}
	f.before.Write(b)
	if n := bytes.Count(f.before.Bytes(), f.prompt) - bytes.Count(f.before.Bytes(), f.ready); n > f.asked {
		f.asked = n
		if n == 1 {
			go func() { io.WriteString(f.pipe, f.password+"\n") }()
		} else {
			f.bad = true
			f.cancel()
			f.pipe.CloseWithError(errWrongSudoPassword)
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

// finish unblocks the stdin pipe after the command ended.
func (f *sudoFeeder) finish() { f.pipe.CloseWithError(io.ErrClosedPipe) }

func (f *sudoFeeder) wrong() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bad
}

// stderr returns what the command and sudo wrote, without the prompts.
func (f *sudoFeeder) stderr() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := bytes.ReplaceAll(f.before.Bytes(), f.prompt, nil)
	return append(out, f.after.Bytes()...)
}

func randomToken() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("internal error: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}
