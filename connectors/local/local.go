package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/star-deploy/star-deploy/connectors"
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

// Put streams src into dst with permission bits mode, atomically: it writes
// a temporary file in dst's directory (connectors.TempName, 0600 from its
// creation), gives it the owner and group of an existing dst where it may
// (always as root), sets its mode (regardless of the umask), syncs it and
// renames it over dst. On any error, including ctx ending, the temporary
// file is removed and dst is left as it was. A symbolic link at dst is
// replaced, not followed. A nil src writes an empty file.
func (c *Conn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("put %s on %s: %w", dst, c.target.Name, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	if src == nil {
		src = bytes.NewReader(nil)
	}
	if dst == "" || strings.HasSuffix(dst, "/") {
		return fmt.Errorf("destination must name a file")
	}
	dir := filepath.Dir(dst)
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("directory %s: %w", dir, syscall.ENOTDIR)
	}
	f, err := createTemp(ctx, dst)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may be closed already; the error is the one above
			_ = os.Remove(tmp)
		}
	}()
	if old, err := os.Lstat(dst); err == nil && old.Mode().IsRegular() {
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			_ = f.Chown(int(st.Uid), int(st.Gid)) // keeps the owner where permitted
		}
	}
	if _, err := io.Copy(f, connectors.ContextReader(ctx, src)); err != nil {
		return err
	}
	// After the chown, which may clear set-id bits. Not f.Chmod: it drops
	// set-id bits given as Unix's bits (0o4755), which the builtins pass.
	if err := syscall.Fchmod(int(f.Fd()), connectors.UnixMode(mode)); err != nil {
		return &fs.PathError{Op: "chmod", Path: f.Name(), Err: err}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// createTemp creates a new temporary file for dst, mode 0600, named for
// ctx's run.
func createTemp(ctx context.Context, dst string) (*os.File, error) {
	for i := 0; ; i++ {
		f, err := os.OpenFile(connectors.TempName(ctx, dst), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil || !errors.Is(err, fs.ErrExist) || i == 10 {
			return f, err
		}
	}
}

// syncDir makes a rename in dir durable. It is best effort: some file
// systems refuse to sync a directory, and the rename has happened either way.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// Get streams the file src into dst. A missing src yields an error wrapping
// fs.ErrNotExist; ctx is checked between chunks.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err)
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err)
	}
	defer f.Close()
	if _, err := io.Copy(dst, connectors.ContextReader(ctx, f)); err != nil {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err)
	}
	return nil
}
