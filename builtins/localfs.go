package builtins

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LocalFS is what builtins may do with the files of the machine running
// star-deploy: put src= and template src= open files, local_tree lists
// directories, get dest= writes files. The runtime gives each host OSFiles,
// or, when sandboxed, the app's fs.FS and no writing. Its methods may be
// called from several hosts' goroutines at once.
type LocalFS interface {
	// Open opens the file at path for reading.
	Open(path string) (io.ReadCloser, error)
	// ReadDir lists the directory at path, sorted by name; a link is listed
	// as a link, not followed.
	ReadDir(path string) ([]fs.DirEntry, error)
	// WriteFile atomically replaces the file at path with the content of
	// r, so that a failed write leaves the old file.
	WriteFile(path string, r io.Reader) error
	// CanWrite reports whether WriteFile may be called at all; when it may
	// not, get fails before it touches the host.
	CanWrite() bool
}

// ModuleFiles is a LocalFS that also holds the files of modules that are
// not files of this machine: those of a remote module's repository, whose
// keys start with "git+". A relative put(src=) or template() in such a
// module names a file of its repository: Join returns the name Open takes
// for rel, relative to the module from, or an error when rel leaves the
// repository. A LocalFS without Join refuses such paths. Every other path
// goes to the LocalFS that Unwrap returns.
type ModuleFiles interface {
	LocalFS
	Join(from, rel string) (string, error)
	Unwrap() LocalFS
}

// osFiles reports whether l is OSFiles, this machine's own files, alone or
// under a ModuleFiles.
func osFiles(l LocalFS) bool {
	if mf, ok := l.(ModuleFiles); ok {
		l = mf.Unwrap()
	}
	_, ok := l.(OSFiles)
	return ok
}

// remoteModulePrefix starts the keys of remote modules (runtime.RemoteModules).
const remoteModulePrefix = "git+"

// OSFiles is the LocalFS of this machine's own files.
type OSFiles struct{}

var _ LocalFS = OSFiles{}

// Open opens path with os.Open.
func (OSFiles) Open(path string) (io.ReadCloser, error) { return os.Open(path) }

// ReadDir lists path with os.ReadDir.
func (OSFiles) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(path) }

// CanWrite returns true.
func (OSFiles) CanWrite() bool { return true }

// WriteFile writes r to a temporary file in the directory of p (created if
// missing), mode 0644, and renames it over p.
func (OSFiles) WriteFile(p string, r io.Reader) (err error) {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".star-deploy-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = io.Copy(f, r); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}

// errNoLocalFS is the error of a host without a LocalFS.
var errNoLocalFS = errors.New("local files are not available here")

// noLocalFS is the LocalFS of a host that has none: everything fails.
type noLocalFS struct{}

func (noLocalFS) Open(p string) (io.ReadCloser, error) {
	return nil, fmt.Errorf("%s: %w", p, errNoLocalFS)
}
func (noLocalFS) ReadDir(p string) ([]fs.DirEntry, error) {
	return nil, fmt.Errorf("%s: %w", p, errNoLocalFS)
}
func (noLocalFS) WriteFile(p string, _ io.Reader) error { return fmt.Errorf("%s: %w", p, errNoLocalFS) }
func (noLocalFS) CanWrite() bool                        { return false }

// local returns h.Local, or a LocalFS that refuses everything when h has
// none.
func (h *Host) local() LocalFS {
	if h.Local == nil {
		return noLocalFS{}
	}
	return h.Local
}
