package conntest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// Outcome is the result of one test of the suite, as Run reports it.
type Outcome struct {
	Name     string        // relative to the suite, as go test names subtests: "RunStdin/cancelled"
	Status   string        // "pass", "fail" or "skip"
	Messages []string      // what the test reported: errors, the skip reason, logs
	Duration time.Duration // wall-clock time, clean-up included
}

// Depth is the number of "/" in the name: 0 for a test of the suite.
func (o Outcome) Depth() int { return strings.Count(o.Name, "/") }

// RunOptions configure Run.
type RunOptions struct {
	Skip   map[string]string      // subtests to leave out, with the reason (see Check)
	Select func(name string) bool // when set, only the tests of the suite it accepts run
	Done   func(o Outcome)        // called as each test or subtest ends, in order of ending
	Logs   bool                   // keep Logf lines in Outcome.Messages
}

// maxMessages bounds what one test keeps of its reports.
const maxMessages = 20

// Run runs the conformance suite (Check) outside `go test` and returns the
// outcome of every test and subtest, in order of ending: this is
// `star-deploy connector test`. ctx ends every test's Context. A test that
// panics fails; it does not stop the others.
func Run(ctx context.Context, open func(t T) (conn connectors.Connector, scratch string), opts RunOptions) []Outcome {
	r := &runner{opts: opts}
	root := &runT{r: r, ctx: ctx}
	root.ctx, root.cancel = context.WithCancel(ctx)
	defer root.cancel()
	Check(root, open, opts.Skip)
	return r.outcomes
}

type runner struct {
	opts     RunOptions
	mu       sync.Mutex
	outcomes []Outcome
}

// runT is a T of Run.
type runT struct {
	r      *runner
	parent *runT
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	failed   bool
	skipped  bool
	messages []string
	dropped  int
	cleanups []func()
}

func (t *runT) Helper()                  {}
func (t *runT) Name() string             { return t.name }
func (t *runT) Context() context.Context { return t.ctx }

func (t *runT) Cleanup(fn func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, fn)
}

func (t *runT) report(fail bool, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fail {
		t.failed = true
	}
	if len(t.messages) < maxMessages {
		t.messages = append(t.messages, strings.TrimRight(msg, "\n"))
	} else {
		t.dropped++
	}
}

func (t *runT) Logf(format string, args ...any) {
	if t.r.opts.Logs {
		t.report(false, fmt.Sprintf(format, args...))
	}
}

func (t *runT) Errorf(format string, args ...any) { t.report(true, fmt.Sprintf(format, args...)) }

func (t *runT) Fatal(args ...any) {
	t.report(true, fmt.Sprint(args...))
	runtime.Goexit()
}

func (t *runT) Fatalf(format string, args ...any) {
	t.report(true, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (t *runT) Skip(args ...any) {
	t.report(false, fmt.Sprint(args...))
	t.mu.Lock()
	t.skipped = true
	t.mu.Unlock()
	runtime.Goexit()
}

// Run runs fn in a goroutine of its own, as testing does, so that Fatal
// and Skip (runtime.Goexit) end only fn; then its context ends and its
// clean-ups run, last registered first.
func (t *runT) Run(name string, fn func(t T)) bool {
	name = strings.ReplaceAll(name, " ", "_")
	if t.name != "" {
		name = t.name + "/" + name
	}
	if t.parent == nil && t.r.opts.Select != nil && !t.r.opts.Select(name) {
		return true
	}
	c := &runT{r: t.r, parent: t, name: name}
	c.ctx, c.cancel = context.WithCancel(t.ctx)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.finish()
		defer func() {
			if p := recover(); p != nil {
				c.report(true, fmt.Sprintf("panic: %v", p))
			}
		}()
		fn(c)
	}()
	<-done
	o := Outcome{Name: name, Status: "pass", Duration: time.Since(start)}
	c.mu.Lock()
	switch {
	case c.failed:
		o.Status = "fail"
	case c.skipped:
		o.Status = "skip"
	}
	o.Messages = c.messages
	if c.dropped > 0 {
		o.Messages = append(o.Messages, fmt.Sprintf("(%d more messages)", c.dropped))
	}
	failed := c.failed
	c.mu.Unlock()
	if failed {
		t.mu.Lock()
		t.failed = true
		t.mu.Unlock()
	}
	t.r.mu.Lock()
	t.r.outcomes = append(t.r.outcomes, o)
	t.r.mu.Unlock()
	if t.r.opts.Done != nil {
		t.r.opts.Done(o)
	}
	return !failed
}

// finish ends t's context and runs its clean-ups; a clean-up that panics
// or calls Fatal fails t and the next one runs.
func (t *runT) finish() {
	t.cancel()
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		fn := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() {
				if p := recover(); p != nil {
					t.report(true, fmt.Sprintf("panic in clean-up: %v", p))
				}
			}()
			fn()
		}()
		<-done
	}
}
