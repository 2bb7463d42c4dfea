package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.starlark.net/syntax"
)

// Options say what Make packs.
type Options struct {
	// Scripts are the entry scripts, paths on this machine, in the order
	// they run.
	Scripts []string
	// Root is the deploy's directory: every script and relative module
	// must be under it, and its files are packed. "" means the directory of
	// the first script.
	Root string
	// Include, when not empty, packs only the files under Root that match
	// one of these globs; Exclude leaves out those that match one (see
	// Match). Scripts and the modules they load are packed whatever these
	// say.
	Include, Exclude []string
	// Output is the file the bundle will be written to; it and its .sig are
	// never packed.
	Output string
	// Stdlib is the embedded stdlib (stdlib.FS), which serves @stdlib//
	// loads; nil refuses them.
	Stdlib fs.FS
	// StarDeploy is the version of star-deploy making the bundle.
	StarDeploy string
	// Hosts is inventory data to carry, by host name; nil for none.
	Hosts map[string]HostData
	// Remote serves the remote modules the scripts load
	// (load("git+…//x.star"), load("@web//x.star")): given the module
	// loading (a path under Root, or the Key of a remote module) and the
	// load string, the module at its locked commit. nil refuses remote
	// loads. ModuleAliases are the config file's modules, which a run of
	// the bundle resolves @NAME// loads with.
	Remote        func(from, name string) (RemoteModule, error)
	ModuleAliases map[string]string
	// RemoteFiles, when not nil, gives the other files of a remote source
	// (git+URL@REF) the scripts load from, which the bundle carries too:
	// those that put() and template() in its modules read (the lock file's
	// files other than modules).
	RemoteFiles func(source string) ([]RemoteModule, error)
	// FileOptions is the Starlark dialect scripts are parsed with to find
	// their load() statements: runtime.FileOptions(). nil means the
	// runtime's dialect as of this format (set, while, top-level control,
	// global reassignment).
	FileOptions *syntax.FileOptions
}

// skipDirs are the directories never packed: version control metadata;
// skipFiles the files: other bundles and their signatures.
var (
	skipDirs  = []string{".git", ".hg", ".svn"}
	skipFiles = []string{"*.bundle", "*.bundle.sig"}
)

// Make builds a bundle from opts and returns its bytes and manifest. It
// follows load() statically from every script: relative modules come from
// under Root, @stdlib// modules from Options.Stdlib. Errors name the file
// (and line) at fault.
func Make(opts Options) ([]byte, *Manifest, error) {
	if len(opts.Scripts) == 0 {
		return nil, nil, errors.New("no scripts to bundle")
	}
	root := opts.Root
	if root == "" {
		root = filepath.Dir(opts.Scripts[0])
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, nil, err
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, nil, fmt.Errorf("bundle root: %w", err)
	} else if !fi.IsDir() {
		return nil, nil, fmt.Errorf("bundle root %s is not a directory", root)
	}
	for _, pats := range [][]string{opts.Include, opts.Exclude} {
		for _, p := range pats {
			if _, err := path.Match(p, ""); err != nil {
				return nil, nil, fmt.Errorf("glob %q: %w", p, err)
			}
		}
	}
	skip := map[string]bool{}
	if opts.Output != "" {
		if out, err := filepath.Abs(opts.Output); err == nil {
			skip[out], skip[out+".sig"] = true, true
		}
	}
	files, err := walk(root, opts, skip)
	if err != nil {
		return nil, nil, err
	}

	m := Manifest{Format: FormatVersion, StarDeploy: opts.StarDeploy, Hosts: opts.Hosts}
	if opts.Stdlib != nil {
		if m.StdlibHash, err = StdlibHash(opts.Stdlib); err != nil {
			return nil, nil, fmt.Errorf("stdlib: %w", err)
		}
	}
	l := &loads{root: root, stdlib: opts.Stdlib, files: files, std: map[string][]byte{}, dialect: opts.FileOptions, remote: opts.Remote, modules: map[string]RemoteModule{}}
	if l.dialect == nil {
		l.dialect = fileOptions
	}
	for _, s := range opts.Scripts {
		rel, err := l.rel(s)
		if err != nil {
			return nil, nil, err
		}
		m.Scripts = append(m.Scripts, rel)
		if err := l.follow(rel, ""); err != nil {
			return nil, nil, err
		}
	}
	if err := l.remoteFiles(opts.RemoteFiles); err != nil {
		return nil, nil, err
	}

	var entries []entry
	for _, p := range slices.Sorted(maps.Keys(files)) {
		f := files[p]
		entries = append(entries, entry{name: filesDir + p, data: f.data, exec: f.exec})
		m.Files = append(m.Files, File{Path: p, SHA256: Hash(f.data), Size: int64(len(f.data)), Mode: formatMode(f.exec)})
	}
	m.Files = nonNil(m.Files)
	for _, p := range slices.Sorted(maps.Keys(l.std)) {
		entries = append(entries, entry{name: stdlibDir + p, data: l.std[p]})
		m.Stdlib = append(m.Stdlib, File{Path: p, SHA256: Hash(l.std[p]), Size: int64(len(l.std[p])), Mode: formatMode(false)})
	}
	m.Stdlib = nonNil(m.Stdlib)
	for _, key := range slices.Sorted(maps.Keys(l.modules)) {
		mod := l.modules[key]
		p := mod.Commit + "/" + mod.Path
		if m.ModuleSources == nil {
			m.ModuleSources, m.ModuleAliases = map[string]string{}, opts.ModuleAliases
		}
		m.ModuleSources[mod.Source] = mod.Commit
		if slices.ContainsFunc(m.Modules, func(f File) bool { return f.Path == p }) {
			continue // another source at the same commit
		}
		entries = append(entries, entry{name: modulesDir + p, data: mod.Data})
		m.Modules = append(m.Modules, File{Path: p, SHA256: Hash(mod.Data), Size: int64(len(mod.Data)), Mode: formatMode(false)})
	}
	b, err := archive(m, entries)
	if err != nil {
		return nil, nil, err
	}
	return b, &m, nil
}

