package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing/fstest"
	"time"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/jsondata"
)

// Untrusted scripts run in a child process: Starlark bounds steps and time
// but not memory, so a script such as list(range(1 << 40)) or a loop that
// builds huge strings could take the whole embedding app down. RunIsolated
// starts the child (the same binary, by default), sends it the scripts, the
// sandbox's files and the hosts, and relays its events. The child caps its
// own heap; the parent watches the child's memory and time too and kills it
// when it goes over. Either way the run fails with an *IsolationError and
// the app carries on.
//
// The child must be able to rebuild what cannot cross a process boundary:
// the app's main calls ServeChild first thing when IsChild reports true,
// with the same connectors, stdlib, builtins and modules as its Runner.

// childEnv marks a process started by RunIsolated; its value is the
// memory limit in bytes.
const childEnv = "STAR_DEPLOY_ISOLATED_CHILD"

// helloTimeout is how long a child may take to start serving.
const helloTimeout = 15 * time.Second

// maxIsolatedFiles bounds the bytes of sandbox files sent to a child.
const maxIsolatedFiles = 64 << 20

// Isolation configures RunIsolated.
type Isolation struct {
	// Command is the child's argv; nil runs this executable with no
	// arguments (its main must call ServeChild when IsChild).
	Command []string
	// MemoryLimit caps the child's memory in bytes; 0 means 256 MiB.
	MemoryLimit int64
}

// Script is a script for RunIsolated: Filename with Src, or, when Src is
// nil, the file itself (read from the Sandbox's Files when there is one).
type Script struct {
	Filename string
	Src      []byte
}

// IsolationError is the failure of an isolated run as a whole: the child
// went over its memory or time limit, or died.
type IsolationError struct {
	Reason string
	cause  error // ErrMemoryLimit, ErrTimeout, ErrCancelled or nil
}

func (e *IsolationError) Error() string { return "isolated run stopped: " + e.Reason }

// Is reports whether target is the sentinel of why the child stopped:
// ErrMemoryLimit, ErrTimeout or ErrCancelled.
func (e *IsolationError) Is(target error) bool { return e.cause != nil && target == e.cause }

// causes are the sentinels a child sends its parent, by their messages.
func causes() []error {
	return []error{ErrStepLimit, ErrTimeout, ErrMemoryLimit, ErrSandbox, ErrCancelled}
}

// causeOf returns the message of the first sentinel err matches, or "".
func causeOf(err error) string {
	for _, c := range causes() {
		if errors.Is(err, c) {
			return c.Error()
		}
	}
	return ""
}

// causeNamed returns the sentinel whose message is msg, or nil.
func causeNamed(msg string) error {
	for _, c := range causes() {
		if c.Error() == msg {
			return c
		}
	}
	return nil
}

// IsChild reports whether this process was started by RunIsolated.
func IsChild() bool { return os.Getenv(childEnv) != "" }

// ChildConfig is what a child needs from the app to run scripts as its
// parent's Runner would.
type ChildConfig struct {
	Connectors *connectors.Registry // as Options.Connectors
	Stdlib     fs.FS
	Builtins   starlark.StringDict
	Modules    map[string]starlark.StringDict
}

// request is what the parent sends the child on its standard input.
type request struct {
	MemoryLimit int64
	MaxSteps    uint64
	Timeout     time.Duration
	Parallel    int
	Serial      int
	FailPercent *int
	Dry, Diff   bool
	Verbose     bool
	Trace       builtins.Trace
	Control     builtins.Control
	Sandbox     *wireSandbox
	Scripts     []Script
	Hosts       []wireHost
	// Remote: the parent serves remote modules from these sources
	// (isolate_remote.go).
	Remote      bool
	RemoteAllow []string
}

type wireSandbox struct {
	Effects    builtins.Effect
	Connectors []string
	MaxOutput  int
	Files      map[string][]byte // nil: no files
}

type wireHost struct {
	Name   string
	Groups []string
	Data   map[string]any
	Target connectors.Target
}

// message is one line the child writes on its standard output.
type message struct {
	Hello        bool          `json:",omitempty"` // the first line: the child serves
	Event        *Event        `json:",omitempty"`
	Duration     time.Duration `json:",omitempty"` // the event's
	Print        *[2]string    `json:",omitempty"` // host, message
	CompileError string        `json:",omitempty"`
	CompileCause string        `json:",omitempty"` // the message of the sentinel it matches
	Report       *wireReport   `json:",omitempty"`
	Remote       *remoteCall   `json:",omitempty"` // a question for the parent's Options.Remote
}

type wireReport struct {
	Interrupted bool
	Hosts       []wireResult
}

