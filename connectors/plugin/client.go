package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// Prefix starts the file name of every connector plugin: the executable
// star-deploy-connector-NAME provides @NAME.
const Prefix = "star-deploy-connector-"

// Options configure a plugin Factory. The zero value is the default.
type Options struct {
	// Env is the plugin's environment; nil means star-deploy's own.
	Env []string
	// CallTimeout is how long the plugin may leave a call other than run
	// unanswered (describe, parse, open, a chunk of put or get, close)
	// before it counts as hung and is killed; 0 means one minute.
	CallTimeout time.Duration
	// CancelGrace is how long a cancelled command may take to end before
	// the plugin is killed; 0 means ten seconds.
	CancelGrace time.Duration
}

func (o Options) withDefaults() Options {
	if o.CallTimeout <= 0 {
		o.CallTimeout = time.Minute
	}
	if o.CancelGrace <= 0 {
		o.CancelGrace = 10 * time.Second
	}
	return o
}

// SchemeOf returns the scheme a plugin file provides: its base name
// without Prefix and without an extension ("star-deploy-connector-rest.py"
// provides "rest"). A file named otherwise provides its base name without
// an extension.
func SchemeOf(path string) string {
	base := strings.TrimPrefix(filepath.Base(path), Prefix)
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	return base
}

// Find returns the plugins in the directories of pathList (a PATH value):
// every executable file whose name starts with Prefix, the first of each
// scheme, as exec.LookPath would pick it, sorted by scheme.
func Find(pathList string) []string {
	seen := map[string]string{}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), Prefix) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
				continue
			}
			s := SchemeOf(p)
			if _, dup := seen[s]; s != "" && !dup {
				seen[s] = p
			}
		}
	}
	var out []string
	for _, s := range slices.Sorted(func(yield func(string) bool) {
		for s := range seen {
			if !yield(s) {
				return
			}
		}
	}) {
		out = append(out, seen[s])
	}
	return out
}

// Factory is a connectors.Factory whose connector is a plugin executable.
// The plugin runs only when needed: once to describe itself (Doc, Fields,
// Parse), and once for every connection that Open makes.
type Factory struct {
	path, scheme string
	opts         Options

	once    sync.Once
	desc    describeResult
	descErr error

	mu   sync.Mutex // guards ctl
	ctl  *proc      // serves parse, when the plugin parses; ends when idle
	idle *time.Timer
}

// NewFactory returns a Factory for the plugin executable at path, which
// provides the scheme SchemeOf(path). It starts nothing.
func NewFactory(path string, opts ...Options) *Factory {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	return &Factory{path: path, scheme: SchemeOf(path), opts: o.withDefaults()}
}

// Path returns the plugin's executable.
func (f *Factory) Path() string { return f.path }

// Scheme returns the scheme named by the plugin's file name.
func (f *Factory) Scheme() string { return f.scheme }

func (f *Factory) name() string { return fmt.Sprintf("plugin %q (%s)", f.scheme, f.path) }

// Describe starts the plugin once to learn its doc and data keys, and
// reports why that failed, if it did. Doc, Fields and Parse call it.
func (f *Factory) Describe() error {
	f.once.Do(func() {
		p, err := f.start(context.Background())
		if err != nil {
			f.descErr = err
			return
		}
		f.desc, err = f.describe(context.Background(), p)
		if err != nil {
			f.descErr = err
			p.kill("describe failed")
			<-p.dead
			return
		}
		if f.desc.Parse {
			f.mu.Lock()
			f.ctl = p
			f.idleLocked()
			f.mu.Unlock()
			return
		}
		p.close(f.opts.CallTimeout)
	})
	return f.descErr
}

// Doc returns the plugin's description, or why it could not give one.
func (f *Factory) Doc() string {
	if err := f.Describe(); err != nil {
		return "A connector plugin that failed to describe itself: " + err.Error()
	}
	return f.desc.Doc
}

// Fields returns the data keys the plugin declares (none when it failed
// to describe itself; Parse reports why).
func (f *Factory) Fields() []connectors.Field {
	if f.Describe() != nil {
		return nil
	}
	var out []connectors.Field
	for _, fi := range f.desc.Fields {
		out = append(out, connectors.Field{Name: fi.Name, Type: fi.Type, Default: fi.Default, Doc: fi.Doc, Secret: fi.Secret})
	}
	return out
}

func (f *Factory) start(ctx context.Context) (*proc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	env := f.opts.Env
	if env == nil {
		env = os.Environ()
	}
	return startProc(f.path, f.name(), env, f.opts.CallTimeout)
}

