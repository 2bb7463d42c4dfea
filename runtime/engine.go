package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.starlark.net/lib/json"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/spell"
)

// FileOptions returns the Starlark dialect of deploy scripts and modules,
// the stdlib's included: they are scripts, so top-level control flow,
// global reassignment, while and set are on; recursion stays off. Tools
// that parse these files (docs, tests) use it too, so that they accept
// exactly what the engine does. Each call returns a new value.
func FileOptions() *syntax.FileOptions {
	return &syntax.FileOptions{
		Set:             true,
		While:           true,
		TopLevelControl: true,
		GlobalReassign:  true,
	}
}

// Runner compiles scripts and runs them on hosts. A Runner is safe for
// concurrent use; each Run is independent. Modules loaded by its scripts are
// cached for the Runner's lifetime, frozen, and shared by every host.
type Runner struct {
	opts    Options
	globals starlark.StringDict // predeclared names, without host
	// withheld are the builtins the sandbox does not define, each with
	// the effects it lacks for them.
	withheld map[string]builtins.Effect
	// stdlibGlobals are the predeclared names of stdlib modules: globals,
	// and a withheldBuiltin for each optional builtin withheld.
	stdlibGlobals starlark.StringDict
	files         fs.FS // the sandbox's files (Options.Sandbox.Files, made safe)
	err           error // a setup error, reported by Compile

	mu      sync.Mutex                     // serialises module loading; guards modules and ids
	modules map[string]starlark.StringDict // loaded, frozen modules by key
	ids     map[string]moduleID            // the identities of loaded stdlib modules (compilecache.go)

	digestOnce sync.Once // computes digest
	digest     []byte    // the digest of stdlibGlobals' names (compilecache.go)

	cacheDirOnce sync.Once // computes cacheDirOK
	cacheDirOK   bool      // the compile cache's directory may be used (cacheDirOwned)
}

// New returns a Runner with opts.
func New(opts Options) *Runner {
	allow := ^builtins.Effect(0)
	if opts.Sandbox != nil {
		allow = opts.Sandbox.Effects
	}
	g := builtins.Predeclared(allow)
	g["json"] = json.Module
	g["struct"] = starlark.NewBuiltin("struct", starlarkstruct.Make)
	if opts.Sandbox != nil {
		g["range"] = sandboxRange
	}
	for k, v := range opts.Builtins {
		g[k] = v
	}
	g.Freeze()
	r := &Runner{opts: opts, globals: g, withheld: withheld(g, allow), modules: map[string]starlark.StringDict{}, ids: map[string]moduleID{}}
	r.stdlibGlobals = withWithheld(g, r.withheld)
	for name, m := range opts.Modules {
		m.Freeze()
		r.modules[name] = m
	}
	if opts.Sandbox != nil {
		r.files, r.err = sandboxFiles(opts.Sandbox.Files)
	}
	return r
}

// withheld returns the builtins that allow leaves out of globals, each with
// the effects allow lacks for it. A module ("re") counts when none of its
// members is left.
func withheld(globals starlark.StringDict, allow builtins.Effect) map[string]builtins.Effect {
	out := map[string]builtins.Effect{}
	for _, s := range builtins.All() {
		name, _, _ := strings.Cut(s.Name, ".")
		if _, defined := globals[name]; !defined && s.Effects&^allow != 0 {
			out[name] |= s.Effects &^ allow
		}
	}
	return out
}

// Program is a compiled deploy script with its loaded modules, ready to run
// on any number of hosts.
type Program struct {
	Filename string
	prog     *starlark.Program
	loader   func(*starlark.Thread, string) (starlark.StringDict, error)
}

