package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/star-deploy/star-deploy/connectors"
)

var _ connectors.Native = (*Conn)(nil)

// maxLinks is how many symbolic links Stat follows, as the shell probe.
const maxLinks = 40

// errNotClean is returned for a path Native does not take.
var errNotClean = errors.New("not an absolute, clean path")

// checkPath refuses what Native leaves to the shell: a relative path (the
// shell would resolve it against chdir=) or an unclean one.
func checkPath(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !path.IsAbs(p) || path.Clean(p) != p {
		return &fs.PathError{Op: "stat", Path: p, Err: errNotClean}
	}
	return nil
}

// missing reports whether err says a path does not exist, as test -e
// and test -L see it.
func missing(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR)
}

// Stat describes p as the file fact's shell probe does (see
// connectors.Native).
func (c *Conn) Stat(ctx context.Context, p string, follow bool) (connectors.FileStat, error) {
	if err := checkPath(ctx, p); err != nil {
		return connectors.FileStat{}, err
	}
	if follow {
		var err error
		if p, err = followLinks(p); err != nil {
			return connectors.FileStat{}, err
		}
	}
	st := connectors.FileStat{Path: p}
	var s syscall.Stat_t
	if err := syscall.Lstat(p, &s); err != nil {
		if missing(err) {
			return st, nil
		}
		return connectors.FileStat{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	owner, err := c.names.user(s.Uid)
	if err != nil {
		return connectors.FileStat{}, err
	}
	group, err := c.names.group(s.Gid)
	if err != nil {
		return connectors.FileStat{}, err
	}
	st.Exists, st.Owner, st.Group, st.Size = true, owner, group, s.Size
	st.Mode = fs.FileMode(s.Mode & 0o7777)
	switch s.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		st.Type = "file"
	case syscall.S_IFDIR:
		st.Type = "directory"
	case syscall.S_IFLNK:
		st.Type = "link"
		if st.Target, err = os.Readlink(p); err != nil {
			return connectors.FileStat{}, err
		}
	default:
		st.Type = "other"
	}
	return st, nil
}

// followLinks follows the links at p as the shell's followProbe does: at
// most maxLinks of them, a relative target against the link's directory;
// when there was one, the directory of the end is resolved physically
// (cd -P, pwd -P). A loop, a directory that is missing or cannot be
// entered, and a target the shell's $(readlink) would change (a newline in
// it) are errors.
func followLinks(p string) (string, error) {
	orig := p
	n := 0
	for {
		fi, err := os.Lstat(p)
		if err != nil {
			if missing(err) {
				break
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		if n++; n > maxLinks {
			return "", &fs.PathError{Op: "follow", Path: orig, Err: syscall.ELOOP}
		}
		l, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if l == "" || strings.ContainsRune(l, '\n') {
			return "", &fs.PathError{Op: "readlink", Path: p, Err: errors.New("a target the shell would change")}
		}
		if strings.HasPrefix(l, "/") {
			p = l
		} else {
			p = p[:strings.LastIndexByte(p, '/')] + "/" + l
		}
	}
	if n == 0 {
		return p, nil
	}
	slash := strings.LastIndexByte(p, '/')
	d, err := filepath.EvalSymlinks(p[:slash] + "/")
	if err != nil {
		return "", fmt.Errorf("the directory of its target %s: %w", p, err)
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() || unix.Access(d, unix.X_OK) != nil {
		return "", fmt.Errorf("the directory of its target %s cannot be entered", p)
	}
	return strings.TrimSuffix(d, "/") + "/" + p[slash+1:], nil
}

// SHA256 returns the hex SHA-256 of the regular file p, streamed.
func (c *Conn) SHA256(ctx context.Context, p string) (string, error) {
	if err := checkPath(ctx, p); err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", &fs.PathError{Op: "hash", Path: p, Err: errors.New("not a regular file")}
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, connectors.ContextReader(ctx, f)); err != nil {
		return "", fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// ReadFile returns the content of the regular file p (see
// connectors.Native).
func (c *Conn) ReadFile(ctx context.Context, p string, max int64) ([]byte, error) {
	if err := checkPath(ctx, p); err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if missing(err) {
			return nil, &fs.PathError{Op: "read", Path: p, Err: fs.ErrNotExist}
		}
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(connectors.ContextReader(ctx, f), max+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("larger than %d bytes", max)}
	}
	return buf.Bytes(), nil
}

// Chmod sets the mode of p, following links.
func (c *Conn) Chmod(ctx context.Context, p string, mode fs.FileMode) error {
	if err := checkPath(ctx, p); err != nil {
		return err
	}
	// Not os.Chmod: it drops set-id bits given as Unix's bits.
	if err := syscall.Chmod(p, connectors.UnixMode(mode)); err != nil {
		return &fs.PathError{Op: "chmod", Path: p, Err: err}
	}
	return nil
}

// Chown sets the owner and group of p by name, following links.
func (c *Conn) Chown(ctx context.Context, p, owner, group string) error {
	if err := checkPath(ctx, p); err != nil {
		return err
	}
	uid, gid := -1, -1
	var err error
	if owner != "" {
		if uid, err = c.names.uid(owner); err != nil {
			return err
		}
	}
	if group != "" {
		if gid, err = c.names.gid(group); err != nil {
			return err
		}
	}
	return os.Chown(p, uid, gid)
}

// Sweep removes from dir what connectors.SweepScript(dir, r) removes.
func (c *Conn) Sweep(ctx context.Context, dir string, r connectors.Run) {
	cutoff := connectors.SweepCutoff(r, time.Now())
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		if !connectors.Swept(e.Name(), r) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.ModTime().Unix() < cutoff {
			_ = os.Remove(p)
		}
	}
}

// Tree lists the entries under dir as the tree fact's shell probe does
// (see connectors.Native).
func (c *Conn) Tree(ctx context.Context, dir string, max int64) (map[string]string, error) {
	if err := checkPath(ctx, dir); err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	switch {
	case missing(err):
		return nil, nil
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, nil
	}
	// cd follows dir's links; the walk starts where they end.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	if unix.Access(root, unix.X_OK) != nil {
		return nil, &fs.PathError{Op: "cd", Path: dir, Err: fs.ErrPermission}
	}
	types := map[string]string{}
	n, size := 0, int64(0)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if p == root {
			return nil
		}
		rel := strings.TrimPrefix(p[len(root):], "/")
		if strings.Contains(rel, "\n") {
			return &fs.PathError{Op: "list", Path: p, Err: errors.New("a name with a newline")}
		}
		typ := "other"
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			typ = "link"
		case t.IsDir():
			typ = "directory"
		case t.IsRegular():
			typ = "file"
		}
		// The probe's line: TYPE ./PATH and a newline.
		if size += int64(len(typ) + len(rel) + 4); size >= max {
			return &fs.PathError{Op: "list", Path: dir, Err: fmt.Errorf("the listing reaches %d bytes", max)}
		}
		types[rel] = typ
		return nil
	})
	if err != nil {
		return nil, err
	}
	return types, nil
}

