package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
)

// SessionFile is the file name that positions in a session's chunks carry
// ("<repl>:1:5"); load() paths in a chunk are relative to the current
// directory.
const SessionFile = "<repl>"

// Session is a live connection to hosts in which chunks of source run one
// after another, as in a REPL (star-deploy INVENTORY repl): every host is
// connected once, by OpenSession, and stays connected until Close; each
// chunk runs on every connected host at once (at most Options.Parallel), on
// a thread bound to that host, with that host's own globals, which persist
// from one chunk to the next (x = 1, then x + 1). A chunk that fails on a
// host leaves the globals it set there and the host connected.
//
// Events are those of a Run: host_start when a host connects, the op and
// print events of each chunk, host_end at Close (or when a host cannot be
// connected). Options.MaxSteps and Options.Timeout bound each chunk on each
// host; Serial and FailPercent do not apply. A Session is not safe for
// concurrent use: one Eval at a time.
//
// A function defined in a chunk sees the globals as they were when that
// chunk ran, not later reassignments (go.starlark.net compiles each chunk as
// a module of its own); pass values as arguments instead.
type Session struct {
	r      *Runner
	ctx    context.Context // the session's: it carries the run id and outlives every Eval
	cancel context.CancelFunc
	emit   func(Event)
	hosts  []*sessionHost
	loader func(*starlark.Thread, string) (starlark.StringDict, error)
}

// sessionHost is one host of a Session.
type sessionHost struct {
	host    Host
	h       *builtins.Host
	globals starlark.StringDict // its own: predeclared names, host and what chunks defined
	limit   *outputCap          // print() budget for the whole session, in a sandbox
	start   time.Time           // zero when it never began
	err     error               // why it is not connected, or nil
}

// ChunkResult is the outcome of one chunk on one host.
type ChunkResult struct {
	Host string
	// Value is the value of a chunk that is a single expression other than
	// None; nil for statements.
	Value starlark.Value
	// Err is why the chunk failed on this host: a *ScriptError (for an
	// undefined name too, which depends on the host's globals) or a
	// *PanicError.
	Err error
}

// OpenSession connects every host, at most Options.Parallel at once, and
// returns the session; ctx bounds the connections' lifetime. A host that
// cannot be connected gets its host_end (unreachable) now and takes no
// part in the session (see Session.Connected). The error is a
// *CompileError for a Runner that cannot run at all (a bad sandbox).
func (r *Runner) OpenSession(ctx context.Context, hosts []Host) (*Session, error) {
	if r.err != nil {
		return nil, &CompileError{Msg: fmt.Sprintf("sandbox files: %v", r.err), err: r.err}
	}
	if _, ok := connectors.RunFrom(ctx); !ok {
		ctx = connectors.WithRun(ctx, connectors.NewRun())
	}
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	s := &Session{r: r, ctx: ctx, cancel: cancel, loader: r.loaderFor(SessionFile, false)}
	s.emit = func(e Event) {
		if r.opts.OnEvent == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		r.opts.OnEvent(e)
	}
	for _, host := range hosts {
		// Not connected until its turn comes (ctx may end first).
		sh := &sessionHost{host: host, h: r.newHost(host, s.emit), err: context.Canceled}
		if r.opts.Sandbox != nil {
			sh.limit = newOutputCap(r.opts.Sandbox.MaxOutput)
		}
		s.hosts = append(s.hosts, sh)
	}
	s.each(ctx, s.hosts, func(sh *sessionHost) {
		sh.start = time.Now()
		s.emit(Event{Time: sh.start, Kind: builtins.KindHostStart, Host: sh.host.Name})
		sh.err = r.connectSafe(ctx, sh.host, sh.h)
		if sh.err != nil {
			s.end(sh, hostStatus(ctx, sh.err))
			return
		}
		sh.globals = make(starlark.StringDict, len(r.globals)+1)
		maps.Copy(sh.globals, r.globals)
		sh.globals["host"] = sh.h.Value()
	})
	return s, nil
}

// connectSafe is connect with a panic turned into the host's error.
func (r *Runner) connectSafe(ctx context.Context, host Host, h *builtins.Host) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Host: host.Name, Value: p, Stack: string(debug.Stack())}
		}
	}()
	return r.connect(ctx, host, h)
}

// Connected returns the names of the hosts the session reaches, in order.
func (s *Session) Connected() []string {
	var names []string
	for _, sh := range s.connected() {
		names = append(names, sh.host.Name)
	}
	return names
}