// Compile parses and resolves the script filename (src, or the file itself
// when src is nil) and loads every module it loads, so that syntax errors,
// undefined names, missing modules or symbols and load cycles are reported
// before any host is touched. Errors are *CompileError.
func (r *Runner) Compile(ctx context.Context, filename string, src []byte) (*Program, error) {
	if r.err != nil {
		return nil, &CompileError{Msg: fmt.Sprintf("sandbox files: %v", r.err), err: r.err}
	}
	parent := ctx
	if r.opts.Timeout > 0 {
		// Loading modules runs their top level.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
	}
	if r.opts.Sandbox != nil {
		clean, err := sandboxPath(filename)
		if err != nil {
			return nil, &CompileError{Msg: err.Error(), err: err}
		}
		filename = clean
	}
	if src == nil {
		b, err := r.readFile(filename)
		if err != nil {
			return nil, &CompileError{Msg: fmt.Sprintf("%s: %v", filename, readError(err)), err: err}
		}
		src = b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prog, err := r.prepare(ctx, filename, src, nil, true)
	if err != nil {
		return nil, &CompileError{Msg: err.Error(), err: withCause(err, interruption(parent, ctx))}
	}
	return &Program{Filename: filename, prog: prog, loader: r.loaderFor(filename, false)}, nil
}

// prepare parses and resolves one file and loads the modules it names,
// checking that every loaded symbol exists. Callers hold r.mu.
func (r *Runner) prepare(ctx context.Context, filename string, src []byte, chain []string, script bool) (*starlark.Program, error) {
	isPredeclared := func(name string) bool {
		_, ok := r.predeclared(filename)[name]
		return ok || (script && name == "host")
	}
	if err := checkUTF8(filename, src); err != nil {
		return nil, err
	}
	f, prog, err := starlark.SourceProgramOptions(FileOptions(), filename, src, isPredeclared)
	if err != nil {
		return nil, r.compileError(err, src, script)
	}
	loaded := map[*syntax.Ident]starlark.Value{}
	for _, stmt := range f.Stmts {
		ls, ok := stmt.(*syntax.LoadStmt)
		if !ok {
			continue
		}
		name := ls.ModuleName()
		globals, err := r.load(ctx, filename, name, chain)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ls.Module.TokenPos, err)
		}
		for i, from := range ls.From {
			v, ok := globals[from.Name]
			if !ok {
				return nil, fmt.Errorf("%s: load: %s has no symbol %q", from.NamePos, name, from.Name)
			}
			loaded[ls.To[i]] = v
		}
	}
	if err := checkKeywords(f, r.scriptBound(loaded)); err != nil {
		return nil, err
	}
	return prog, nil
}

