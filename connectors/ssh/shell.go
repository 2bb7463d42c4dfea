package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/star-deploy/star-deploy/connectors"
)

// The persistent shell path: see the package documentation for the
// protocol and what falls back to a session per command.

// maxShells bounds the persistent shells of one connection: one session
// below maxSessions, so that a PTY command or a fallback still gets a
// session of its own beside them, and a kill one more.
const maxShells = maxSessions - 1

// shellStartTimeout bounds how long a new shell may take to answer its
// probe; one that does not is closed and the command runs on a session of
// its own.
const shellStartTimeout = 10 * time.Second

// stdinChunk is how many bytes of a command's input one line of shell
// code carries.
const stdinChunk = 8 << 10

// shellState says whether the host can run persistent shells.
type shellState int

const (
	shellUnknown     shellState = iota // not probed yet
	shellSupported                     // the probe passed
	shellUnsupported                   // the probe failed: sessions per command from now on
)

// shellPool holds a connection's idle persistent shells.
type shellPool struct {
	mu     sync.Mutex
	state  shellState
	why    string   // why the host's shell cannot host commands, once known
	noPerl bool     // the host has no perl, or the Perl server failed to start: sh from now on
	idle   []*shell // ready for a command
	live   int      // shells started and not retired
	starts sync.Mutex
}

// ShellMode reports how the connection runs commands: "persistent (perl)"
// or "persistent (sh)" once a persistent shell answered, with the server
// new shells run, "session" when ssh_persistent_shell is false
// or the host's shell could not host them (with the reason), "unknown"
// before the first command.
func (c *Conn) ShellMode() string {
	if c.settings.SessionPerCommand {
		return "session (ssh_persistent_shell=false)"
	}
	p := &c.shells
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state {
	case shellSupported:
		if c.settings.ShellPerl && !p.noPerl {
			return "persistent (perl)"
		}
		return "persistent (sh)"
	case shellUnsupported:
		return "session (" + p.why + ")"
	}
	return "unknown"
}

// shell is one persistent `sh` on the host, reading shell code from its
// standard input, or the Perl server it exec'd, reading messages. It runs
// one command at a time.
type shell struct {
	c     *Conn
	sess  *ssh.Session
	stdin io.WriteCloser
	pid   int  // the shell's own pid on the host
	perl  bool // the Perl server, not sh, reads the commands

	wmu sync.Mutex // serialises writes of shell code

	mu      sync.Mutex
	cur     *shellCmd // the command in flight, nil between commands
	dead    bool
	deadErr error
	ended   chan struct{} // closed when an output stream ended
	closed  chan struct{} // closed when the host closed the session: it no longer counts against MaxSessions
	retired bool
}

// shellCmd is one command in flight on a shell.
type shellCmd struct {
	tok            []byte
	stdout, stderr io.Writer
	out, errs      frameScanner

	mu        sync.Mutex
	pid       int
	pidKnown  chan struct{}
	exit      int
	tainted   bool // a process of its group outlived it
	setupFail bool // the shell could not set it up: nothing ran
	outDone   bool
	errDone   bool
	err       error // the shell ended or broke the protocol
	done      chan struct{}
	// onRecord, when set, takes every stdout record (the boot probe's
	// answer) in place of the command records.
	onRecord func([]byte)
	// acks, for a streamed put, takes a value for each "a" record: the
	// server wrote one input message to the file.
	acks chan struct{}

	// Standard input: stopped once the command ended, so that no chunk
	// is written after the next command's code.
	inMu      sync.Mutex
	inStopped bool
	inEOF     bool
}

// probeTools are the programs the probe looks for; a test adds a missing
// one to see the fallback.
var probeTools = []string{"setsid", "mkfifo"}

// newToken returns a command's random token; a variable for tests.
var newToken = func() []byte {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("internal error: crypto/rand: %v", err))
	}
	return []byte(hex.EncodeToString(b[:]))
}