// describe runs the describe call on p and checks its answer.
func (f *Factory) describe(ctx context.Context, p *proc) (describeResult, error) {
	var d describeResult
	if err := p.call(ctx, methodDescribe, describeParams{Protocol: []int{Version}}, &d, f.opts.CallTimeout); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return d, fmt.Errorf("%s: describe: %w", f.name(), err)
		}
		return d, err // names the plugin already
	}
	switch {
	case d.Protocol != Version:
		return d, fmt.Errorf("%s: it speaks protocol version %d; this star-deploy speaks %d", f.name(), d.Protocol, Version)
	case d.Scheme != f.scheme:
		return d, fmt.Errorf("%s: it says it provides @%s, but its file name provides @%s; rename it %s%s", f.name(), d.Scheme, f.scheme, Prefix, d.Scheme)
	}
	for _, fi := range d.Fields {
		if !strings.HasPrefix(fi.Name, f.scheme+"_") {
			return d, fmt.Errorf("%s: its data key %q does not start with %q", f.name(), fi.Name, f.scheme+"_")
		}
	}
	return d, nil
}

// idleLocked ends the parse process after a second without a parse call.
func (f *Factory) idleLocked() {
	if f.idle != nil {
		f.idle.Stop()
	}
	p := f.ctl
	f.idle = time.AfterFunc(time.Second, func() {
		f.mu.Lock()
		if f.ctl == p {
			f.ctl = nil
		}
		f.mu.Unlock()
		p.close(f.opts.CallTimeout)
	})
}

// Parse hands the address and data of an inventory name to the plugin, if
// it parses names (its describe says so); otherwise the target is the
// address and data as they are.
func (f *Factory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if err := f.Describe(); err != nil {
		return connectors.Target{}, err
	}
	if !f.desc.Parse {
		return connectors.Target{Scheme: f.scheme, Addr: addr, Data: data}, nil
	}
	f.mu.Lock()
	p := f.ctl
	if p == nil {
		var err error
		if p, err = f.start(context.Background()); err != nil {
			f.mu.Unlock()
			return connectors.Target{}, err
		}
		if _, err = f.describe(context.Background(), p); err != nil {
			f.mu.Unlock()
			p.kill("describe failed")
			return connectors.Target{}, err
		}
		f.ctl = p
	}
	f.idleLocked()
	f.mu.Unlock()
	var t targetInfo
	if err := p.call(context.Background(), methodParse, parseParams{Addr: addr, Data: data}, &t, f.opts.CallTimeout); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return connectors.Target{}, errors.New(e.Message) // the plugin's own words
		}
		return connectors.Target{}, fmt.Errorf("%s: parse: %w", f.name(), err)
	}
	tg := t.target()
	tg.Scheme = f.scheme
	return tg, nil
}

// Open starts a plugin process for t and opens the connection in it. When
// ctx ends first, the process is killed.
func (f *Factory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	if err := f.Describe(); err != nil {
		return nil, err
	}
	p, err := f.start(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t.Name, err)
	}
	var secrets []string
	for _, fi := range f.desc.Fields {
		if v := t.Data[fi.Name]; fi.Secret && v != "" {
			secrets = append(secrets, v)
		}
	}
	p.setRedact(secrets)
	fail := func(err error) (connectors.Connector, error) {
		p.kill("its connection failed to open")
		<-p.dead
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("open %s: %w", t.Name, err)
	}
	if _, err := f.describe(ctx, p); err != nil {
		return fail(err)
	}
	var res openResult
	if err := p.call(ctx, methodOpen, openParams{Target: infoOf(t)}, &res, f.opts.CallTimeout); err != nil {
		return fail(err)
	}
	c := res.Capabilities
	return &Conn{p: p, opts: f.opts, target: t, caps: connectors.Capabilities{MaxSessions: max(c.MaxSessions, 0), PTY: c.PTY, AtomicPut: c.AtomicPut}}, nil
}

// Conn is an open connection of a plugin: one plugin process.
type Conn struct {
	p      *proc
	opts   Options
	target connectors.Target
	caps   connectors.Capabilities

	closeOnce sync.Once
	closeErr  error
}

// Target returns the target the connection was opened for.
func (c *Conn) Target() connectors.Target { return c.target }

// Capabilities returns what the plugin declared when it opened.
func (c *Conn) Capabilities() connectors.Capabilities { return c.caps }

