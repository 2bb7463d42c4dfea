//go:build linux

package chroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/star-deploy/star-deploy/connectors"
)

// openIn opens name, a path as seen inside the chroot, with openat2 and
// RESOLVE_IN_ROOT: "..", and symbolic links absolute or relative, resolve
// within c.dir as they would for a process chrooted there.
func (c *Conn) openIn(name string, flags int, mode uint32) (*os.File, error) {
	root, err := unix.Open(c.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: c.dir, Err: err}
	}
	defer unix.Close(root)
	for {
		fd, err := unix.Openat2(root, name, &unix.OpenHow{
			Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), name), nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN): // EAGAIN: a rename raced the lookup
			continue
		case errors.Is(err, unix.ENOSYS):
			return nil, fmt.Errorf("open %s: the kernel has no openat2(2), which @chroot needs (Linux 5.6 or later)", name)
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
}

// Put streams src into dst (a path inside the chroot) with permission bits
// mode, atomically: a temporary file in dst's directory
// (connectors.TempName, 0600 from its creation), given the owner and group
// of an existing dst, its mode set, synced and renamed over dst. On any
// error, including ctx ending, the temporary file is removed and dst is
// left as it was. A symbolic link at dst is replaced, not followed.
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
		return errors.New("destination must name a file")
	}
	dst = path.Join("/", dst) // relative to the chroot's working directory, /
	dirName, base := path.Dir(dst), path.Base(dst)
	dir, err := c.openIn(dirName, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("directory %s: %w", dirName, fs.ErrNotExist)
		}
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())

	var fd int
	var tmp string
	for i := 0; ; i++ {
		tmp = path.Base(connectors.TempName(ctx, dst))
		fd, err = unix.Openat(dfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || i == 10 {
			return &fs.PathError{Op: "create", Path: path.Join(dirName, tmp), Err: err}
		}
	}
	f := os.NewFile(uintptr(fd), path.Join(dirName, tmp))
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	var old unix.Stat_t
	if unix.Fstatat(dfd, base, &old, unix.AT_SYMLINK_NOFOLLOW) == nil && old.Mode&unix.S_IFMT == unix.S_IFREG {
		_ = unix.Fchown(fd, int(old.Uid), int(old.Gid)) // we are root
	}
	if _, err := io.Copy(f, connectors.ContextReader(ctx, src)); err != nil {
		return err
	}
	// After the chown, which clears set-id bits.
	if err := unix.Fchmod(fd, connectors.UnixMode(mode)); err != nil {
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
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		return &os.LinkError{Op: "rename", Old: f.Name(), New: dst, Err: err}
	}
	_ = unix.Fsync(dfd) // best effort: makes the rename durable
	return nil
}

// Get streams the file src (a path inside the chroot) into dst. A missing
// src yields an error wrapping fs.ErrNotExist.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err)
	}
	f, err := c.openIn(path.Join("/", src), unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err)
	}
	defer f.Close()
	if _, err := io.Copy(dst, connectors.ContextReader(ctx, f)); err != nil {
		return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err)
	}
	return nil
}