// bootCode is what a new shell runs first. SIGPIPE is ignored by the shell
// itself (a chunk of input written to a command that is gone fails instead
// of killing it) and restored for every command; on exit (end of its input
// when the connection or session closes, SIGHUP, SIGTERM) it stops the
// command in flight and removes its FIFO directory. The probe answers
// "ok PID" when setsid and mkfifo exist. With perl true it execs the Perl
// server instead where perl is found (perlBoot), which answers "perl PID".
func bootCode(tok string, perl, spares bool) string {
	var probe []string
	for _, t := range probeTools {
		probe = append(probe, "command -v "+t+" >/dev/null 2>&1")
	}
	sh := `trap '' PIPE; w=; d=; ` +
		`trap 'trap "" TERM; [ -z "$w" ] || kill -TERM "$w" 2>/dev/null; [ -z "$d" ] || rm -rf "$d"' EXIT; ` +
		`trap 'exit 129' HUP; trap 'exit 143' TERM` + "\n" +
		`if ` + strings.Join(probe, " && ") + `; then printf '` + tok + `ok %d\n' $$; ` +
		`else printf '` + tok + `no\n'; fi` + "\n"
	if perl {
		return perlBoot(tok, sh, spares)
	}
	return sh
}

// commandCode is what the shell reads to run script as one command: the
// Perl server's message (perlCommand), or the sh server's code: a
// background wrapper (a subshell, so no exec and nothing in the process
// list but the script itself) starts `setsid sh -c script`, its own
// session and process group, prints "TOKs PID", waits, then prints
// "TOKe STATUS TAINT" on stdout and TOK on stderr, TAINT being 1 when a
// process of the group is still alive. The main shell goes on reading:
// input chunks for the command, or the next command once this one ended
// (the leading wait reaps the previous wrapper). A TERM to the wrapper
// (the shell's exit) stops the group.
func (sh *shell) commandCode(tok, script string, stdin bool) []byte {
	if sh.perl {
		return perlCommand(tok, script, stdin)
	}
	return []byte(shCommandCode(tok, script, stdin))
}

func shCommandCode(tok, script string, stdin bool) string {
	t := tok
	in := "</dev/null"
	if stdin {
		in = `<"$d/i"`
	}
	wrapper := `( trap 'kill -TERM -$p $p 2>/dev/null; sleep 1; kill -KILL -$p 2>/dev/null; exit 143' TERM; trap - PIPE; ` +
		`setsid sh -c ` + connectors.Quote(script) + ` ` + in + ` & p=$!; printf '` + t + `s%d\n' $p; ` +
		`wait $p 2>/dev/null; s=$?; kill -0 -$p 2>/dev/null && l=1 || l=0; printf '` + t + `e%d %d\n' $s $l; printf ` + t + ` >&2 )`
	head := `[ -z "$w" ] || wait "$w"; w=; `
	if !stdin {
		return head + wrapper + " & w=$!\n"
	}
	// The FIFO's two opens meet: the shell's for writing blocks until the
	// command's for reading.
	return head + `if { [ -n "$d" ] || d=$(mktemp -d); } 2>/dev/null && [ -n "$d" ] && mkfifo "$d/i" 2>/dev/null; then ` +
		wrapper + ` & w=$!; exec 3>"$d/i"; rm -f "$d/i"; else printf '` + t + `f\n'; printf ` + t + ` >&2; fi` + "\n"
}

// stdinCode is what the shell reads to write p to the command's input:
// the Perl server's message, or for sh one printf (a builtin: the bytes
// never appear in a process list) with every byte that is not plain text
// as an octal escape.
func (sh *shell) stdinCode(p []byte) []byte {
	if sh.perl {
		return perlInput(p)
	}
	return shStdinCode(p)
}

func shStdinCode(p []byte) []byte {
	b := make([]byte, 0, len(p)*2+32)
	b = append(b, "printf '"...)
	for i, c := range p {
		switch {
		case c == '%':
			b = append(b, "%%"...)
		case c == '\\':
			b = append(b, `\\`...)
		case c == '-' && i == 0, c == '\'', c < 0x20 || c >= 0x7f:
			b = append(b, '\\', '0'+c>>6, '0'+(c>>3)&7, '0'+c&7)
		default:
			b = append(b, c)
		}
	}
	return append(b, "' >&3 2>/dev/null\n"...)
}