// Run runs cmd in the plugin. Output arrives as notifications and goes to
// the live writers and the Result as it comes. When ctx ends, the plugin
// is told to cancel and given CancelGrace to answer before it is killed.
func (c *Conn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	fail := func(err error) (connectors.Result, error) {
		return connectors.Result{}, fmt.Errorf("run on %s: %w", c.target.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	out := connectors.NewOutput(cmd)
	start := time.Now()
	id, ch, err := c.p.begin(methodRun, runParams{Script: cmd.Script, Stdin: cmd.Stdin != nil, PTY: cmd.PTY}, func(o outputParams) {
		switch o.Stream {
		case "stdout":
			out.Stdout().Write(o.Data)
		case "stderr":
			out.Stderr().Write(o.Data)
		}
	})
	if err != nil {
		return fail(err)
	}
	defer c.p.forget(id)
	if cmd.Stdin != nil {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go c.feed(sctx, id, cmd.Stdin)
	}
	var m message
	select {
	case m = <-ch:
	case <-c.p.dead:
		return fail(c.p.err)
	case <-ctx.Done():
		c.p.notify(methodCancel, cancelParams{ID: idJSON(id)})
		t := time.NewTimer(c.opts.CancelGrace)
		defer t.Stop()
		select {
		case <-ch:
		case <-c.p.dead:
		case <-t.C:
			c.p.kill(fmt.Sprintf("a cancelled command did not end within %v", c.opts.CancelGrace))
		}
		return fail(ctx.Err())
	}
	if m.Error != nil {
		return fail(m.Error)
	}
	var r runResult
	if err := decodeResult(m, &r); err != nil {
		return fail(err)
	}
	res := connectors.Result{ExitCode: r.ExitCode, Duration: max(time.Since(start), time.Nanosecond)}
	out.Fill(&res)
	return res, nil
}

// feed sends r to the command of run id, a chunk at a time, each after the
// plugin has taken the one before; at the end of r it sends the end of
// input. A cancelled input does not end: the command is cancelled instead
// (see connectors.CopyStdin).
func (c *Conn) feed(ctx context.Context, id int64, r io.Reader) {
	buf := make([]byte, ChunkSize/2)
	cr := connectors.ContextReader(ctx, r)
	for {
		n, err := cr.Read(buf)
		if n > 0 {
			if c.p.call(ctx, methodStdin, stdinParams{ID: idJSON(id), Data: buf[:n]}, nil, 0) != nil {
				return
			}
		}
		if err != nil {
			if connectors.InputEnded(ctx, err) {
				c.p.call(ctx, methodStdin, stdinParams{ID: idJSON(id), EOF: true}, nil, 0)
			}
			return
		}
	}
}

func idJSON(id int64) []byte { return []byte(fmt.Sprint(id)) }

// Put streams src to the plugin in chunks, each sent once the plugin has
// taken the one before, and commits; on a failure of src or of ctx it
// aborts the put, and the plugin removes what it wrote.
func (c *Conn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	fail := func(err error) error { return fmt.Errorf("put %s on %s: %w", dst, c.target.Name, err) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	var h handleResult
	if err := c.p.call(ctx, methodPutBegin, putBeginParams{Path: dst, Mode: connectors.UnixMode(mode)}, &h, c.opts.CallTimeout); err != nil {
		return fail(err)
	}
	abort := func(err error) error {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.CallTimeout)
		defer cancel()
		c.p.call(actx, methodPutAbort, handleParams{Handle: h.Handle}, nil, c.opts.CallTimeout)
		return fail(err)
	}
	buf := make([]byte, ChunkSize)
	r := connectors.ContextReader(ctx, src)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := c.p.call(ctx, methodPutWrite, putWriteParams{Handle: h.Handle, Data: buf[:n]}, nil, c.opts.CallTimeout); err != nil {
				return abort(err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return abort(rerr)
		}
	}
	if err := c.p.call(ctx, methodPutEnd, handleParams{Handle: h.Handle}, nil, c.opts.CallTimeout); err != nil {
		if ctx.Err() != nil {
			return abort(err)
		}
		return fail(err)
	}
	return nil
}

// Get reads src from the plugin a chunk at a time into dst.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	fail := func(err error) error { return fmt.Errorf("get %s on %s: %w", src, c.target.Name, err) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	var h handleResult
	if err := c.p.call(ctx, methodGetOpen, getOpenParams{Path: src}, &h, c.opts.CallTimeout); err != nil {
		return fail(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.CallTimeout)
		defer cancel()
		c.p.call(cctx, methodGetClose, handleParams{Handle: h.Handle}, nil, c.opts.CallTimeout)
	}()
	for {
		var r getReadResult
		if err := c.p.call(ctx, methodGetRead, getReadParams{Handle: h.Handle, Max: ChunkSize}, &r, c.opts.CallTimeout); err != nil {
			return fail(err)
		}
		if len(r.Data) > 0 {
			if _, err := dst.Write(r.Data); err != nil {
				return fail(err)
			}
		}
		if r.EOF {
			return nil
		}
	}
}

// Close asks the plugin to close the connection, ends its input and waits
// a bounded time for it to exit. It is safe to call more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.CallTimeout)
		defer cancel()
		err := c.p.call(ctx, methodClose, empty{}, nil, min(c.opts.CallTimeout, 10*time.Second))
		var e *Error
		if errors.As(err, &e) {
			c.closeErr = fmt.Errorf("close %s: %w", c.target.Name, err)
		}
		c.p.close(5 * time.Second)
	})
	return c.closeErr
}
