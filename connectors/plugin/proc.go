package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proc is one running plugin process and the client end of its protocol.
type proc struct {
	name    string // for messages: `plugin "rest" (/usr/local/bin/star-deploy-connector-rest)`
	cmd     *exec.Cmd
	in      *os.File
	timeout time.Duration // a call other than run unanswered this long: the plugin hangs

	wmu sync.Mutex // one line at a time on in

	mu      sync.Mutex
	next    int64
	pending map[int64]chan message
	outputs map[int64]func(outputParams)
	redact  []string
	killed  string // why star-deploy killed the process, if it did

	stderr tail
	dead   chan struct{} // closed once the process has ended and err is set
	err    error
}

// startProc starts the plugin at path.
func startProc(path, name string, env []string, timeout time.Duration) (*proc, error) {
	p := &proc{name: name, timeout: timeout, pending: map[int64]chan message{}, outputs: map[int64]func(outputParams){}, dead: make(chan struct{})}
	p.cmd = exec.Command(path)
	p.cmd.Env = env
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 2 * time.Second
	setGroup(p.cmd)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd.Stdin = inR
	p.in = inW
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if err := p.cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	inR.Close()
	go p.read(bufio.NewScanner(out))
	return p, nil
}

// read dispatches what the plugin sends until its output ends, then
// records why the process ended.
func (p *proc) read(sc *bufio.Scanner) {
	sc.Buffer(make([]byte, 64<<10), MaxMessage)
	var bad string
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			bad = fmt.Sprintf("it sent a line that is not JSON-RPC: %.100q", sc.Bytes())
			break
		}
		if m.Method == methodOutput && len(m.ID) == 0 {
			var o outputParams
			if json.Unmarshal(m.Params, &o) != nil {
				continue
			}
			id, _ := strconv.ParseInt(string(o.ID), 10, 64)
			p.mu.Lock()
			fn := p.outputs[id]
			p.mu.Unlock()
			if fn != nil {
				fn(o) // in order, before the run's response
			}
			continue
		}
		if m.Method != "" || len(m.ID) == 0 {
			continue // a request or an unknown notification: none in v1
		}
		id, err := strconv.ParseInt(string(m.ID), 10, 64)
		if err != nil {
			continue
		}
		p.mu.Lock()
		ch := p.pending[id]
		delete(p.pending, id)
		p.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
	if err := sc.Err(); err != nil && bad == "" {
		bad = "it sent a line longer than the protocol allows: " + err.Error()
	}
	if bad != "" {
		p.kill(bad)
	}
	werr := p.cmd.Wait()
	p.mu.Lock()
	why := p.killed
	secrets := p.redact
	p.mu.Unlock()
	switch {
	case why != "":
		p.err = fmt.Errorf("%s was stopped: %s", p.name, why)
	case werr != nil:
		p.err = fmt.Errorf("%s exited unexpectedly (%v)", p.name, werr)
	default:
		p.err = fmt.Errorf("%s exited unexpectedly", p.name)
	}
	if last := p.stderr.lastLine(secrets); last != "" {
		p.err = fmt.Errorf("%w; its last message: %s", p.err, last)
	}
	p.in.Close()
	close(p.dead)
}

// kill ends the plugin process and its process group, giving why as the
// reason every pending and later call reports.
func (p *proc) kill(why string) {
	p.mu.Lock()
	if p.killed == "" {
		p.killed = why
	}
	p.mu.Unlock()
	killGroup(p.cmd)
}

// setRedact names secret values that must not appear in what the plugin's
// standard error is quoted as.
func (p *proc) setRedact(values []string) {
	p.mu.Lock()
	p.redact = values
	p.mu.Unlock()
}

// send writes one message; a plugin that does not read it within the call
// timeout is killed.
func (p *proc) send(m message) error {
	b := encode(m)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	select {
	case <-p.dead:
		return p.err
	default:
	}
	p.in.SetWriteDeadline(time.Now().Add(p.timeout))
	if _, err := p.in.Write(b); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.kill(fmt.Sprintf("it did not read its input for %v", p.timeout))
		}
		<-p.dead
		return p.err
	}
	return nil
}

// notify sends a notification.
func (p *proc) notify(method string, params any) error {
	b, _ := json.Marshal(params)
	return p.send(message{Method: method, Params: b})
}

// begin sends a request and returns its id and the channel its response
// arrives on. onOutput, when set, receives the output notifications of
// the request until forget.
func (p *proc) begin(method string, params any, onOutput func(outputParams)) (int64, chan message, error) {
	b, err := json.Marshal(params)
	if err != nil {
		return 0, nil, fmt.Errorf("internal error: %w", err)
	}
	ch := make(chan message, 1)
	p.mu.Lock()
	p.next++
	id := p.next
	p.pending[id] = ch
	if onOutput != nil {
		p.outputs[id] = onOutput
	}
	p.mu.Unlock()
	if err := p.send(message{ID: json.RawMessage(strconv.FormatInt(id, 10)), Method: method, Params: b}); err != nil {
		p.forget(id)
		return 0, nil, err
	}
	return id, ch, nil
}

// forget drops what begin registered for id.
func (p *proc) forget(id int64) {
	p.mu.Lock()
	delete(p.pending, id)
	delete(p.outputs, id)
	p.mu.Unlock()
}

// call sends a request and decodes its result into out (when not nil). A
// plugin that does not answer within the timeout (when timeout > 0) is
// killed. When ctx ends first, call returns its error and drops the
// response.
func (p *proc) call(ctx context.Context, method string, params, out any, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id, ch, err := p.begin(method, params, nil)
	if err != nil {
		return err
	}
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case m := <-ch:
		return decodeResult(m, out)
	case <-p.dead:
		return p.err
	case <-ctx.Done():
		p.forget(id)
		return ctx.Err()
	case <-expire:
		p.kill(fmt.Sprintf("it did not answer %q within %v", method, timeout))
		<-p.dead
		return p.err
	}
}

func decodeResult(m message, out any) error {
	if m.Error != nil {
		return m.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(m.Result, out); err != nil {
		return fmt.Errorf("the plugin sent a result that does not decode: %w", err)
	}
	return nil
}

// close asks the plugin to end by closing its input, and kills it when it
// has not ended within grace.
func (p *proc) close(grace time.Duration) {
	p.wmu.Lock()
	p.in.Close()
	p.wmu.Unlock()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.dead:
	case <-t.C:
		p.kill(fmt.Sprintf("it did not exit within %v of the end of its input", grace))
		<-p.dead
	}
}

// tail keeps the last few KiB of what the plugin writes to standard error.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 4 << 10

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > tailMax {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(b), nil
}

// lastLine returns the last non-empty line, with every secret value
// replaced, cut to 300 bytes.
func (t *tail) lastLine(secrets []string) string {
	t.mu.Lock()
	s := string(t.buf)
	t.mu.Unlock()
	for _, v := range secrets {
		if len(v) >= 3 {
			s = strings.ReplaceAll(s, v, "<secret>")
		}
	}
	lines := strings.Split(strings.TrimRight(s, "\r\n\t "), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if len(last) > 300 {
		last = last[:300] + "…"
	}
	return last
}