// eofCode is what the shell reads to end the command's input.
func (sh *shell) eofCode() []byte {
	if sh.perl {
		return []byte("e\n")
	}
	return []byte("[ -z \"$d\" ] || exec 3>&-\n")
}

// frameScanner finds a command's records in one output stream and passes
// the bytes around them on. It scans bytes, not lines: the token may
// follow output without a trailing newline, and a command cannot forge a
// record without knowing its token.
type frameScanner struct {
	carry []byte // a possible start of the token, or a record not yet ended by '\n'
	ended bool
}

// feed scans p for tok. Bytes of output go to data; each record (the bytes
// between the token and '\n', or none when line is false) goes to rec,
// which returns true when it ended the stream. Bytes after the end are
// dropped. A record longer than 64 bytes is a protocol error.
func (f *frameScanner) feed(p, tok []byte, line bool, data func([]byte), rec func([]byte) bool) error {
	if f.ended {
		return nil
	}
	buf := p
	if len(f.carry) > 0 {
		buf = append(f.carry, p...)
		f.carry = nil
	}
	for len(buf) > 0 {
		i := bytes.Index(buf, tok)
		if i < 0 {
			k := partialSuffix(buf, tok)
			if len(buf)-k > 0 {
				data(buf[:len(buf)-k])
			}
			f.carry = append([]byte(nil), buf[len(buf)-k:]...)
			return nil
		}
		if i > 0 {
			data(buf[:i])
		}
		rest := buf[i+len(tok):]
		var r []byte
		if line {
			j := bytes.IndexByte(rest, '\n')
			if j < 0 {
				if len(rest) > 64 {
					return fmt.Errorf("malformed record %q", rest[:64])
				}
				f.carry = append([]byte(nil), buf[i:]...)
				return nil
			}
			r, rest = rest[:j], rest[j+1:]
		}
		if rec(r) {
			f.ended = true
			return nil
		}
		buf = rest
	}
	return nil
}

// partialSuffix returns the length of the longest suffix of b that is a
// proper prefix of tok.
func partialSuffix(b, tok []byte) int {
	for k := min(len(tok)-1, len(b)); k > 0; k-- {
		if bytes.HasSuffix(b, tok[:k]) {
			return k
		}
	}
	return 0
}

// usesShell reports whether cmd goes to a persistent shell.
func (c *Conn) usesShell(cmd connectors.Command) bool {
	if c.settings.SessionPerCommand || cmd.PTY {
		return false
	}
	c.shells.mu.Lock()
	defer c.shells.mu.Unlock()
	return c.shells.state != shellUnsupported
}

// getShell returns an idle shell or starts a new one; nil when none can be
// had (the pool is full, the host cannot host one, or starting failed):
// the command then takes a session of its own.
func (c *Conn) getShell(ctx context.Context) *shell {
	p := &c.shells
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		sh := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return sh
	}
	if p.live >= maxShells || p.state == shellUnsupported {
		p.mu.Unlock()
		return nil
	}
	p.live++
	first := p.state == shellUnknown
	p.mu.Unlock()
	if first {
		// The first start probes the host; the others wait for its answer.
		p.starts.Lock()
		defer p.starts.Unlock()
		p.mu.Lock()
		no := p.state == shellUnsupported
		if no {
			p.live--
		}
		p.mu.Unlock()
		if no {
			return nil
		}
	}
	sh, err := c.startShell(ctx)
	var np perlError
	if errors.As(err, &np) {
		p.mu.Lock()
		p.noPerl = true
		p.mu.Unlock()
		sh, err = c.startShell(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.live--
		var no unsupportedError
		if errors.As(err, &no) && p.state == shellUnknown {
			p.state, p.why = shellUnsupported, no.why
		}
		return nil
	}
	p.state = shellSupported
	if !sh.perl {
		// No perl there: the next shells need not offer it.
		p.noPerl = true
	}
	sh.mu.Lock()
	dead := sh.dead
	sh.mu.Unlock()
	if dead {
		p.live--
		return nil
	}
	sh.retired = false
	return sh
}

