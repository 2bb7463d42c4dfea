// Package fileowner tells whether files and directories are the running
// user's alone. The caches star-deploy reads back (compiled stdlib modules,
// fetched remote modules) trust nothing another user could have written,
// as git refuses a repository another user owns: root run with another
// user's HOME (sudo -E, or macOS's sudo) must not run code that user put
// in "its" cache. It imports only the standard library.
package fileowner

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Of returns the uid that owns fi, or -1 when the system does not say.
func Of(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// Mine reports whether fi is owned by the running user (the effective uid)
// and writable by no one else.
func Mine(fi fs.FileInfo) bool {
	return Of(fi) == os.Geteuid() && fi.Mode().Perm()&0o022 == 0
}

// Dir reports whether dir may hold what the running user trusts: it is a
// directory (not a symbolic link) that is Mine, or it does not exist and
// its nearest existing parent is a directory that is Mine, so that the
// directories os.MkdirAll makes are the running user's and no one else can
// make them first. When it may not, at is the directory in the way and
// owner its uid.
func Dir(dir string) (ok bool, at string, owner int) {
	if fi, err := os.Lstat(dir); err == nil {
		return fi.IsDir() && Mine(fi), dir, Of(fi)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil {
			return fi.IsDir() && Mine(fi), p, Of(fi)
		}
		if p == filepath.Dir(p) {
			return false, p, -1
		}
	}
}