// Uname returns uname(2)'s system, node and machine names.
func (c *Conn) Uname(ctx context.Context) (connectors.Uname, error) {
	if err := ctx.Err(); err != nil {
		return connectors.Uname{}, err
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return connectors.Uname{}, fmt.Errorf("uname: %w", err)
	}
	return connectors.Uname{Sysname: unix.ByteSliceToString(u.Sysname[:]), Nodename: unix.ByteSliceToString(u.Nodename[:]), Machine: unix.ByteSliceToString(u.Machine[:])}, nil
}

// names caches the user and group names Native looked up: the user
// database is read once per id and name. A name not found is not cached
// (the caller falls back to the shell).
type names struct {
	mu sync.Mutex
	m  map[string]string
}

// get returns the cached value of key, or looks it up.
func (n *names) get(key string, look func() (string, error)) (string, error) {
	n.mu.Lock()
	v, ok := n.m[key]
	n.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := look()
	if err != nil {
		return "", err
	}
	n.mu.Lock()
	if n.m == nil {
		n.m = map[string]string{}
	}
	n.m[key] = v
	n.mu.Unlock()
	return v, nil
}

func (n *names) user(uid uint32) (string, error) {
	return n.get("u"+strconv.FormatUint(uint64(uid), 10), func() (string, error) {
		u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

func (n *names) group(gid uint32) (string, error) {
	return n.get("g"+strconv.FormatUint(uint64(gid), 10), func() (string, error) {
		g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10))
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

func (n *names) uid(name string) (int, error) {
	id, err := n.get("U"+name, func() (string, error) {
		u, err := user.Lookup(name)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(id)
}

func (n *names) gid(name string) (int, error) {
	id, err := n.get("G"+name, func() (string, error) {
		g, err := user.LookupGroup(name)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(id)
}
