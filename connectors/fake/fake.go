package fake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

var (
	_ connectors.Factory   = (*Factory)(nil)
	_ connectors.Connector = (*Conn)(nil)
)

// Factory is the connectors.Factory of the "fake" scheme.
type Factory struct {
	newConn func(connectors.Target) *Conn
}

// NewFactory returns a factory whose Open returns newConn(target), so a test
// can hand out pre-seeded fakes per host (from a map, say). A nil newConn
// opens a fresh, empty Conn for every Open.
func NewFactory(newConn func(t connectors.Target) *Conn) *Factory {
	return &Factory{newConn: newConn}
}

// Scheme returns "fake".
func (f *Factory) Scheme() string { return "fake" }

// Doc describes the fake connector.
func (f *Factory) Doc() string {
	return "An in-memory host for tests: commands get scripted responses and files live in memory. Nothing runs anywhere."
}

// Fields returns nil: the fake connector takes no data keys.
func (f *Factory) Fields() []connectors.Field { return nil }

// Parse accepts any address: "@fake/web1" is named "@fake/web1".
func (f *Factory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	name := "@fake"
	if addr != "" {
		name += "/" + addr
	}
	return connectors.Target{Scheme: "fake", Name: name, Addr: addr, Data: data}, nil
}

// Open returns the Conn for t.
func (f *Factory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %s: %w", t.Name, err)
	}
	if f.newConn == nil {
		c := New(t.Name)
		c.target = t
		return c, nil
	}
	c := f.newConn(t)
	if c == nil {
		return nil, fmt.Errorf("open %s: no fake host for this target", t.Name)
	}
	return c, nil
}

// File is one file of a fake host.
type File struct {
	Content []byte
	Mode    fs.FileMode
}

// Handler computes the response to a command; see Conn.OnFunc.
type Handler func(ctx context.Context, cmd connectors.Command) (connectors.Result, error)

// Conn is an in-memory host. Its zero value is not usable; call New. All
// methods are safe for concurrent use.
type Conn struct {
	target connectors.Target

	mu       sync.Mutex
	files    map[string]File
	handlers map[string]Handler // by script prefix
	commands []string
	puts     []string
	closed   bool
	latency  time.Duration
}

// New returns an empty fake host named name: no files, and every command
// exits 0 with no output.
func New(name string) *Conn {
	return &Conn{
		target:   connectors.Target{Scheme: "fake", Name: name},
		files:    map[string]File{},
		handlers: map[string]Handler{},
	}
}

// On makes every command whose script starts with prefix return r, unless
// a longer registered prefix also matches. On("", r) changes the default.
// Registering a prefix again replaces its response.
func (c *Conn) On(prefix string, r connectors.Result) *Conn {
	return c.OnFunc(prefix, func(context.Context, connectors.Command) (connectors.Result, error) {
		return r, nil
	})
}

// OnFunc is On with a function, for responses that depend on the command,
// that fail, or that block until ctx ends.
func (c *Conn) OnFunc(prefix string, h Handler) *Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers[prefix] = h
	return c
}

// Latency makes every Run, Put and Get wait d before it does anything, as
// one round trip to a remote host would; the wait ends early, with an
// error, when ctx ends. The default is 0: no wait. It is for benchmarks
// that simulate many hosts (see runtime's BenchmarkSimulatedHosts).
func (c *Conn) Latency(d time.Duration) *Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency = d
	return c
}

// wait waits the host's latency, or until ctx ends.
func (c *Conn) wait(ctx context.Context) error {
	c.mu.Lock()
	d := c.latency
	c.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetFile creates or replaces the file path.
func (c *Conn) SetFile(path string, content []byte, mode fs.FileMode) *Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[path] = File{Content: bytes.Clone(content), Mode: mode}
	return c
}

// File returns the file path and whether it exists.
func (c *Conn) File(path string) (File, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.files[path]
	f.Content = bytes.Clone(f.Content)
	return f, ok
}

// Paths returns the paths of all files, sorted.
func (c *Conn) Paths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.files))
	for p := range c.files {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Commands returns the script of every Run so far, in call order.
func (c *Conn) Commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.commands)
}

// Puts returns the destination of every successful Put so far, in order.
func (c *Conn) Puts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.puts)
}

// Closed reports whether Close was called.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Target returns the host's target.
func (c *Conn) Target() connectors.Target { return c.target }

// Capabilities reports unlimited sessions, no PTY and atomic Put.
func (c *Conn) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{AtomicPut: true}
}

// Close marks the host closed; it is safe to call more than once.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Run records cmd.Script and answers with the handler of the longest
// registered prefix of the script (exit 0 and no output when none
// matches). Without a handler it drains cmd.Stdin (a handler reads it
// itself). It copies the output to cmd.Stdout and cmd.Stderr when set.
func (c *Conn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	start := time.Now()
	if err := c.wait(ctx); err != nil {
		return connectors.Result{}, fmt.Errorf("run on %s: %w", c.target.Name, err)
	}
	c.mu.Lock()
	c.commands = append(c.commands, cmd.Script)
	var h Handler
	best := -1
	for prefix, fn := range c.handlers {
		if len(prefix) > best && strings.HasPrefix(cmd.Script, prefix) {
			h, best = fn, len(prefix)
		}
	}
	c.mu.Unlock()

	if cmd.Stdin != nil && h == nil {
		// A handler reads stdin itself; otherwise it is drained, as a
		// command that ignores its input would.
		if _, err := io.Copy(io.Discard, connectors.ContextReader(ctx, cmd.Stdin)); err != nil {
			return connectors.Result{}, fmt.Errorf("run on %s: read stdin: %w", c.target.Name, err)
		}
	}
	var res connectors.Result
	if h != nil {
		var err error
		if res, err = h(ctx, cmd); err != nil {
			return res, fmt.Errorf("run on %s: %w", c.target.Name, err)
		}
	}
	res.Stdout, res.Stderr = bytes.Clone(res.Stdout), bytes.Clone(res.Stderr)
	for _, o := range []struct {
		w io.Writer
		b []byte
	}{{cmd.Stdout, res.Stdout}, {cmd.Stderr, res.Stderr}} {
		if o.w != nil && len(o.b) > 0 {
			if _, err := o.w.Write(o.b); err != nil {
				return res, fmt.Errorf("run on %s: copy live output: %w", c.target.Name, err)
			}
		}
	}
	if cmd.StreamOnly && cmd.Stdout != nil {
		res.Stdout = nil
	}
	if res.Duration == 0 {
		res.Duration = max(time.Since(start), time.Nanosecond)
	}
	return res, nil
}

// Put reads src into the file dst with mode. On an error, including ctx
// ending, dst is left as it was and nothing is recorded.
func (c *Conn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	if err := c.wait(ctx); err != nil {
		return fmt.Errorf("put %s on %s: %w", dst, c.target.Name, err)
	}
	var b bytes.Buffer
	if src != nil {
		if _, err := io.Copy(&b, connectors.ContextReader(ctx, src)); err != nil {
			return fmt.Errorf("put %s on %s: %w", dst, c.target.Name, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s on %s: %w", dst, c.target.Name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[dst] = File{Content: b.Bytes(), Mode: mode}
	c.puts = append(c.puts, dst)
	return nil
}

// Get writes the content of the file src to dst. A missing file yields an
// error wrapping fs.ErrNotExist.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	if err := c.wait(ctx); err != nil {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err)
	}
	f, ok := c.File(src)
	if !ok {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, fs.ErrNotExist)
	}
	if _, err := dst.Write(f.Content); err != nil {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err)
	}
	return nil
}