func (s *Session) connected() []*sessionHost {
	var out []*sessionHost
	for _, sh := range s.hosts {
		if sh.err == nil {
			out = append(out, sh)
		}
	}
	return out
}

// each runs fn for every host of hosts, at most Options.Parallel at once,
// and waits for them all. A host whose turn comes after ctx is done is
// skipped.
func (s *Session) each(ctx context.Context, hosts []*sessionHost, fn func(*sessionHost)) {
	bounded(ctx, len(hosts), s.r.opts.Parallel, func(i int) { fn(hosts[i]) })
}

// bounded runs fn(i) for every i from 0 to n-1, each in a goroutine of its
// own and at most parallel at once (all at once when parallel <= 0), and
// waits for them all. An i whose turn comes after ctx is done is skipped.
func bounded(ctx context.Context, n, parallel int, fn func(i int)) {
	if parallel <= 0 || parallel > n {
		parallel = n
	}
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			fn(i)
		})
	}
	wg.Wait()
}

// chunkOptions is the dialect of a session's chunks: that of deploy
// scripts, with load() binding globals, so that a module a chunk loads is
// there in the chunks after it.
func chunkOptions() *syntax.FileOptions {
	opts := FileOptions()
	opts.LoadBindsGlobally = true
	return opts
}

// Eval runs one chunk of source, a statement or a block of them (a def, an
// if, a for), on every connected host and returns each host's result, in
// the hosts' order. A chunk that is one expression yields its value (also
// stored in the host's global _). Cancelling ctx stops the chunk on every
// host (the commands they run are killed) and leaves the session open. The
// error is a *CompileError, before any host ran, for a syntax error, a
// module that load() cannot load, or a keyword a call cannot take (as
// Compile checks it, where every host's callee is the same: a builtin, a
// stdlib operation, a loaded function).
func (s *Session) Eval(ctx context.Context, src []byte) ([]ChunkResult, error) {
	if err := checkUTF8(SessionFile, src); err != nil {
		return nil, &CompileError{Msg: err.Error(), err: err}
	}
	f, err := chunkOptions().Parse(SessionFile, src, 0)
	if err != nil {
		err = s.r.compileError(err, src, true)
		return nil, &CompileError{Msg: err.Error(), err: err}
	}
	// The run id, for temporary files, is the session's.
	if run, ok := connectors.RunFrom(s.ctx); ok {
		ctx = connectors.WithRun(ctx, run)
	}
	parent := ctx
	if s.r.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.r.opts.Timeout)
		defer cancel()
	}
	loaded, err := s.loadModules(ctx, f)
	if err != nil {
		return nil, &CompileError{Msg: err.Error(), err: withCause(err, interruption(parent, ctx))}
	}
	hosts := s.connected()
	if err := s.checkKeywords(f, hosts, loaded); err != nil {
		return nil, &CompileError{Msg: err.Error(), err: err}
	}
	results := make([]ChunkResult, len(hosts))
	for i, sh := range hosts {
		results[i].Host = sh.host.Name
	}
	once := &builtins.Once{} // run_once() positions repeat from chunk to chunk
	index := make(map[*sessionHost]int, len(hosts))
	for i, sh := range hosts {
		index[sh] = i
	}
	ran := make([]bool, len(hosts))
	s.each(ctx, hosts, func(sh *sessionHost) {
		i := index[sh]
		ran[i] = true
		sh.h.Once = once
		results[i].Value, results[i].Err = s.evalHostSafe(ctx, sh, src)
		if results[i].Err != nil && ctx.Err() != nil {
			results[i].Err = withCause(results[i].Err, interruption(parent, ctx))
		}
	})
	for i := range results {
		if !ran[i] { // ctx was done before its turn came
			results[i].Err = withCause(&ScriptError{Host: results[i].Host, Msg: "interrupted before it began", Err: context.Cause(ctx)}, interruption(parent, ctx))
		}
	}
	return results, nil
}

// loadModules loads the modules that f's load statements name, once per
// Runner as for Compile, so that the threads of the hosts find them in the
// cache. It returns the values the statements bind, by name.
func (s *Session) loadModules(ctx context.Context, f *syntax.File) (map[string]starlark.Value, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	loaded := map[string]starlark.Value{}
	for _, stmt := range f.Stmts {
		if ls, ok := stmt.(*syntax.LoadStmt); ok {
			m, err := s.r.load(ctx, SessionFile, ls.ModuleName(), nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ls.Module.TokenPos, err)
			}
			for i, from := range ls.From {
				loaded[ls.To[i].Name] = m[from.Name]
			}
		}
	}
	return loaded, nil
}