// checkUTF8 refuses source text that is not UTF-8, naming the line and
// column of the first bad byte: Starlark source is UTF-8, and a byte that is
// not would reach hosts and events as an unreadable string. Binary data is
// written as a bytes literal (b"\xff").
func checkUTF8(filename string, src []byte) error {
	if utf8.Valid(src) {
		return nil
	}
	line, col := 1, 1
	for len(src) > 0 {
		r, n := utf8.DecodeRune(src)
		if r == utf8.RuneError && n <= 1 {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		src = src[n:]
	}
	return fmt.Errorf("%s:%d:%d: the file is not valid UTF-8 text (byte %#02x); save it as UTF-8, and write binary data as a bytes literal (b\"\\xff\")", filename, line, col, src[0])
}

// compileError formats syntax and resolve errors, one per line, each with
// its file:line:col. An undefined name gets the nearest predeclared name as
// a suggestion (the resolver suggests only the file's own names). The use
// of a builtin the sandbox withholds says so, and the error matches
// ErrSandbox.
func (r *Runner) compileError(err error, src []byte, script bool) error {
	var serr syntax.Error
	if errors.As(err, &serr) {
		return syntaxError(serr, src)
	}
	var list resolve.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	var lines []string
	refused := false
	for _, e := range list {
		msg := e.Msg
		name, _, _ := strings.Cut(strings.TrimPrefix(msg, "undefined: "), " ")
		missing, isWithheld := r.withheld[name]
		switch {
		case !strings.HasPrefix(msg, "undefined: "):
		case name == "host":
			msg += " (host is predeclared in deploy scripts only; a module function takes it as an argument)"
		case isWithheld:
			effects := "effect"
			if strings.Contains(missing.String(), "+") {
				effects += "s"
			}
			msg = fmt.Sprintf("undefined: %s (%s is not available here: the sandbox does not allow the %s %s)", name, name, missing, effects)
			refused = true
		case !strings.Contains(msg, "did you mean"):
			msg += spell.Suffix(name, r.predeclaredNames(script))
		}
		lines = append(lines, fmt.Sprintf("%s: %s", e.Pos, msg))
	}
	if refused {
		return refusef("%s", strings.Join(lines, "\n"))
	}
	return errors.New(strings.Join(lines, "\n"))
}

// predeclaredNames lists the names a file may use without defining them,
// sorted, so that suggestions do not depend on map order.
func (r *Runner) predeclaredNames(script bool) []string {
	names := slices.Sorted(maps.Keys(r.globals))
	if script {
		names = append(names, "host")
	}
	return names
}

// syntaxError formats a syntax error. The parser reports a token missing at
// the end of a line (the ':' of an if) at the newline, which it places at
// the start of the next line: that is moved back to the end of the line
// where the token is missing.
func syntaxError(e syntax.Error, src []byte) error {
	pos := e.Pos
	if strings.HasPrefix(e.Msg, "got newline") && pos.Col == 1 && pos.Line > 1 {
		lines := strings.Split(string(src), "\n")
		for l := int(pos.Line) - 1; l >= 1 && l <= len(lines); l-- {
			if text := strings.TrimRight(lines[l-1], " \t\r"); strings.TrimSpace(text) != "" {
				pos.Line, pos.Col = int32(l), int32(utf8.RuneCountInString(text)+1)
				break
			}
		}
	}
	return fmt.Errorf("%s: %s", pos, e.Msg)
}

func readError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("no such file")
	}
	return err
}

// loaderFor returns the thread.Load function for code in file from. Every
// module was loaded by Compile, so this only reads the cache; locked says
// whether the caller (a module loading under r.mu) already holds the lock.
func (r *Runner) loaderFor(from string, locked bool) func(*starlark.Thread, string) (starlark.StringDict, error) {
	return func(_ *starlark.Thread, name string) (starlark.StringDict, error) {
		key, err := r.resolve(from, name)
		if err != nil {
			return nil, err
		}
		if !locked {
			r.mu.Lock()
			defer r.mu.Unlock()
		}
		m, ok := r.modules[key]
		if !ok {
			return nil, fmt.Errorf("internal error: module %s was not loaded first", key)
		}
		return m, nil
	}
}

// load returns the frozen globals of module name as loaded from file from,
// executing it the first time. chain holds the modules being loaded, for
// cycle detection. Callers hold r.mu.
func (r *Runner) load(ctx context.Context, from, name string, chain []string) (starlark.StringDict, error) {
	key, err := r.resolve(from, name)
	if err != nil {
		return nil, err
	}
	for i, c := range chain {
		if c == key {
			return nil, fmt.Errorf("load cycle: %s -> %s", strings.Join(chain[i:], " -> "), key)
		}
	}
	if m, ok := r.modules[key]; ok {
		return m, nil
	}
	var src []byte
	if strings.HasPrefix(key, remotePrefix) {
		src, err = r.opts.Remote.Read(ctx, key)
	} else {
		src, err = r.readFile(key)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", name, readError(err))
	}
	chain = append(chain[:len(chain):len(chain)], key)
	c, err := r.compileModule(ctx, key, src, chain)
	if err != nil {
		return nil, err
	}
	prog := c.prog
	thread := &starlark.Thread{
		Name:  "load " + key,
		Load:  r.loaderFor(key, true),
		Print: func(_ *starlark.Thread, msg string) {},
	}
	var why error
	limitSteps(thread, r.opts.MaxSteps, &why)
	builtins.WithContext(thread, ctx)
	stop := context.AfterFunc(ctx, func() { thread.Cancel(context.Cause(ctx).Error()) })
	defer stop()
	globals, err := initModule(prog, thread, r.predeclared(key))
	if err != nil {
		var pe *PanicError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("loading %s: %w", key, err)
		}
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("loading %s: %w", key, withCause(scriptError("", err), why))
		}
		return nil, fmt.Errorf("loading %s: %w", key, err)
	}
	globals.Freeze()
	r.modules[key] = globals
	r.ids[key] = c.id
	return globals, nil
}

