package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/star-deploy/star-deploy/builtins"
)

// remotePrefix starts remote loads and the keys of remote modules.
const remotePrefix = "git+"

// isRemote reports whether load(name) in the module from is a remote
// module's: a git+ load, an @NAME// load other than the stdlib's, or a
// relative load from a remote module.
func isRemote(from, name string) bool {
	if strings.HasPrefix(name, stdlibPrefix) {
		return false
	}
	if strings.HasPrefix(name, remotePrefix) || strings.HasPrefix(from, remotePrefix) {
		return true
	}
	alias, _, ok := strings.Cut(strings.TrimPrefix(name, "@"), "//")
	return strings.HasPrefix(name, "@") && ok && alias != "" && !strings.Contains(alias, "/")
}

// resolveRemote returns the key of a remote load through Options.Remote,
// refusing it (ErrSandbox) when remote loads are off or the key has none of
// the prefixes of Options.RemoteAllow.
func (r *Runner) resolveRemote(from, name string) (string, error) {
	if r.opts.Remote == nil && strings.HasPrefix(name, "@") {
		return "", fmt.Errorf("load(%q): unknown module prefix; use @stdlib//NAME.star or a path relative to %s", name, from)
	}
	if r.opts.Remote == nil || len(r.opts.RemoteAllow) == 0 {
		return "", refusef("load(%q): remote modules are off here (the app allows them with Options.Remote and Options.RemoteAllow)", name)
	}
	key, err := r.opts.Remote.Resolve(from, name)
	if err != nil {
		return "", fmt.Errorf("load(%q): %w", name, err)
	}
	if !strings.HasPrefix(key, remotePrefix) {
		return "", fmt.Errorf("internal error: load(%q): the key %q of Options.Remote does not start with %s", name, key, remotePrefix)
	}
	if r.remoteAllowed(key) {
		return key, nil
	}
	return "", refusef("load(%q): %s is not an allowed source here (allowed: %s)", name, key, strings.Join(r.opts.RemoteAllow, ", "))
}

// remoteAllowed reports whether key starts with a prefix of
// Options.RemoteAllow.
func (r *Runner) remoteAllowed(key string) bool {
	for _, p := range r.opts.RemoteAllow {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// remoteFiles is the builtins.LocalFS of a run that serves remote modules:
// a relative put(src=) or template() in a remote module names a file of
// its repository (builtins.ModuleFiles), which Options.Remote reads at the
// module's commit, as it reads modules (a lock checks and pins it too);
// every other path goes to the run's own LocalFS. Nothing of a repository
// can be listed or written.
type remoteFiles struct {
	builtins.LocalFS
	remote RemoteModules
}

var _ builtins.ModuleFiles = remoteFiles{}

// Unwrap returns the run's own LocalFS.
func (f remoteFiles) Unwrap() builtins.LocalFS { return f.LocalFS }

// Join is the key of rel, relative to the remote module from.
func (f remoteFiles) Join(from, rel string) (string, error) {
	return f.remote.Resolve(from, rel)
}

// Open reads the file key of a repository whole (Options.Remote returns
// content, not a stream), or opens a path of the run's LocalFS. The
// module's commit was read when the module loaded, so this reads what the
// cache holds, without a context to cancel.
func (f remoteFiles) Open(p string) (io.ReadCloser, error) {
	if !strings.HasPrefix(p, remotePrefix) {
		return f.LocalFS.Open(p)
	}
	b, err := f.remote.Read(context.Background(), p)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// ReadDir lists a path of the run's LocalFS; a repository's directories
// cannot be listed.
func (f remoteFiles) ReadDir(p string) ([]fs.DirEntry, error) {
	if strings.HasPrefix(p, remotePrefix) {
		return nil, fmt.Errorf("%s: the directories of a remote module's repository cannot be listed", p)
	}
	return f.LocalFS.ReadDir(p)
}