// unsupportedError is a probe's answer that the host cannot host
// persistent shells.
type unsupportedError struct{ why string }

func (e unsupportedError) Error() string { return e.why }

// perlError is a Perl server that ended before it answered: the next
// shell runs sh.
type perlError struct{ err error }

func (e perlError) Error() string { return fmt.Sprintf("the Perl server ended at start: %v", e.err) }

// usePerl reports whether a new shell should try the Perl server.
func (c *Conn) usePerl() bool {
	c.shells.mu.Lock()
	defer c.shells.mu.Unlock()
	return c.settings.ShellPerl && !c.shells.noPerl
}

// startShell opens a session running `sh` and runs the boot code, which
// starts the Perl server when ssh_shell_perl is on and perl did not fail
// on this connection before.
func (c *Conn) startShell(ctx context.Context) (*shell, error) {
	sess, err := c.newSession(ctx)
	if err != nil {
		return nil, err
	}
	stdin, err1 := sess.StdinPipe()
	stdout, err2 := sess.StdoutPipe()
	stderr, err3 := sess.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		sess.Close()
		return nil, err
	}
	if c.forward != "" {
		c.requestForwarding(sess)
	}
	if err := sess.Start("exec sh"); err != nil {
		sess.Close()
		return nil, err
	}
	// retired until getShell counts it in: a failed start is not counted.
	perl := c.usePerl()
	sh := &shell{c: c, sess: sess, stdin: stdin, ended: make(chan struct{}), closed: make(chan struct{}), retired: true}
	go func() {
		sess.Wait()
		close(sh.closed)
	}()
	tok := newToken()
	// The boot answer is read like a command's records: whatever a
	// login script prints before it is dropped.
	answer := make(chan string, 1)
	boot := &shellCmd{tok: tok, stdout: io.Discard, stderr: io.Discard, pidKnown: make(chan struct{}), done: make(chan struct{}),
		errDone: true, onRecord: func(r []byte) { answer <- string(r) }}
	sh.cur = boot
	go sh.read(stdout, false)
	go sh.read(stderr, true)
	go func() {
		<-sh.ended
		sess.Close()
	}()
	if _, err := io.WriteString(stdin, bootCode(string(tok), perl, c.settings.ShellSpares)); err != nil {
		sess.Close()
		return nil, err
	}
	timer := time.NewTimer(shellStartTimeout)
	defer timer.Stop()
	select {
	case a := <-answer:
		pid, ok := strings.CutPrefix(a, "ok ")
		if !ok && perl {
			pid, sh.perl = strings.CutPrefix(a, "perl ")
			ok = sh.perl
		}
		if ok {
			if sh.pid, err = strconv.Atoi(pid); err == nil {
				sh.mu.Lock()
				sh.cur = nil
				sh.mu.Unlock()
				return sh, nil
			}
		}
		sh.retire()
		return nil, unsupportedError{"the host's shell has no setsid or mkfifo"}
	case <-boot.done:
		sh.retire()
		if perl {
			return nil, perlError{boot.err}
		}
		return nil, unsupportedError{fmt.Sprintf("sh ended at start: %v", boot.err)}
	case <-timer.C:
		sh.retire()
		return nil, fmt.Errorf("no answer within %s", shellStartTimeout)
	case <-ctx.Done():
		sh.retire()
		return nil, ctx.Err()
	}
}

// read passes one output stream of the shell to the command in flight.
// When the stream ends, the shell is dead and so is its command.
func (sh *shell) read(r io.Reader, isErr bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			sh.mu.Lock()
			cmd := sh.cur
			sh.mu.Unlock()
			if cmd != nil {
				if perr := cmd.feed(buf[:n], isErr); perr != nil {
					sh.die(perr)
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				err = errors.New("the shell ended")
			}
			sh.die(err)
			return
		}
	}
}