func nonNil(fs []File) []File {
	if fs == nil {
		return []File{}
	}
	return fs
}

// localFile is a file read from under the root.
type localFile struct {
	data []byte
	exec bool
}

// walk reads the files under root that the globs select. Links to regular
// files are packed as the file they point to; links to directories are not
// followed.
func walk(root string, opts Options, skip map[string]bool) (map[string]localFile, error) {
	files := map[string]localFile{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (slices.Contains(skipDirs, d.Name()) || Match(opts.Exclude, rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if skip[p] || Match(skipFiles, rel) || Match(opts.Exclude, rel) || (len(opts.Include) > 0 && !Match(opts.Include, rel)) {
			return nil
		}
		fi, err := os.Stat(p) // follows a link
		if err != nil || !fi.Mode().IsRegular() {
			return nil // a dangling link, a link to a directory, a socket...
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = localFile{data: data, exec: fi.Mode()&0o111 != 0}
		return nil
	})
	return files, err
}

// Match reports whether the slash-separated path rel matches one of the
// globs (path.Match syntax: *, ?, [a-z]). A glob matches a path when it
// matches the whole path or one of its leading directories (so "secrets"
// and "files/*" cover what is under them); a glob without a slash also
// matches any single element of the path ("*.pyc", ".env").
func Match(globs []string, rel string) bool {
	elems := strings.Split(rel, "/")
	for _, g := range globs {
		g = strings.TrimSuffix(strings.TrimPrefix(g, "./"), "/")
		for i := 1; i <= len(elems); i++ {
			if ok, _ := path.Match(g, strings.Join(elems[:i], "/")); ok {
				return true
			}
		}
		if !strings.Contains(g, "/") {
			for _, e := range elems {
				if ok, _ := path.Match(g, e); ok {
					return true
				}
			}
		}
	}
	return false
}

// loads follows load() statements from the scripts.
type loads struct {
	root    string
	stdlib  fs.FS
	files   map[string]localFile // packed files, by path under root
	std     map[string][]byte    // stdlib modules, by name
	done    map[string]bool      // modules already followed: "files:PATH", "stdlib:NAME" or "remote:KEY"
	dialect *syntax.FileOptions
	remote  func(from, name string) (RemoteModule, error)
	modules map[string]RemoteModule // remote modules, by key
}

// RemoteModule is a remote module a bundle carries, read at its locked
// commit.
type RemoteModule struct {
	Key    string // what a run loads it by: git+URL@REF//PATH
	Source string // git+URL@REF
	Commit string // the full commit id
	Path   string // the file in the repository
	Data   []byte
}

// check refuses a RemoteModule whose commit or path would not pack.
func (m RemoteModule) check() error {
	if !fs.ValidPath(m.Commit+"/"+m.Path) || len(m.Commit) != 40 {
		return fmt.Errorf("internal error: remote file %s at %q", m.Key, m.Commit)
	}
	return nil
}

// followRemote packs the remote module load(name) in the module from
// names, then every module it loads.
func (l *loads) followRemote(from, name string, at func(string, ...any) error) error {
	if l.remote == nil {
		return at("only modules relative to the script and @stdlib// modules can be bundled")
	}
	m, err := l.remote(from, name)
	if err != nil {
		return at("%v", err)
	}
	if l.done["remote:"+m.Key] {
		return nil
	}
	l.done["remote:"+m.Key] = true
	if err := m.check(); err != nil {
		return at("%v", err)
	}
	l.modules[m.Key] = m
	return l.eachLoad(m.Key, m.Data, func(ls *syntax.LoadStmt) error {
		name := ls.ModuleName()
		at := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d:%d: load(%q): %s", m.Key, ls.Load.Line, ls.Load.Col, name, fmt.Sprintf(format, args...))
		}
		switch {
		case !strings.HasPrefix(name, stdlibPrefix):
			return l.followRemote(m.Key, name, at)
		case l.stdlib == nil:
			return at("no stdlib to bundle it from")
		}
		return l.follow("", strings.TrimPrefix(name, stdlibPrefix))
	})
}

// remoteFiles adds the files that get gives for each source of the remote
// modules followed.
func (l *loads) remoteFiles(get func(source string) ([]RemoteModule, error)) error {
	if get == nil {
		return nil
	}
	sources := map[string]bool{}
	for _, m := range l.modules {
		sources[m.Source] = true
	}
	for _, src := range slices.Sorted(maps.Keys(sources)) {
		files, err := get(src)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		for _, f := range files {
			if err := f.check(); err != nil {
				return err
			}
			if _, ok := l.modules[f.Key]; !ok {
				l.modules[f.Key] = f
			}
		}
	}
	return nil
}

// rel returns the path of the OS file p under the root.
func (l *loads) rel(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(l.root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("script %s is outside the bundle root %s (set --root to a directory that holds every script)", p, l.root)
	}
	return filepath.ToSlash(rel), nil
}

// follow packs the module at rel (under the root, or a stdlib module when
// std), then every module it loads.
func (l *loads) follow(rel string, std string) error {
	if l.done == nil {
		l.done = map[string]bool{}
	}
	key := "files:" + rel
	if std != "" {
		key = "stdlib:" + std
	}
	if l.done[key] {
		return nil
	}
	l.done[key] = true
	var src []byte
	display := rel
	if std != "" {
		display = stdlibPrefix + std
		b, err := fs.ReadFile(l.stdlib, std)
		if err != nil {
			return fmt.Errorf("no stdlib module %q", std)
		}
		l.std[std], src = b, b
	} else {
		f, ok := l.files[rel]
		if !ok {
			b, err := os.ReadFile(filepath.Join(l.root, filepath.FromSlash(rel)))
			if err != nil {
				return err
			}
			fi, _ := os.Stat(filepath.Join(l.root, filepath.FromSlash(rel)))
			f = localFile{data: b, exec: fi != nil && fi.Mode()&0o111 != 0}
			l.files[rel] = f // a script or module is packed whatever the globs say
		}
		src = f.data
	}
	return l.eachLoad(display, src, func(ls *syntax.LoadStmt) error {
		return l.load(display, rel, std, ls)
	})
}

// eachLoad parses the module src (named display) and calls fn with each of
// its load statements, in order, until one fails.
func (l *loads) eachLoad(display string, src []byte, fn func(*syntax.LoadStmt) error) error {
	file, err := l.dialect.Parse(display, src, 0)
	if err != nil {
		return err
	}
	var loadErr error
	syntax.Walk(file, func(n syntax.Node) bool {
		ls, ok := n.(*syntax.LoadStmt)
		if !ok || loadErr != nil {
			return loadErr == nil
		}
		loadErr = fn(ls)
		return false
	})
	return loadErr
}

const stdlibPrefix = "@stdlib//"

// load follows one load statement of the module rel (or stdlib module std).
func (l *loads) load(display, rel, std string, ls *syntax.LoadStmt) error {
	name := ls.ModuleName()
	at := func(format string, args ...any) error {
		pos := ls.Load
		return fmt.Errorf("%s:%d:%d: load(%q): %s", display, pos.Line, pos.Col, name, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.HasPrefix(name, stdlibPrefix):
		if l.stdlib == nil {
			return at("no stdlib to bundle it from")
		}
		return l.follow("", strings.TrimPrefix(name, stdlibPrefix))
	case strings.HasPrefix(name, "@") || strings.Contains(name, "://"):
		if std != "" {
			return at("only modules relative to the script and @stdlib// modules can be bundled")
		}
		return l.followRemote(rel, name, at)
	case std != "":
		return l.follow("", path.Clean(path.Join(path.Dir(std), name)))
	case path.IsAbs(name):
		return at("an absolute path cannot be bundled; load modules by a path relative to the script")
	}
	target := path.Join(path.Dir(rel), name)
	if !fs.ValidPath(target) {
		return at("the module is outside the bundle root %s (set --root to a directory that holds it)", l.root)
	}
	if _, err := os.Stat(filepath.Join(l.root, filepath.FromSlash(target))); err != nil {
		return at("%s does not exist", target)
	}
	return l.follow(target, "")
}

// fileOptions are the runtime's dialect: deploy files are scripts.
var fileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}