// initModule runs a module's top level, with a panic (a bug in a builtin,
// perhaps an app's own) turned into an error, so that Compile reports it
// instead of crashing the embedding app.
func initModule(prog *starlark.Program, thread *starlark.Thread, predeclared starlark.StringDict) (globals starlark.StringDict, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Host: thread.Name, Value: p, Stack: string(debug.Stack())}
		}
	}()
	return prog.Init(thread, predeclared)
}

const stdlibPrefix = "@stdlib//"

// errNoStdlib is the error of loading the stdlib when Options.Stdlib is nil.
var errNoStdlib = errors.New("no stdlib is available here; the app serves it with Options.Stdlib = stdlib.FS (package github.com/star-deploy/star-deploy/stdlib)")

// resolve turns a load() argument into the module's cache key: the
// "@stdlib//name.star" form as is, a file path joined to the directory of
// the loading file and cleaned.
func (r *Runner) resolve(from, name string) (string, error) {
	if _, ok := r.opts.Modules[name]; ok {
		return name, nil
	}
	if !strings.HasSuffix(name, ".star") {
		return "", fmt.Errorf("load(%q): module names end in .star", name)
	}
	if strings.HasPrefix(name, stdlibPrefix) {
		if r.opts.Stdlib == nil {
			return "", fmt.Errorf("load(%q): %w", name, errNoStdlib)
		}
		return stdlibPrefix + strings.TrimPrefix(name, stdlibPrefix), nil
	}
	if isRemote(from, name) {
		return r.resolveRemote(from, name)
	}
	if strings.HasPrefix(name, "@") {
		return "", fmt.Errorf("load(%q): unknown module prefix; use @stdlib//NAME.star or a path relative to %s", name, from)
	}
	if strings.HasPrefix(from, stdlibPrefix) {
		return stdlibPrefix + filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(strings.TrimPrefix(from, stdlibPrefix)), name))), nil
	}
	if r.opts.Sandbox != nil {
		if strings.HasPrefix(name, "/") {
			return "", refusef("load(%q): absolute paths are not allowed in the sandbox", name)
		}
		key := path.Join(path.Dir(from), name)
		if !fs.ValidPath(key) {
			return "", refusef("load(%q): the path leaves the sandbox", name)
		}
		return key, nil
	}
	if filepath.IsAbs(name) {
		return filepath.Clean(name), nil
	}
	return filepath.Clean(filepath.Join(filepath.Dir(from), name)), nil
}