// feed scans output of the command's stdout or stderr.
func (cmd *shellCmd) feed(p []byte, isErr bool) error {
	if isErr {
		return cmd.errs.feed(p, cmd.tok, false, func(b []byte) { cmd.stderr.Write(b) }, func([]byte) bool {
			cmd.finish(func() { cmd.errDone = true })
			return true
		})
	}
	return cmd.out.feed(p, cmd.tok, true, func(b []byte) { cmd.stdout.Write(b) }, func(r []byte) bool {
		if cmd.onRecord != nil {
			cmd.onRecord(r)
			return true
		}
		if len(r) == 0 {
			return false
		}
		switch r[0] {
		case 's':
			if pid, err := strconv.Atoi(string(r[1:])); err == nil {
				cmd.mu.Lock()
				if cmd.pid == 0 {
					cmd.pid = pid
					close(cmd.pidKnown)
				}
				cmd.mu.Unlock()
			}
			return false
		case 'e':
			status, taint, _ := strings.Cut(string(r[1:]), " ")
			code, err := strconv.Atoi(status)
			if err != nil {
				code = -1
			}
			cmd.finish(func() { cmd.exit, cmd.tainted, cmd.outDone = code, taint != "0", true })
			return true
		case 'f':
			cmd.finish(func() { cmd.setupFail, cmd.outDone = true, true })
			return true
		case 'a':
			if cmd.acks != nil && len(r) == 1 {
				cmd.acks <- struct{}{}
			}
			return false
		}
		return false
	})
}

// finish applies set under cmd.mu and closes done once both streams ended
// or the command failed.
func (cmd *shellCmd) finish(set func()) {
	cmd.mu.Lock()
	defer cmd.mu.Unlock()
	select {
	case <-cmd.done:
		return
	default:
	}
	set()
	if cmd.err != nil || cmd.outDone && cmd.errDone {
		close(cmd.done)
	}
}

