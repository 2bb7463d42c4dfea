package local

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/star-deploy/star-deploy/connectors"
	"golang.org/x/sys/unix"
)

// Name is the inventory and display name of the local host.
const Name = "@local"

var (
	_ connectors.Factory   = Factory{}
	_ connectors.Connector = (*Conn)(nil)
)

// Factory is the connectors.Factory of the "local" scheme. It declares no
// data keys.
type Factory struct{}

// NewFactory returns the factory of the "local" scheme.
func NewFactory() connectors.Factory { return Factory{} }

// Scheme returns "local".
func (Factory) Scheme() string { return "local" }

// Doc describes the local connector.
func (Factory) Doc() string {
	return "Runs commands with `sh -c` and reads and writes files on the machine star-deploy runs on, as the user running it. Use @local; it takes no address and no data keys."
}

// Fields returns nil: the local connector takes no data keys.
func (Factory) Fields() []connectors.Field { return nil }

// Parse accepts only the empty address of "@local" and no data keys.
func (Factory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if addr != "" {
		return connectors.Target{}, fmt.Errorf("@local takes no address, got %q (did you mean @ssh/%s?)", addr, addr)
	}
	for k := range data {
		return connectors.Target{}, fmt.Errorf("@local takes no data keys, got %q", k)
	}
	return connectors.Target{Scheme: "local", Name: Name}, nil
}

// Open returns a Conn for t. It does no I/O.
func (Factory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %s: %w", Name, err)
	}
	if t.Name == "" {
		t.Name = Name
	}
	t.Scheme = "local"
	return &Conn{target: t}, nil
}

// Conn is a connectors.Connector for this machine. It holds no resources;
// all its methods are safe for concurrent use without limit.
type Conn struct {
	target connectors.Target
	names  names // for Native
}

// New returns a Conn named "@local".
func New() *Conn {
	return &Conn{target: connectors.Target{Scheme: "local", Name: Name}}
}

// Target returns the target the Conn was opened for.
func (c *Conn) Target() connectors.Target { return c.target }

// Capabilities reports unlimited sessions, no PTY and atomic Put.
func (c *Conn) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{MaxSessions: 0, PTY: false, AtomicPut: true}
}

// Close does nothing; it is safe to call any number of times.
func (c *Conn) Close() error { return nil }

// Run runs `sh -c cmd.Script` in a new process group. Standard output and
// error are captured in the Result and copied live to cmd.Stdout and
// cmd.Stderr when set. cmd.PTY is ignored.
//
// When ctx ends before the command does, the whole process group gets
// SIGTERM and, after a short grace period, SIGKILL; Run then returns an
// error wrapping ctx.Err(). A command that exits normally keeps any
// background processes it started; Run waits at most about a second for them
// to close its output.
func (c *Conn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	return connectors.RunProcess(ctx, c.target.Name, exec.Command("sh", "-c", cmd.Script), cmd)
}

// Put streams src into dst with permission bits mode, atomically, as
// connectors.PutAt does in dst's directory: a temporary file there
// (connectors.TempName, 0600 from its creation) gets the owner and group
// of an existing dst where it may (always as root), its mode (regardless
// of the umask), is synced and renamed over dst. On any error, including
// ctx ending, the temporary file is removed and dst is left as it was. A
// symbolic link at dst is replaced, not followed. A nil src writes an
// empty file.
func (c *Conn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) (err error) {
	defer connectors.PutError(&err, dst, c.target.Name)
	if src, err = connectors.CheckPut(ctx, dst, src); err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	d, err := openDir(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	defer d.Close()
	return connectors.PutAt(ctx, d, dir, filepath.Base(dst), src, mode)
}

// Get streams the file src into dst. A missing src yields an error wrapping
// fs.ErrNotExist; ctx is checked between chunks.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	return connectors.GetFile(ctx, src, c.target.Name, dst, func() (*os.File, error) { return os.Open(src) })
}

// openDir opens the directory dir for connectors.PutAt.
func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, dirFlags, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), dir), nil
}