// readFile reads a script or module: stdlib modules from Options.Stdlib,
// other paths from the file system.
func (r *Runner) readFile(key string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(key, stdlibPrefix); ok {
		if r.opts.Stdlib == nil {
			return nil, errNoStdlib
		}
		b, err := fsReadFile(r.opts.Stdlib, rest)
		if err != nil {
			return nil, fmt.Errorf("no stdlib module %q", rest)
		}
		return b, nil
	}
	if r.opts.Sandbox != nil {
		f, err := openSandboxed(r.files, key)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	return os.ReadFile(key)
}

// Run runs progs, in order, on every host, each host in its own goroutine,
// at most Options.Parallel at once. A failing host stops only itself. When
// ctx is cancelled every host stops, the commands they started are killed,
// and the report holds what finished (Report.Interrupted is set). The run's
// id (connectors.Run) names temporary files on the hosts; one is made unless
// ctx carries one (connectors.WithRun).
func (r *Runner) Run(ctx context.Context, progs []*Program, hosts []Host) *Report {
	if _, ok := connectors.RunFrom(ctx); !ok {
		// One id per run names its temporary files on every host.
		ctx = connectors.WithRun(ctx, connectors.NewRun())
	}
	parent := ctx
	if r.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
	}
	var emitMu sync.Mutex
	emit := func(e Event) {
		if r.opts.OnEvent == nil {
			return
		}
		emitMu.Lock()
		defer emitMu.Unlock()
		r.opts.OnEvent(e)
	}
	report := &Report{Hosts: make([]HostResult, len(hosts))}
	for i := range hosts {
		report.Hosts[i].Name = hosts[i].Name
	}
	once := &builtins.Once{}
	Schedule(ctx, r.opts, len(hosts), func(i int, stop func() error, failed func()) {
		if err := stop(); err != nil {
			report.Hosts[i] = HostResult{Name: hosts[i].Name, Status: builtins.StatusNotStarted, Err: err}
			return
		}
		res := r.runHost(ctx, progs, hosts[i], once, emit, stop, failed)
		if res.Status == builtins.StatusInterrupted {
			res.Err = withCause(res.Err, interruption(parent, ctx))
		}
		report.Hosts[i] = res
	})
	report.Interrupted = ctx.Err() != nil
	// Every host ends with a host_end, also one that never began.
	for i := range report.Hosts {
		h := &report.Hosts[i]
		if h.Started {
			continue
		}
		h.Status = builtins.StatusNotStarted
		end := Event{Time: time.Now(), Kind: builtins.KindHostEnd, Host: h.Name, Status: h.Status, Counts: &h.Counts}
		if h.Err != nil {
			end.Error = h.Err.Error()
		}
		emit(end)
	}
	return report
}

// Schedule runs n hosts as Run does, for a caller that runs each host
// itself (the CLI's --on-host): in batches of opts.Serial hosts, each
// batch ending before the next begins, at most opts.Parallel at once.
// run(i, stop, failed) runs host i: stop returns the error that stops it
// (before it begins, or before an operation) once more than
// opts.FailPercent of the n hosts failed, and run calls failed when host i
// failed. A host that ctx's end kept from beginning is not run.
func Schedule(ctx context.Context, opts Options, n int, run func(i int, stop func() error, failed func())) {
	var nfailed atomic.Int64
	var stopped atomic.Bool
	stop := func() error {
		if stopped.Load() {
			return &stoppedError{pct: *opts.FailPercent}
		}
		return nil
	}
	failed := func() {
		if opts.FailPercent != nil {
			if k := nfailed.Add(1); k*100 > int64(*opts.FailPercent)*int64(n) {
				stopped.Store(true)
			}
		}
	}
	batch := opts.Serial
	if batch <= 0 || batch > n {
		batch = max(n, 1)
	}
	for first := 0; first < n; first += batch {
		// Each batch finishes before the next starts (--serial).
		bounded(ctx, min(batch, n-first), opts.Parallel, func(j int) { run(first+j, stop, failed) })
	}
}

// stoppedError is why --fail-percent stopped a host.
type stoppedError struct{ pct int }

func (e *stoppedError) Error() string {
	return fmt.Sprintf("stopped: more than %d%% of hosts failed (--fail-percent)", e.pct)
}

// unreachableError is a host whose connector could not open it.
type unreachableError struct {
	host string
	err  error
}

func (e *unreachableError) Error() string {
	msg := e.err.Error()
	if strings.HasPrefix(msg, "connect to "+e.host+":") { // the connector said it already
		return msg
	}
	return "connect to " + e.host + ": " + msg
}
func (e *unreachableError) Unwrap() error { return e.err }

// hostStatus is the outcome of a host that began, from the error it ended
// with; ctx is the run's context.
func hostStatus(ctx context.Context, err error) builtins.Status {
	var stopped *stoppedError
	var unreachable *unreachableError
	switch {
	case err == nil:
		return builtins.StatusOK
	case ctx.Err() != nil:
		return builtins.StatusInterrupted
	case errors.As(err, &unreachable):
		return builtins.StatusUnreachable
	case errors.As(err, &stopped):
		return builtins.StatusStopped
	default:
		return builtins.StatusFailed
	}
}

