package builtins

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/star-deploy/star-deploy/connectors"
)

// Trace says how much of its traffic with a host a run reports, beyond
// operations: the CLI's -vv and -vvv.
type Trace int

const (
	TraceOff      Trace = iota // operations only
	TraceCommands              // also a command event for every command sent, probes included
	TraceOutput                // also an output event for every line a command prints
)

// redacted stands for a secret in traced text.
const redacted = "[secret]"

// traceCommand emits the command event of script, rendered as the host
// gets it, with secrets replaced (see redactor).
func (h *Host) traceCommand(rendered string, ctl Control) {
	if h.Trace < TraceCommands {
		return
	}
	h.emit(Event{Kind: KindCommand, Message: h.redactor(ctl).Replace(rendered)})
}

// redactor replaces the values of the host's secret data (passwords,
// passphrases), the sudo password and the values of env= variables whose
// names say they are secrets (MYSQL_PWD, PGPASSWORD, API_TOKEN), as they
// are and shell-quoted. Made once per command: -vvv applies it to every
// line the command prints.
func (h *Host) redactor(ctl Control) *strings.Replacer {
	secrets := append(h.secretValues(), ctl.SudoPassword)
	for k, v := range ctl.Env {
		if secretEnv(k) {
			secrets = append(secrets, v)
		}
	}
	if r := newRedactor(secrets); r != nil {
		return r
	}
	return strings.NewReplacer()
}

// secretValues returns the values of the host's secret data keys.
func (h *Host) secretValues() []string {
	var secrets []string
	secret := h.Secret
	if secret == nil {
		secret = connectors.IsSecretKey
	}
	for k, v := range h.Data {
		if str, ok := v.(string); ok && secret(k) {
			secrets = append(secrets, str)
		}
	}
	return secrets
}

// newRedactor returns a Replacer of each non-empty secret, as it is and
// shell-quoted, by redacted; nil when there is none. Longest first, so
// that a secret containing another goes whole.
func newRedactor(secrets []string) *strings.Replacer {
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	for _, v := range secrets {
		if v != "" {
			pairs = append(pairs, connectors.Quote(v), redacted, v, redacted)
		}
	}
	if pairs == nil {
		return nil
	}
	return strings.NewReplacer(pairs...)
}

// Redact returns s with the host's secrets replaced by "[secret]": the
// values of its secret data keys and its sudo password, as they are and
// shell-quoted. Every event the host sends and every error the runtime
// reports for it pass through here, so that a secret a script put in a
// command line, a file's content (--diff), fail() or print() shows
// nowhere; only the script's own values (a command's result) keep it.
func (h *Host) Redact(s string) string {
	if r := h.hostRedactor(); r != nil {
		return r.Replace(s)
	}
	return s
}

// hostRedactor is Redact's Replacer, nil when the host has no secret. It
// is made again only when the sudo password changed (the runtime sets
// Defaults once the host connects).
func (h *Host) hostRedactor() *strings.Replacer {
	h.redact.mu.Lock()
	defer h.redact.mu.Unlock()
	if !h.redact.made || h.redact.sudo != h.Defaults.SudoPassword {
		h.redact.r = newRedactor(append(h.secretValues(), h.Defaults.SudoPassword))
		h.redact.made, h.redact.sudo = true, h.Defaults.SudoPassword
	}
	return h.redact.r
}

// secretEnv reports whether an environment variable's name says it holds a
// secret.
func secretEnv(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "pwd", "secret", "token", "passphrase", "key"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// traceOutput returns cmd with its live writers extended to emit an output
// event per line, when the host traces output. Streamed standard output
// (the content of a file get reads) is not traced, nor standard error
// when a sudo password is fed (the feeder owns it).
func (h *Host) traceOutput(cmd connectors.Command, ctl Control) (connectors.Command, func()) {
	if h.Trace < TraceOutput {
		return cmd, func() {}
	}
	red := h.redactor(ctl)
	var flush []func()
	if !cmd.StreamOnly {
		w := &lineEvents{h: h, redact: red, stream: "stdout"}
		cmd.Stdout, flush = tee(cmd.Stdout, w), append(flush, w.flush)
	}
	if cmd.Stderr == nil || ctl.SudoPassword == "" {
		w := &lineEvents{h: h, redact: red, stream: "stderr"}
		cmd.Stderr, flush = tee(cmd.Stderr, w), append(flush, w.flush)
	}
	return cmd, func() {
		for _, f := range flush {
			f()
		}
	}
}

func tee(w io.Writer, also io.Writer) io.Writer {
	if w == nil {
		return also
	}
	return io.MultiWriter(w, also)
}

// maxTraceLine bounds one output event: a longer line is cut into pieces
// of this size, so that memory stays bounded whatever a host prints.
const maxTraceLine = 4096

// lineEvents emits an output event for each line written to it.
type lineEvents struct {
	h      *Host
	redact *strings.Replacer
	stream string

	mu      sync.Mutex
	partial []byte
}

func (l *lineEvents) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		end := bytes.IndexByte(b, '\n')
		newline := end >= 0
		if !newline {
			end = len(b)
		}
		if room := maxTraceLine - len(l.partial); end > room {
			end, newline = room, false
		}
		l.partial = append(l.partial, b[:end]...)
		if newline {
			b = b[end+1:]
		} else {
			b = b[end:]
		}
		if newline || len(l.partial) == maxTraceLine {
			l.emitLocked()
		}
	}
	return n, nil
}

func (l *lineEvents) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.emitLocked()
	}
}

func (l *lineEvents) emitLocked() {
	text := strings.ToValidUTF8(string(l.partial), string(utf8.RuneError))
	l.partial = l.partial[:0]
	l.h.emit(Event{Kind: KindOutput, Stream: l.stream, Message: l.redact.Replace(text)})
}
