package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/builtins"
)

// Sandbox restricts what scripts run by a Runner can reach, for apps that
// run automation their users wrote. With a Sandbox:
//
//   - Local files come from Files only: Compile with a nil src, load(),
//     put(src=), template() and local_tree() name slash-separated paths
//     inside it. Absolute paths, paths that climb out with "..", and
//     symbolic links that point outside are refused. get() cannot write
//     local files.
//   - Only the builtins whose declared effects are all within Effects are
//     defined (docs/builtins.md lists each builtin's); a script that uses
//     another fails to compile with "undefined: put (put is not available
//     here: the sandbox does not allow the local-fs effect)", an error
//     that matches ErrSandbox. Options.Builtins are added as given.
//     put(content=) reads no local file but needs local-fs like
//     put(src=): effects are declared per builtin and checked when the
//     script compiles. A sandbox with local-fs and no Files lets content=
//     through and refuses every src=.
//     The embedded stdlib is compiled against the same builtins, except
//     that an optional one (rsync) that is withheld is a false value
//     there, which fails when called with the same message: files.rsync
//     tests `if rsync:` and falls back to files.sync.
//   - Hosts whose connector scheme is not in Connectors fail before they
//     are opened.
//   - A host's print() output is capped at MaxOutput bytes.
//   - range() refuses more than 1<<24 elements, so that what copies a range
//     stays small: outside a sandbox list() and its kind refuse only more
//     than builtins.MaxElements (1<<28) items, and x.extend(range(n)) or
//     x += range(n) are not bounded at all but by memory.
//
// Options.MaxSteps and Options.Timeout bound the CPU and wall-clock time of
// a run. Memory cannot be bounded inside one process; see RunIsolated.
type Sandbox struct {
	// Files is the only file system scripts can read. Use DirFS for a
	// directory (os.DirFS follows symbolic links out of its root, so a
	// Runner replaces it with DirFS of the same directory). nil means no
	// local files at all.
	Files fs.FS
	// Effects are the effects a builtin may have to be defined: a
	// combination of EffectReadHost, EffectWriteHost, EffectLocalFS,
	// EffectNetwork and EffectLocalExec. The zero value allows pure builtins
	// only (quote, re, ...).
	Effects Effect
	// Connectors are the connector schemes ("local", "ssh", "docker", or an
	// app's own) hosts may use. Empty allows none.
	Connectors []string
	// MaxOutput caps the bytes of print() output of one host; 0 means 1 MiB.
	MaxOutput int
}

const defaultMaxOutput = 1 << 20

// DirFS returns a read-only file system of the tree at dir that refuses
// symbolic links leading out of it (an os.Root's FS). It fails when dir
// cannot be opened.
func DirFS(dir string) (fs.FS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return root.FS(), nil
}

// sandboxFiles replaces an os.DirFS, which follows links out of its root,
// by DirFS of the same directory.
func sandboxFiles(fsys fs.FS) (fs.FS, error) {
	if fsys == nil {
		return nil, nil
	}
	v := reflect.ValueOf(fsys)
	if v.Type().String() == "os.dirFS" && v.Kind() == reflect.String {
		return DirFS(v.String())
	}
	return fsys, nil
}

// errNoFiles is the error of a local read in a sandbox without Files.
var errNoFiles = refusef("this sandbox has no local files")

// sandboxPath turns a path a script named into a path inside the sandbox's
// file system, or explains why it is refused.
func sandboxPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || (len(p) > 1 && p[1] == ':') {
		return "", refusef("%s: absolute paths are not allowed in the sandbox; name a file relative to the script", p)
	}
	clean := path.Clean(p)
	if !fs.ValidPath(clean) {
		return "", refusef("%s: the path leaves the sandbox", p)
	}
	return clean, nil
}

// sandboxLocal is the builtins.LocalFS of a sandboxed run: the app's fs.FS,
// read only.
type sandboxLocal struct{ fsys fs.FS }

func (s sandboxLocal) Open(p string) (io.ReadCloser, error)    { return openSandboxed(s.fsys, p) }
func (s sandboxLocal) ReadDir(p string) ([]fs.DirEntry, error) { return readDirSandboxed(s.fsys, p) }
func (s sandboxLocal) CanWrite() bool                          { return false } // get() refuses to write local files
func (s sandboxLocal) WriteFile(p string, _ io.Reader) error {
	return fmt.Errorf("%s: writing local files is not allowed here", p)
}