type wireResult struct {
	Name     string
	Started  bool
	Status   builtins.Status
	Counts   builtins.Counts
	Duration time.Duration
	Err      string
	Pos      string
	Cause    string // the message of the sentinel Err matches (causeOf)
	Output   string
}

// RunIsolated runs scripts on hosts in a child process with the Runner's
// options and iso's memory limit, and returns the report. Events and
// prints reach Options.OnEvent and Options.Print as in Run. A compile
// error is returned as a *CompileError before any host runs; a child that
// goes over its limits or dies fails every unfinished host with an
// *IsolationError. Options.Builtins and Modules are not sent: the child
// gets its own from ChildConfig.
func (r *Runner) RunIsolated(ctx context.Context, iso Isolation, scripts []Script, hosts []Host) (*Report, error) {
	if r.err != nil {
		return nil, &CompileError{Msg: fmt.Sprintf("sandbox files: %v", r.err)}
	}
	req, err := r.request(iso, scripts, hosts)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("isolate: %w", err)
	}
	argv := iso.Command
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("isolate: %w", err)
		}
		argv = []string{exe}
	}
	parent := ctx
	if r.opts.Timeout > 0 {
		// The child stops itself at the timeout; this is the backstop.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Timeout+5*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+strconv.FormatInt(req.MemoryLimit, 10))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("isolate: %w", err)
	}
	var stderr limitedBuffer
	stderr.max = 64 << 10
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("isolate: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("isolate: start the child %s: %w", argv[0], err)
	}
	// The request, then the answers to the child's remote calls, share
	// its standard input, which stays open only when there can be calls;
	// a call is answered in a goroutine of its own, all of them done
	// before RunIsolated returns.
	var wmu sync.Mutex
	wmu.Lock()
	go func() {
		defer wmu.Unlock()
		stdin.Write(append(body, '\n'))
		if !req.Remote {
			stdin.Close()
		}
	}()
	enc := json.NewEncoder(stdin)
	callCtx, stopCalls := context.WithCancel(ctx)
	var calls sync.WaitGroup
	busy := make(chan struct{}, maxRemoteCalls)
	answer := func(c remoteCall) {
		calls.Go(func() {
			busy <- struct{}{}
			rep := r.serveRemote(callCtx, c)
			<-busy
			wmu.Lock()
			defer wmu.Unlock()
			enc.Encode(rep)
		})
	}
	watch := watchMemory(cmd.Process, req.MemoryLimit)
	// A child whose main does not call ServeChild never says hello: it is
	// the app itself, started again. Stop it soon, and say why.
	var hello atomic.Bool
	var silent atomic.Bool
	helloTimer := time.AfterFunc(helloTimeout, func() {
		if !hello.Load() {
			silent.Store(true)
			cmd.Process.Kill()
		}
	})
	defer helloTimer.Stop()

	report := &Report{Hosts: make([]HostResult, len(hosts))}
	for i, h := range hosts {
		report.Hosts[i].Name = h.Name
	}
	compileErr, gotReport := r.relayChild(stdout, report, &hello, answer)
	io.Copy(io.Discard, stdout)
	stopCalls()
	calls.Wait()
	stdin.Close()
	waitErr := cmd.Wait()
	over := watch()
	if !hello.Load() && ctx.Err() == nil {
		why := "ended"
		if silent.Load() {
			why = "did not answer within " + helloTimeout.String()
		}
		return nil, fmt.Errorf("isolate: the child %s %s without serving: does its main call runtime.ServeChild when runtime.IsChild() is true?", argv[0], why)
	}
	if compileErr != nil {
		return nil, compileErr
	}
	if gotReport && waitErr == nil {
		return report, nil
	}
	reason, cause := childFailure(parent, ctx, waitErr, over, stderr.String(), req.MemoryLimit)
	for i := range report.Hosts {
		if report.Hosts[i].Err == nil && !gotReport {
			report.Hosts[i].Err = &IsolationError{Reason: reason, cause: cause}
			report.Hosts[i].Status = hostStatus(ctx, report.Hosts[i].Err)
		}
	}
	report.Interrupted = report.Interrupted || ctx.Err() != nil
	return report, nil
}

