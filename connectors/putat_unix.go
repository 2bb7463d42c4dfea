//go:build unix

package connectors

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
)

// The Put of the connectors whose files are this machine's (@local,
// @chroot): they differ only in how they open the destination's directory
// (a plain path; a path resolved within the chroot), and share the rest.

// CheckPut is how such a Put starts: ctx not done, a destination that
// names a file. It returns src, or an empty reader for a nil src.
func CheckPut(ctx context.Context, dst string, src io.Reader) (io.Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dst == "" || strings.HasSuffix(dst, "/") {
		return nil, errors.New("destination must name a file")
	}
	if src == nil {
		src = bytes.NewReader(nil)
	}
	return src, nil
}

// PutAt streams src into the file base of the open directory dir (dirName
// in messages) with permission bits mode, atomically: it creates a
// temporary file there (TempName for dirName/base, 0600 from its
// creation, never through a link), gives it the owner and group of an
// existing regular file base where it may (always as root), sets its mode
// (regardless of the umask; after the chown, which may clear set-id bits),
// syncs it and renames it over base, then syncs the directory (best
// effort). On any error, including ctx ending, the temporary file is
// removed and base is left as it was. A symbolic link at base is replaced,
// not followed. dir may be opened with O_PATH.
func PutAt(ctx context.Context, dir *os.File, dirName, base string, src io.Reader, mode fs.FileMode) (err error) {
	dfd := int(dir.Fd())
	dst := path.Join(dirName, base)
	var fd int
	var tmp string
	for i := 0; ; i++ {
		tmp = path.Base(TempName(ctx, dst))
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
			_ = f.Close() // may be closed already; the error is the one above
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	var old unix.Stat_t
	if unix.Fstatat(dfd, base, &old, unix.AT_SYMLINK_NOFOLLOW) == nil && old.Mode&unix.S_IFMT == unix.S_IFREG {
		_ = unix.Fchown(fd, int(old.Uid), int(old.Gid)) // keeps the owner where permitted
	}
	if _, err := io.Copy(f, ContextReader(ctx, src)); err != nil {
		return err
	}
	// Not f.Chmod: it drops set-id bits given as Unix's bits (0o4755),
	// which the builtins pass.
	if err := unix.Fchmod(fd, UnixMode(mode)); err != nil {
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
	// An O_PATH descriptor cannot be synced: open the directory itself.
	if d, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Fsync(d) // best effort: makes the rename durable
		_ = unix.Close(d)
	}
	return nil
}

// PutError wraps the error of a Put of dst on the host name, if any.
func PutError(err *error, dst, name string) {
	if *err != nil {
		*err = fmt.Errorf("put %s on %s: %w", dst, name, *err)
	}
}

// GetFile is the Get of the same connectors: it opens src with open
// (which names src in its error) and streams it into dst, checking ctx
// between chunks; errors say "get SRC from NAME".
func GetFile(ctx context.Context, src, name string, dst io.Writer, open func() (*os.File, error)) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("get %s from %s: %w", src, name, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := open()
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(dst, ContextReader(ctx, f))
	return err
}