// runHost connects to one host and runs every program on it. onFail runs
// before the host_end event of a failed host.
func (r *Runner) runHost(ctx context.Context, progs []*Program, host Host, once *builtins.Once, emit func(Event), stop func() error, onFail func()) HostResult {
	start := time.Now()
	res := HostResult{Name: host.Name, Started: true}
	emit(Event{Time: start, Kind: builtins.KindHostStart, Host: host.Name})
	h := r.newHost(host, emit)
	h.Stop, h.Once = stop, once
	res.Err = redactError(h, r.hostScriptsSafe(ctx, progs, host, h))
	res.Counts = h.Counts
	res.Output = h.Result
	res.Duration = time.Since(start)
	res.Status = hostStatus(ctx, res.Err)
	end := Event{Kind: builtins.KindHostEnd, Status: res.Status, Duration: res.Duration, Counts: &res.Counts}
	if res.Err != nil {
		end.Error = res.Err.Error()
		onFail()
	}
	h.Send(end)
	return res
}

// newHost returns the builtins' state of host, not yet connected, that
// emits its events through emit.
func (r *Runner) newHost(host Host, emit func(Event)) *builtins.Host {
	h := &builtins.Host{
		Name: host.Name, Groups: host.Groups, Data: host.Data,
		Dry: r.opts.Dry, Diff: r.opts.Diff, Verbose: r.opts.Verbose, Trace: r.opts.Trace,
		Emit:   emit,
		Local:  builtins.OSFiles{},
		Secret: r.opts.Connectors.IsSecretKey,
	}
	if r.opts.Sandbox != nil {
		h.Local = sandboxLocal{r.files}
	}
	if r.opts.Remote != nil {
		h.Local = remoteFiles{h.Local, r.opts.Remote}
	}
	return h
}

// hostScriptsSafe is hostScripts with a panic (a bug in a builtin or a
// connector) turned into that host's error, so one host's bug neither kills
// the other hosts nor puts a Go stack trace in front of a user.
func (r *Runner) hostScriptsSafe(ctx context.Context, progs []*Program, host Host, h *builtins.Host) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Host: host.Name, Value: p, Stack: string(debug.Stack())}
		}
	}()
	return r.hostScripts(ctx, progs, host, h)
}

func (r *Runner) hostScripts(ctx context.Context, progs []*Program, host Host, h *builtins.Host) error {
	if err := r.connect(ctx, host, h); err != nil {
		return err
	}
	// reconnect() may replace h.Conn; close whichever is current.
	defer func() { h.Conn.Close() }()
	var err error
	var limit *outputCap // one budget for all of a host's programs
	if r.opts.Sandbox != nil {
		limit = newOutputCap(r.opts.Sandbox.MaxOutput)
	}
	for _, p := range progs {
		if err = r.runProgram(ctx, p, h, limit); err != nil {
			break
		}
	}
	if ferr := r.finish(ctx, h, err == nil && ctx.Err() == nil && !r.opts.Dry); err == nil {
		err = ferr
	}
	return err
}

// connect sets h's control defaults and opens its connection (h.Conn and
// h.Reopen); the caller closes h.Conn. A host the connector cannot open
// fails with an *unreachableError.
func (r *Runner) connect(ctx context.Context, host Host, h *builtins.Host) error {
	var err error
	if h.Defaults, err = builtins.ControlFromData(r.opts.Control, host.Data); err != nil {
		return fmt.Errorf("%s: %w", host.Name, err)
	}
	factory, err := r.factory(host)
	if err != nil {
		return err
	}
	if sb := r.opts.Sandbox; sb != nil && !sb.connectorAllowed(host.Target.Scheme) {
		allowed := strings.Join(sb.Connectors, ", ")
		if allowed == "" {
			allowed = "none"
		}
		return refusef("%s: the %s connector is not allowed here (allowed: %s)", host.Name, host.Target.Scheme, allowed)
	}
	conn, err := factory.Open(ctx, host.Target)
	if err != nil {
		return &unreachableError{host: host.Name, err: err}
	}
	h.Conn = conn
	h.Reopen = func(ctx context.Context) (connectors.Connector, error) {
		return factory.Open(ctx, host.Target)
	}
	return nil
}