// relayChild reads the child's messages from stdout until it closes:
// events and prints go to the Runner's callbacks, the hello to hello,
// remote calls to answer, and the report into report. It returns the
// compile error the child sent, if any, and whether a report came.
func (r *Runner) relayChild(stdout io.Reader, report *Report, hello *atomic.Bool, answer func(remoteCall)) (compileErr error, gotReport bool) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // not ours: a stray line
		}
		switch {
		case m.Hello:
			hello.Store(true)
		case m.Remote != nil:
			answer(*m.Remote)
		case m.Event != nil:
			if r.opts.OnEvent != nil {
				m.Event.Duration = m.Duration
				r.opts.OnEvent(*m.Event)
			}
		case m.Print != nil:
			switch {
			case r.opts.Print != nil:
				r.opts.Print(m.Print[0], m.Print[1])
			case r.opts.OnEvent != nil:
				r.opts.OnEvent(Event{Time: time.Now(), Kind: builtins.KindPrint, Host: m.Print[0], Message: m.Print[1]})
			}
		case m.CompileError != "":
			compileErr = &CompileError{Msg: m.CompileError, err: causeNamed(m.CompileCause)}
		case m.Report != nil:
			gotReport = true
			report.Interrupted = m.Report.Interrupted
			for i, w := range m.Report.Hosts {
				if i >= len(report.Hosts) {
					break
				}
				hr := HostResult{Name: w.Name, Started: w.Started, Status: w.Status, Counts: w.Counts, Duration: w.Duration, Output: w.Output}
				if w.Err != "" {
					hr.Err = &ScriptError{Host: w.Name, Pos: w.Pos, Msg: strings.TrimPrefix(w.Err, w.Pos+": "), Err: errors.New(w.Err), cause: causeNamed(w.Cause)}
				}
				report.Hosts[i] = hr
			}
		}
	}
	return compileErr, gotReport
}

// childFailure explains why a child ended without its report, with the
// sentinel that classifies it (nil for a child that died otherwise).
// parent is the caller's context, ctx the one with the run's timeout.
func childFailure(parent, ctx context.Context, waitErr error, overMemory bool, stderr string, limit int64) (string, error) {
	mib := limit >> 20
	switch {
	case overMemory, strings.Contains(stderr, memoryExceeded), strings.Contains(stderr, "out of memory"),
		strings.Contains(stderr, "failed to allocate"), strings.Contains(stderr, "cannot allocate memory"):
		return fmt.Sprintf("the script used more than its memory limit of %d MiB", mib), ErrMemoryLimit
	case parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "the script ran past its time limit", ErrTimeout
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "the script ran past its time limit", ErrCancelled
	case ctx.Err() != nil:
		return "interrupted", ErrCancelled
	}
	msg := strings.TrimSpace(stderr)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if msg == "" && waitErr != nil {
		msg = waitErr.Error()
	}
	if strings.Contains(msg, "SIGSEGV") || strings.Contains(msg, "signal: killed") {
		// A Go runtime that hits the hard data limit crashes.
		return fmt.Sprintf("the script used more than its memory limit of %d MiB (%s)", mib, msg), ErrMemoryLimit
	}
	return "the child process died: " + msg, nil
}

// request builds what the child needs.
func (r *Runner) request(iso Isolation, scripts []Script, hosts []Host) (*request, error) {
	limit := iso.MemoryLimit
	if limit <= 0 {
		limit = 256 << 20
	}
	req := &request{
		MemoryLimit: limit, MaxSteps: r.opts.MaxSteps, Timeout: r.opts.Timeout,
		Parallel: r.opts.Parallel, Serial: r.opts.Serial, FailPercent: r.opts.FailPercent,
		Dry: r.opts.Dry, Diff: r.opts.Diff, Verbose: r.opts.Verbose, Trace: r.opts.Trace, Control: r.opts.Control,
		Remote: r.opts.Remote != nil, RemoteAllow: r.opts.RemoteAllow,
	}
	if sb := r.opts.Sandbox; sb != nil {
		ws := &wireSandbox{Effects: sb.Effects, Connectors: sb.Connectors, MaxOutput: sb.MaxOutput}
		if r.files != nil {
			files, err := collectFiles(r.files)
			if err != nil {
				return nil, err
			}
			ws.Files = files
		}
		req.Sandbox = ws
	}
	for _, s := range scripts {
		if s.Src == nil {
			b, err := r.readFile(s.Filename)
			if err != nil {
				return nil, &CompileError{Msg: fmt.Sprintf("%s: %v", s.Filename, readError(err))}
			}
			s.Src = b
		}
		req.Scripts = append(req.Scripts, s)
	}
	for _, h := range hosts {
		req.Hosts = append(req.Hosts, wireHost{Name: h.Name, Groups: h.Groups, Data: h.Data, Target: h.Target})
	}
	return req, nil
}

// collectFiles reads every regular file of fsys, for the child.
func collectFiles(fsys fs.FS) (map[string][]byte, error) {
	files := map[string][]byte{}
	total := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // unreadable entries and links are not sent
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		if total += len(b); total > maxIsolatedFiles {
			return fmt.Errorf("isolate: the sandbox's files exceed %d MiB", maxIsolatedFiles>>20)
		}
		files[p] = b
		return nil
	})
	return files, err
}