// checkKeywords checks the keyword arguments of the calls of f, the
// chunk as Eval parsed it (each host parses its own copy), as Compile
// does, against what hosts' globals hold before the chunk runs and the
// values of the chunk's own loads. A name the chunk binds otherwise, or
// one whose value differs from host to host, is not checked. A chunk the
// first host cannot resolve is left to the hosts, which report it.
func (s *Session) checkKeywords(f *syntax.File, hosts []*sessionHost, loaded map[string]starlark.Value) error {
	if len(hosts) == 0 {
		return nil
	}
	first := hosts[0].globals
	if err := resolve.REPLChunk(f, first.Has, func(string) bool { return false }, starlark.Universe.Has); err != nil {
		return nil
	}
	assigned := chunkAssigned(f)
	return checkKeywords(f, func(id *syntax.Ident) starlark.Value {
		b, ok := id.Binding.(*resolve.Binding)
		if !ok || b.Scope != resolve.Global || assigned[id.Name] {
			return nil
		}
		if v, ok := loaded[id.Name]; ok {
			return v
		}
		v := first[id.Name]
		switch v.(type) {
		case *starlark.Builtin, *starlark.Function, *starlarkstruct.Struct, *starlarkstruct.Module:
		default: // nothing checkKeywords looks into (and perhaps not comparable)
			return nil
		}
		for _, sh := range hosts[1:] {
			if sh.globals[id.Name] != v {
				return nil
			}
		}
		return v
	})
}

// chunkAssigned returns the globals that f's statements bind other than by
// load(): assignments, defs and for loops at the top level, also inside
// if, for and while (not inside a def, a lambda or a comprehension, whose
// names are local).
func chunkAssigned(f *syntax.File) map[string]bool {
	names := map[string]bool{}
	var targets func(e syntax.Expr)
	targets = func(e syntax.Expr) {
		switch e := e.(type) {
		case *syntax.Ident:
			names[e.Name] = true
		case *syntax.ParenExpr:
			targets(e.X)
		case *syntax.TupleExpr:
			for _, x := range e.List {
				targets(x)
			}
		case *syntax.ListExpr:
			for _, x := range e.List {
				targets(x)
			}
		}
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.DefStmt:
			names[n.Name.Name] = true
			return false
		case *syntax.LambdaExpr, *syntax.Comprehension:
			return false
		case *syntax.AssignStmt:
			targets(n.LHS)
		case *syntax.ForStmt:
			targets(n.Vars)
		}
		return true
	})
	return names
}

// evalHostSafe is evalHost with a panic turned into the host's error.
func (s *Session) evalHostSafe(ctx context.Context, sh *sessionHost, src []byte) (v starlark.Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, &PanicError{Host: sh.host.Name, Value: p, Stack: string(debug.Stack())}
		}
	}()
	return s.evalHost(ctx, sh, src)
}

// evalHost runs src on a new thread bound to sh, with sh's globals. Each
// host parses src itself: resolving a chunk annotates its syntax tree.
func (s *Session) evalHost(ctx context.Context, sh *sessionHost, src []byte) (starlark.Value, error) {
	f, err := chunkOptions().Parse(SessionFile, src, 0)
	if err != nil {
		return nil, err // Eval parsed it already
	}
	var why error
	thread := &starlark.Thread{Name: sh.host.Name, Load: s.loader, Print: s.r.printer(sh.h, sh.limit, &why)}
	limitSteps(thread, s.r.opts.MaxSteps, &why)
	builtins.WithHost(thread, ctx, sh.h)
	stop := context.AfterFunc(ctx, func() { thread.Cancel(context.Cause(ctx).Error()) })
	defer stop()
	var v starlark.Value
	if expr := soleExpr(f); expr != nil {
		v, err = starlark.EvalExprOptions(f.Options, thread, expr, sh.globals)
		if err == nil {
			sh.globals["_"] = v
			if v == starlark.None {
				v = nil
			}
		}
	} else {
		err = starlark.ExecREPLChunk(f, thread, sh.globals)
	}
	if err == nil {
		return v, nil
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return nil, redactError(sh.h, withCause(scriptError(sh.host.Name, err), why))
	}
	// Resolving: an undefined name, which depends on what this host
	// defined so far.
	err = s.r.compileError(err, src, true)
	msg := err.Error()
	pos, rest, ok := strings.Cut(msg, ": ")
	if !ok || strings.Contains(msg, "\n") || !strings.HasPrefix(pos, SessionFile) {
		pos, rest = "", msg
	}
	return nil, &ScriptError{Host: sh.host.Name, Pos: pos, Msg: rest, Err: err}
}