// finish lets a connector that is a connectors.Finisher end its work on h
// (commit says whether to keep the result, e.g. a Docker image), with a
// print event of what it produced. It runs also after a failure or a
// cancel, to clean up, with a context of its own so that a cancelled run
// can still do that.
func (r *Runner) finish(ctx context.Context, h *builtins.Host, commit bool) error {
	f, ok := h.Conn.(connectors.Finisher)
	if !ok {
		return nil
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	result, err := f.Finish(fctx, commit)
	if result != "" {
		h.Send(Event{Kind: builtins.KindPrint, Message: result})
		h.Result = result
	}
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	return nil
}

// runProgram runs one program's top level on a fresh thread bound to h;
// limit (nil outside a sandbox) caps its print output.
func (r *Runner) runProgram(ctx context.Context, p *Program, h *builtins.Host, limit *outputCap) error {
	var why error // set by the runtime's own reasons to cancel the thread
	thread := &starlark.Thread{Name: h.Name, Load: p.loader, Print: r.printer(h, limit, &why)}
	limitSteps(thread, r.opts.MaxSteps, &why)
	builtins.WithHost(thread, ctx, h)
	stop := context.AfterFunc(ctx, func() { thread.Cancel(context.Cause(ctx).Error()) })
	defer stop()
	predeclared := make(starlark.StringDict, len(r.globals)+1)
	for k, v := range r.globals {
		predeclared[k] = v
	}
	predeclared["host"] = h.Value()
	_, err := p.prog.Init(thread, predeclared)
	if err == nil {
		return nil
	}
	return withCause(scriptError(h.Name, err), why)
}

// printer is the print() of a thread bound to h: it sends what a script
// prints to Options.Print or as a print event. Past the sandbox's output
// limit (limit, nil outside a sandbox) it cancels the thread and sets *why.
func (r *Runner) printer(h *builtins.Host, limit *outputCap, why *error) func(*starlark.Thread, string) {
	return func(t *starlark.Thread, msg string) {
		if limit != nil && !limit.take(len(msg)+1) {
			*why = ErrSandbox
			t.Cancel("print: the output limit of the sandbox was exceeded")
			return
		}
		if r.opts.Print != nil {
			r.opts.Print(h.Name, h.Redact(msg))
			return
		}
		h.Send(Event{Kind: builtins.KindPrint, Message: msg})
	}
}

// interruption is why ctx, made from parent with Options.Timeout, is done:
// ErrCancelled when parent is, ErrTimeout when only ctx is, else nil.
func interruption(parent, ctx context.Context) error {
	switch {
	case parent.Err() != nil:
		return ErrCancelled
	case ctx.Err() != nil:
		return ErrTimeout
	}
	return nil
}

// scriptError turns a Starlark evaluation error into a *ScriptError naming
// the innermost script position.
func scriptError(host string, err error) *ScriptError {
	se := &ScriptError{Host: host, Msg: err.Error(), Err: err}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		se.Backtrace = ee.Backtrace()
		// The innermost frame of the user's own code: a failure inside the
		// embedded stdlib is blamed on the line that called it.
		for _, stdlibToo := range []bool{false, true} {
			for i := len(ee.CallStack) - 1; i >= 0 && se.Pos == ""; i-- {
				pos := ee.CallStack[i].Pos
				name := pos.Filename()
				if pos.IsValid() && name != "<builtin>" && (stdlibToo || !strings.HasPrefix(name, stdlibPrefix)) {
					se.Pos = pos.String()
				}
			}
		}
		if u := ee.Unwrap(); u != nil {
			se.Err = u
		}
	}
	return se
}