// watchMemory kills p when its resident memory goes over limit (with some
// room for the Go runtime), polling /proc. The returned function stops the
// watch and reports whether it killed p.
func watchMemory(p *os.Process, limit int64) func() bool {
	var killed bool
	stop := poll(20*time.Millisecond, func() bool {
		if rss := residentBytes(p.Pid); rss > limit+limit/2 {
			killed = true
			p.Kill()
			return true
		}
		return false
	})
	return func() bool {
		stop()
		return killed
	}
}

// poll calls check every interval, in a goroutine of its own, until check
// returns true or the returned function is called; that function waits for
// the goroutine to end.
func poll(interval time.Duration, check func() (done bool)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if check() {
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// residentBytes reads VmRSS of pid, or 0 when it cannot.
func residentBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// memoryExceeded is what a child writes when it stops itself.
const memoryExceeded = "star-deploy: isolated run: memory limit exceeded"

// ServeChild runs the request of a RunIsolated parent, read from standard
// input, and exits. Call it first thing in main when IsChild is true.
func ServeChild(cfg ChildConfig) {
	os.Exit(serveChild(os.Stdin, os.Stdout, cfg))
}

func serveChild(in io.Reader, out io.Writer, cfg ChildConfig) int {
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m message) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(m)
	}
	send(message{Hello: true})
	var req request
	dec := json.NewDecoder(in)
	dec.UseNumber() // host data keeps its ints
	if err := dec.Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "star-deploy: isolated run: bad request:", err)
		return 2
	}
	for i := range req.Hosts {
		data, _ := jsondata.Numbers(req.Hosts[i].Data)
		req.Hosts[i].Data, _ = data.(map[string]any)
	}
	limitMemory(req.MemoryLimit)

	opts := Options{
		Parallel: req.Parallel, Serial: req.Serial, MaxSteps: req.MaxSteps, Timeout: req.Timeout,
		Connectors: cfg.Connectors, Stdlib: cfg.Stdlib, Dry: req.Dry, Diff: req.Diff, Verbose: req.Verbose, Trace: req.Trace, Control: req.Control,
		FailPercent: req.FailPercent, Builtins: cfg.Builtins, Modules: cfg.Modules,
		OnEvent: func(e Event) { send(message{Event: &e, Duration: e.Duration}) },
		Print:   func(host, msg string) { send(message{Print: &[2]string{host, msg}}) },
	}
	if req.Remote {
		cr := newChildRemote(send)
		go cr.receive(dec)
		opts.Remote, opts.RemoteAllow = cr, req.RemoteAllow
	}
	if sb := req.Sandbox; sb != nil {
		opts.Sandbox = &Sandbox{Effects: sb.Effects, Connectors: sb.Connectors, MaxOutput: sb.MaxOutput}
		if sb.Files != nil {
			files := fstest.MapFS{}
			for p, b := range sb.Files {
				files[p] = &fstest.MapFile{Data: b, Mode: 0o644}
			}
			opts.Sandbox.Files = files
		}
	}
	r := New(opts)
	ctx := context.Background()
	var progs []*Program
	for _, s := range req.Scripts {
		p, err := r.Compile(ctx, s.Filename, s.Src)
		if err != nil {
			send(message{CompileError: err.Error(), CompileCause: causeOf(err)})
			return 0
		}
		progs = append(progs, p)
	}
	hosts := make([]Host, len(req.Hosts))
	for i, h := range req.Hosts {
		hosts[i] = Host{Name: h.Name, Groups: h.Groups, Data: h.Data, Target: h.Target}
	}
	rep := r.Run(ctx, progs, hosts)
	w := &wireReport{Interrupted: rep.Interrupted}
	for _, h := range rep.Hosts {
		res := wireResult{Name: h.Name, Started: h.Started, Status: h.Status, Counts: h.Counts, Duration: h.Duration, Output: h.Output}
		if h.Err != nil {
			res.Err, res.Cause = h.Err.Error(), causeOf(h.Err)
			var se *ScriptError
			if errors.As(h.Err, &se) {
				res.Pos = se.Pos
			}
		}
		w.Hosts = append(w.Hosts, res)
	}
	send(message{Report: w})
	return 0
}

// limitMemory makes the Go runtime keep the heap under limit and stops the
// process, with memoryExceeded on stderr, when it cannot; a hard data limit
// well above it stops a single huge allocation.
func limitMemory(limit int64) {
	if limit <= 0 {
		return
	}
	debug.SetMemoryLimit(limit)
	hard := uint64(limit)*4 + 512<<20
	syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: hard, Max: hard})
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(sample)
			if int64(sample[0].Value.Uint64()) > limit {
				fmt.Fprintln(os.Stderr, memoryExceeded)
				os.Exit(3)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}