// openSandboxed opens p in fsys for put(src=) and template().
func openSandboxed(fsys fs.FS, p string) (io.ReadCloser, error) {
	if fsys == nil {
		return nil, fmt.Errorf("%s: %w", p, errNoFiles)
	}
	clean, err := sandboxPath(p)
	if err != nil {
		return nil, err
	}
	f, err := fsys.Open(clean)
	if err != nil {
		return nil, sandboxError(p, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s: not a regular file", p)
		}
		return nil, err
	}
	return f, nil
}

// readDirSandboxed lists p in fsys for local_tree(); links are listed as
// links, never followed.
func readDirSandboxed(fsys fs.FS, p string) ([]fs.DirEntry, error) {
	if fsys == nil {
		return nil, fmt.Errorf("%s: %w", p, errNoFiles)
	}
	clean, err := sandboxPath(p)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(fsys, clean)
	if err != nil {
		return nil, sandboxError(p, err)
	}
	return entries, nil
}

// sandboxError reports a failed open without the app's own paths.
func sandboxError(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if strings.Contains(err.Error(), "escapes") || strings.Contains(err.Error(), "path escapes from parent") {
		return refusef("%s: the path leaves the sandbox (a link points outside it)", p)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// connectorAllowed reports whether a sandbox lets hosts use scheme.
func (s *Sandbox) connectorAllowed(scheme string) bool {
	return slices.Contains(s.Connectors, scheme)
}

// outputCap counts a host's print() bytes against a sandbox's MaxOutput.
type outputCap struct {
	mu   sync.Mutex
	left int
}

func newOutputCap(max int) *outputCap {
	if max <= 0 {
		max = defaultMaxOutput
	}
	return &outputCap{left: max}
}

// take reports whether n more bytes of output fit.
func (c *outputCap) take(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > c.left {
		c.left = 0
		return false
	}
	c.left -= n
	return true
}

// maxRange is the most elements a range() may have in a sandbox.
const maxRange = 1 << 24

// sandboxRange is range() with a bound on its length.
var sandboxRange = starlark.NewBuiltin("range", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	v, err := starlark.Call(thread, starlark.Universe["range"], args, kw)
	if err != nil {
		return nil, err
	}
	if n := starlark.Len(v); n > maxRange {
		return nil, refusef("range: %d elements is more than the sandbox allows (%d)", n, maxRange)
	}
	return v, nil
})

// withheldBuiltin stands for an optional builtin the sandbox withholds, in
// stdlib modules: it is false (`if rsync:`), and calling it fails with the
// sandbox's refusal.
type withheldBuiltin struct {
	name    string
	missing Effect
}

var _ starlark.Callable = withheldBuiltin{}

func (w withheldBuiltin) String() string        { return "<withheld builtin " + w.name + ">" }
func (w withheldBuiltin) Type() string          { return "withheld_builtin" }
func (w withheldBuiltin) Freeze()               {}
func (w withheldBuiltin) Truth() starlark.Bool  { return false }
func (w withheldBuiltin) Hash() (uint32, error) { return starlark.String(w.name).Hash() }
func (w withheldBuiltin) Name() string          { return w.name }
func (w withheldBuiltin) CallInternal(*starlark.Thread, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	effects := "effect"
	if strings.Contains(w.missing.String(), "+") {
		effects += "s"
	}
	return nil, refusef("%s is not available here: the sandbox does not allow the %s %s", w.name, w.missing, effects)
}

// withWithheld returns globals with a withheldBuiltin for each optional
// builtin (builtins.Spec.Optional) in withheld, for stdlib modules; globals
// itself when there is none.
func withWithheld(globals starlark.StringDict, withheld map[string]Effect) starlark.StringDict {
	stubs := starlark.StringDict{}
	for _, s := range builtins.All() {
		if missing, ok := withheld[s.Name]; ok && s.Optional {
			stubs[s.Name] = withheldBuiltin{s.Name, missing}
		}
	}
	if len(stubs) == 0 {
		return globals
	}
	out := make(starlark.StringDict, len(globals)+len(stubs))
	for k, v := range globals {
		out[k] = v
	}
	for k, v := range stubs {
		out[k] = v
	}
	out.Freeze()
	return out
}

// predeclared returns the predeclared names of the file or module key.
func (r *Runner) predeclared(key string) starlark.StringDict {
	if strings.HasPrefix(key, stdlibPrefix) {
		return r.stdlibGlobals
	}
	return r.globals
}