// die marks the shell dead: its command in flight fails with err.
func (sh *shell) die(err error) {
	sh.mu.Lock()
	first := !sh.dead
	if first {
		sh.dead, sh.deadErr = true, err
		close(sh.ended)
	}
	cmd := sh.cur
	sh.mu.Unlock()
	if cmd != nil {
		cmd.finish(func() {
			if cmd.err == nil {
				cmd.err = err
			}
		})
	}
	if first {
		p := &sh.c.shells
		p.mu.Lock()
		if !sh.retired {
			sh.retired = true
			p.live--
		}
		for i, idle := range p.idle {
			if idle == sh {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
	}
}

// retireAndWait retires the shell and waits, within shellCloseGrace, for
// the host to close its session, so that a session opened next is not
// refused under sshd's MaxSessions.
func (sh *shell) retireAndWait() {
	sh.retire()
	select {
	case <-sh.closed:
	case <-time.After(shellCloseGrace):
	}
}

// retire closes the shell: its stdin ends, so sh exits and stops what runs.
func (sh *shell) retire() {
	sh.c.shells.mu.Lock()
	if !sh.retired {
		sh.retired = true
		sh.c.shells.live--
	}
	sh.c.shells.mu.Unlock()
	sh.stdin.Close()
	sh.sess.Close()
}

// release returns the shell to the pool after a command.
func (sh *shell) release() {
	sh.mu.Lock()
	sh.cur = nil
	dead := sh.dead
	sh.mu.Unlock()
	if dead {
		return
	}
	p := &sh.c.shells
	p.mu.Lock()
	p.idle = append(p.idle, sh)
	p.mu.Unlock()
}

// write sends shell code to the shell.
func (sh *shell) write(code []byte) error {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	_, err := sh.stdin.Write(code)
	return err
}

// runShell runs cmd on a persistent shell. ran is false when nothing ran
// and the command should take a session of its own; then the session slot
// is still held. Otherwise runShell (or the cleanup it starts) releases it.
func (c *Conn) runShell(ctx context.Context, cmd connectors.Command, start time.Time) (res connectors.Result, err error, ran bool) {
	sh := c.getShell(ctx)
	if sh == nil {
		return res, nil, false
	}
	out := connectors.NewOutput(cmd)
	g := &gate{}
	sc := &shellCmd{tok: newToken(), stdout: g.writer(out.Stdout()), stderr: g.writer(out.Stderr()), pidKnown: make(chan struct{}), done: make(chan struct{}),
		inEOF: cmd.Stdin == nil}
	if cmd.Stdin != nil && sh.perl {
		sc.acks = make(chan struct{}, putWindow/putChunk)
	}
	sh.mu.Lock()
	sh.cur = sc
	dead := sh.dead
	sh.mu.Unlock()
	if dead {
		return res, nil, false
	}
	if err := sh.write(sh.commandCode(string(sc.tok), cmd.Script, cmd.Stdin != nil)); err != nil {
		sh.retire()
		return res, nil, false
	}
	if cmd.Stdin != nil {
		go sc.copyStdin(ctx, sh, cmd.Stdin)
	}
	select {
	case <-sc.done:
	case <-ctx.Done():
		g.close()
		c.cleanUpShell(sh, sc)
		res = connectors.Result{ExitCode: -1, Duration: time.Since(start)}
		out.Fill(&res)
		return res, fmt.Errorf("run on %s: %w", c.target.Name, ctx.Err()), true
	}
	if sc.setupFail {
		sh.release()
		return connectors.Result{}, nil, false
	}
	if sc.err != nil {
		sh.retire()
		sc.mu.Lock()
		started := sc.pid != 0
		sc.mu.Unlock()
		if !started {
			// It never started: a session of its own will do.
			return connectors.Result{}, nil, false
		}
		<-c.sessions
		return connectors.Result{}, c.explain(fmt.Errorf("run on %s: persistent shell: %w", c.target.Name, sc.err)), true
	}
	defer func() { <-c.sessions }()
	res = connectors.Result{ExitCode: sc.exit, Duration: time.Since(start)}
	out.Fill(&res)
	if !sc.stopStdin(sh) || sc.tainted {
		// A process of the command still holds its input or output:
		// the shell's streams are no longer the next command's alone.
		sh.retireAndWait()
	} else {
		sh.release()
	}
	return res, nil, true
}

// copyStdin writes r to the command's input as shell code, then closes it
// (end of file), on the Perl server with at most putWindow bytes that it
// has not acknowledged (see putStreamed). It starts once the command has started, so that a command
// that falls back to a session of its own (no FIFO) finds all of its
// input. A cancel stops it without closing: the kill ends the command
// instead, as connectors.CopyStdin does.
func (sc *shellCmd) copyStdin(ctx context.Context, sh *shell, r io.Reader) {
	select {
	case <-sc.pidKnown:
	case <-sc.done:
		return
	case <-ctx.Done():
		return
	}
	chunk := stdinChunk
	if sc.acks != nil {
		chunk = putChunk
	}
	buf := make([]byte, chunk)
	r = connectors.ContextReader(ctx, r)
	for sent := 0; ; {
		n, err := r.Read(buf)
		if n > 0 {
			// The Perl server acknowledges each chunk: at most a window
			// of them is in flight, as for a streamed put.
			if sent++; sc.acks != nil && sent > cap(sc.acks) {
				select {
				case <-sc.acks:
				case <-sc.done:
					return
				case <-ctx.Done():
					return
				}
			}
			sc.inMu.Lock()
			if sc.inStopped {
				sc.inMu.Unlock()
				return
			}
			werr := sh.write(sh.stdinCode(buf[:n]))
			sc.inMu.Unlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			sc.inMu.Lock()
			if !sc.inStopped && !sc.inEOF {
				sc.inEOF = true
				sh.write(sh.eofCode())
			}
			sc.inMu.Unlock()
			return
		}
	}
}

// stdinGrace is how long a finished command's last chunk of input may take
// to be written: a process still holding its input without reading it
// blocks the shell, which is then retired.
const stdinGrace = 2 * time.Second

// stopStdin stops the copy of input once the command ended and closes the
// shell's end of the FIFO. It reports false when the copy is stuck.
func (sc *shellCmd) stopStdin(sh *shell) bool {
	locked := make(chan struct{})
	go func() {
		sc.inMu.Lock()
		close(locked)
	}()
	select {
	case <-locked:
	case <-time.After(stdinGrace):
		go func() { <-locked; sc.inStopped = true; sc.inMu.Unlock() }()
		return false
	}
	defer sc.inMu.Unlock()
	sc.inStopped = true
	if sc.inEOF {
		return true
	}
	sc.inEOF = true
	return sh.write(sh.eofCode()) == nil
}

// cleanUpShell stops a cancelled command in the background: its process
// group is killed from a new session (the shell may be blocked writing its
// input), then the shell is retired, whose exit stops the group as well.
func (c *Conn) cleanUpShell(sh *shell, sc *shellCmd) {
	c.cleanups.Add(1)
	go func() {
		defer c.cleanups.Done()
		defer func() { <-c.sessions }()
		defer sh.retireAndWait()
		deadline := time.NewTimer(killTimeout)
		defer deadline.Stop()
		c.kill(func(wait time.Duration) (int, bool) {
			select {
			case <-sc.pidKnown:
			case <-sc.done:
			case <-time.After(wait):
			}
			sc.mu.Lock()
			defer sc.mu.Unlock()
			return sc.pid, sc.pid > 1
		}, deadline.C)
		select {
		case <-sc.done:
		case <-deadline.C:
		}
	}()
}

// shellCloseGrace bounds how long Close waits for idle shells to exit.
const shellCloseGrace = time.Second

// closeShells ends the idle shells before the connection closes: each
// reads the end of its input and exits, and sshd reaps it, within
// shellCloseGrace all told; a host that takes longer has its connection
// closed under them, which ends them as well.
func (c *Conn) closeShells() {
	p := &c.shells
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	if len(idle) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, sh := range idle {
		sh.stdin.Close()
		wg.Go(func() { <-sh.closed })
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(shellCloseGrace):
	}
	for _, sh := range idle {
		sh.retire()
	}
}

// makeRoom retires an idle shell, if there is one, before a command takes
// a session of its own, and waits (within shellCloseGrace) for the host to
// end it: idle shells and sessions per command together stay within
// maxSessions, beside SFTP and a kill, whatever mix of commands runs.
func (c *Conn) makeRoom() {
	p := &c.shells
	p.mu.Lock()
	n := len(p.idle)
	if n == 0 {
		p.mu.Unlock()
		return
	}
	sh := p.idle[n-1]
	p.idle = p.idle[:n-1]
	p.mu.Unlock()
	sh.retireAndWait()
}

// newSession opens a session, trying again for about a second when the
// host refuses it with "open failed", as sshd does past MaxSessions: a
// session closed a moment ago may not be freed there yet. It returns when
// ctx ends or the connection does, whether or not the host has answered:
// x/crypto/ssh waits for that answer with no deadline, and forever when
// the connection ends as the request goes out. A session that comes after
// that is closed.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		sess *ssh.Session
		err  error
	}
	ch := make(chan opened, 1)
	go func() {
		sess, err := c.openSession()
		ch <- opened{sess, err}
	}()
	var err error
	select {
	case o := <-ch:
		return o.sess, o.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.ended():
		err = errors.New("the connection ended while a session was being opened")
	}
	go func() {
		if o := <-ch; o.sess != nil {
			o.sess.Close()
		}
	}()
	return nil, err
}

// ended is closed once the connection has ended.
func (c *Conn) ended() <-chan struct{} {
	c.endedOnce.Do(func() {
		c.endedCh = make(chan struct{})
		go func() {
			c.client.Wait()
			close(c.endedCh)
		}()
	})
	return c.endedCh
}

// openSession is newSession's work.
func (c *Conn) openSession() (*ssh.Session, error) {
	delay := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		sess, err := c.client.NewSession()
		var refused *ssh.OpenChannelError
		if err == nil || attempt == 8 || !errors.As(err, &refused) || refused.Reason != ssh.ConnectionFailed {
			return sess, err
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}