// soleExpr returns the expression of a file that is one expression
// statement, or nil.
func soleExpr(f *syntax.File) syntax.Expr {
	if len(f.Stmts) == 1 {
		if stmt, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
			return stmt.X
		}
	}
	return nil
}

// Complete returns the names that complete prefix, sorted: globals of the
// first connected host (the predeclared builtins, host, and what chunks
// defined) and keywords when prefix is a plain name, attributes when it is
// dotted (files.li: files.line, files.link). A terminal's Tab uses it.
func (s *Session) Complete(prefix string) []string {
	hosts := s.connected()
	var globals starlark.StringDict
	if len(hosts) > 0 {
		globals = hosts[0].globals
	} else {
		globals = s.r.globals
	}
	var names []string
	head, last := "", prefix
	if i := strings.LastIndexByte(prefix, '.'); i >= 0 {
		head, last = prefix[:i+1], prefix[i+1:]
		v, ok := lookupDotted(globals, prefix[:i])
		if !ok {
			return nil
		}
		if ha, ok := v.(starlark.HasAttrs); ok {
			names = ha.AttrNames()
		}
	} else {
		names = slices.Collect(maps.Keys(globals))
		names = append(names, starlark.Universe.Keys()...)
		names = append(names, keywords...)
	}
	var out []string
	for _, n := range names {
		// Private names (_) only when asked for.
		if strings.HasPrefix(n, last) && (!strings.HasPrefix(n, "_") || strings.HasPrefix(last, "_")) {
			out = append(out, head+n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// keywords are the Starlark keywords a REPL line may start with.
var keywords = []string{"def", "if", "elif", "else", "for", "in", "while", "return", "pass", "break", "continue", "load", "lambda", "not", "and", "or", "True", "False", "None"}

// lookupDotted returns the value of a dotted name (files, or a.b.c) in
// globals.
func lookupDotted(globals starlark.StringDict, dotted string) (starlark.Value, bool) {
	parts := strings.Split(dotted, ".")
	v, ok := globals[parts[0]]
	if !ok {
		v = starlark.Universe[parts[0]]
		ok = v != nil
	}
	for _, p := range parts[1:] {
		ha, isAttrs := v.(starlark.HasAttrs)
		if !ok || !isAttrs {
			return nil, false
		}
		next, err := ha.Attr(p)
		if err != nil || next == nil {
			return nil, false
		}
		v = next
	}
	return v, ok
}

// Close ends the session: each connected host finishes (a Docker image
// host commits its container unless Options.Dry or ctx is done) and is
// disconnected, and gets its host_end. The report has one HostResult per
// host, with the operations the session counted.
func (s *Session) Close(ctx context.Context) *Report {
	defer s.cancel()
	rep := &Report{Hosts: make([]HostResult, len(s.hosts))}
	// Every host, also after a cancel: each cleans up with its own deadline.
	s.each(context.WithoutCancel(ctx), s.connected(), func(sh *sessionHost) {
		sh.err = s.r.finish(ctx, sh.h, ctx.Err() == nil && !s.r.opts.Dry)
		sh.h.Conn.Close()
		status := builtins.StatusOK
		switch {
		case ctx.Err() != nil:
			status = builtins.StatusInterrupted
		case sh.err != nil:
			status = builtins.StatusFailed
		}
		s.end(sh, status)
	})
	for i, sh := range s.hosts {
		rep.Hosts[i] = HostResult{
			Name: sh.host.Name, Started: !sh.start.IsZero(), Status: hostStatus(ctx, sh.err), Counts: sh.h.Counts,
			Duration: time.Since(sh.start), Err: sh.err, Output: sh.h.Result,
		}
		if !rep.Hosts[i].Started {
			rep.Hosts[i].Status, rep.Hosts[i].Duration = builtins.StatusNotStarted, 0
		}
	}
	rep.Interrupted = ctx.Err() != nil
	return rep
}

// end emits sh's host_end with status.
func (s *Session) end(sh *sessionHost, status builtins.Status) {
	counts := sh.h.Counts
	e := Event{Kind: builtins.KindHostEnd, Status: status, Duration: time.Since(sh.start), Counts: &counts}
	if sh.err != nil {
		e.Error = sh.err.Error()
	}
	sh.h.Send(e)
}
