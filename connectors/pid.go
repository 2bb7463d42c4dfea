package connectors

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Remote connectors (SSH, Docker exec) cannot signal the process group of a
// command directly. They run it as WithPID(script): the shell prints its
// pid, which is also its process group when the server starts it as a
// session leader, on the first line of stdout, then execs the script. A
// PIDWriter takes that line off stdout, and KillScript(pid), run on a second
// channel, stops the group.

// WithPID wraps script so that its pid comes first on stdout.
func WithPID(script string) string {
	return "exec sh -c " + Quote("echo $$ && exec sh -c "+Quote(script))
}

// KillScript returns a script that sends SIGTERM to the process group (and
// process) pid, waits up to half a second and then sends SIGKILL.
func KillScript(pid int) string {
	// No "--": dash's kill takes "-PID" after a signal, but not "--".
	return fmt.Sprintf("kill -TERM -%[1]d %[1]d 2>/dev/null; i=0; while [ $i -lt 5 ] && kill -0 -%[1]d 2>/dev/null; do sleep 0.1; i=$((i+1)); done; kill -KILL -%[1]d 2>/dev/null; true", pid)
}

// PIDWriter passes stdout on to w after taking off its first line, the pid
// printed by WithPID.
type PIDWriter struct {
	w     io.Writer
	mu    sync.Mutex
	line  []byte
	pid   int
	seen  bool
	ready chan struct{}
}

// NewPIDWriter returns a PIDWriter writing to w.
func NewPIDWriter(w io.Writer) *PIDWriter { return &PIDWriter{w: w, ready: make(chan struct{})} }

func (p *PIDWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	if !p.seen {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			p.mu.Unlock()
			return len(b), nil
		}
		p.line = append(p.line, b[:i]...)
		p.pid, _ = strconv.Atoi(string(p.line))
		p.seen = true
		close(p.ready)
		p.mu.Unlock()
		if _, err := p.w.Write(b[i+1:]); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	p.mu.Unlock()
	return p.w.Write(b)
}

// PID returns the pid once it has arrived, waiting at most wait.
func (p *PIDWriter) PID(wait time.Duration) (int, bool) {
	select {
	case <-p.ready:
	case <-time.After(wait):
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid, p.pid > 1
}
