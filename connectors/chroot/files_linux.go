//go:build linux

package chroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

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
// mode, atomically, as connectors.PutAt does in dst's directory, opened
// within the chroot.
func (c *Conn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) (err error) {
	defer connectors.PutError(&err, dst, c.target.Name)
	if src, err = connectors.CheckPut(ctx, dst, src); err != nil {
		return err
	}
	dst = path.Join("/", dst) // relative to the chroot's working directory, /
	dirName := path.Dir(dst)
	dir, err := c.openIn(dirName, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("directory %s: %w", dirName, fs.ErrNotExist)
		}
		return err
	}
	defer dir.Close()
	return connectors.PutAt(ctx, dir, dirName, path.Base(dst), src, mode)
}

// Get streams the file src (a path inside the chroot) into dst. A missing
// src yields an error wrapping fs.ErrNotExist.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	return connectors.GetFile(ctx, src, c.target.Name, dst, func() (*os.File, error) {
		return c.openIn(path.Join("/", src), unix.O_RDONLY, 0)
	})
}
