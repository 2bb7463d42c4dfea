package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/star-deploy/star-deploy/internal/fileowner"
)

// Options configure a Resolver.
type Options struct {
	// CacheDir holds the fetched modules, a directory per commit, and the
	// fetched repositories; "" is star-deploy/modules in the user's cache
	// directory (os.UserCacheDir), which must be the running user's alone
	// (internal/fileowner.Dir), or the first read or fetch fails.
	CacheDir string
	// LockFile is the lock file's path; "" keeps the lock in memory only.
	LockFile string
	// Aliases name sources: "web" -> "git+https://host/org/web@v1.4.0"
	// serves load("@web//nginx.star").
	Aliases map[string]string
	// Frozen makes a source or a file missing from the lock an error
	// instead of an entry to add.
	Frozen bool
	// Lock is the lock when LockFile is "" (a bundle's); nil is empty.
	Lock *Lock
	// Files, when set, serves every commit's files (COMMIT/PATH) in place
	// of the cache, and nothing is fetched: a bundle's modules.
	Files fs.FS
	// SSH runs git-upload-pack on the host of a git+ssh:// source (see
	// SSHRunner); nil fetches those with go-git's own SSH transport (the
	// ssh-agent's keys, ~/.ssh/known_hosts or $SSH_KNOWN_HOSTS, and only
	// HostName and Port of ~/.ssh/config).
	SSH SSHRunner
	// Credentials are sent to git+https:// and git+http:// servers (nil
	// sends none); CredentialsFrom says where they come from, for the
	// error of a server that refused a fetch for want of them ("" says
	// none are set). The CLI gives Netrc("") and NetrcHelp().
	Credentials     Credentials
	CredentialsFrom string
	// Helper, when set, is asked for the credentials of a git+https:// or
	// git+http:// server that asked for some Credentials did not hold
	// (the CLI gives GitCredentials()).
	Helper Helper
}

// Resolver serves remote modules (runtime.RemoteModules). It is safe for
// concurrent use.
type Resolver struct {
	opts    Options
	cache   string
	aliases map[string]Spec

	mu      sync.Mutex
	lock    *Lock
	dirty   bool                         // lock differs from the file
	commits map[string]string            // source -> commit, resolved in this process
	used    map[string]map[string]string // source -> path -> sum read in this process
	fetched map[string]bool              // repositories fetched in this process

	checkOwner bool // the cache is the default one, which must be the running user's (ownCache)
}

// New returns a Resolver; it reads the lock file.
func New(opts Options) (*Resolver, error) {
	r := &Resolver{opts: opts, cache: opts.CacheDir, aliases: map[string]Spec{}, commits: map[string]string{}, used: map[string]map[string]string{}, fetched: map[string]bool{}}
	if r.cache == "" && opts.Files == nil {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no cache directory for modules: %w", err)
		}
		r.cache = filepath.Join(dir, "star-deploy", "modules")
		r.checkOwner = true
	}
	for name, src := range opts.Aliases {
		if name == "stdlib" || name == "" || strings.ContainsAny(name, "/@") {
			return nil, fmt.Errorf("modules: %q cannot name a source (stdlib is reserved; names have no / or @)", name)
		}
		s, err := ParseSource(src)
		if err != nil {
			return nil, fmt.Errorf("modules[%q]: %w", name, err)
		}
		r.aliases[name] = s
	}
	r.lock = &Lock{Version: lockVersion, Sources: map[string]*Locked{}}
	if opts.Lock != nil {
		r.lock = opts.Lock
	}
	if opts.LockFile != "" {
		l, err := ReadLock(opts.LockFile)
		if err != nil {
			return nil, err
		}
		r.lock = l
	}
	return r, nil
}

// CacheDir returns the directory the modules are cached in.
func (r *Resolver) CacheDir() string { return r.cache }

// Resolve returns the key of module name loaded from the module from:
// name is git+URL@REF//PATH or @ALIAS//PATH, or from is a key and name a
// path relative to it, in the same repository and REF. It does no I/O.
func (r *Resolver) Resolve(from, name string) (string, error) {
	if strings.HasPrefix(name, Prefix) {
		s, err := Parse(name)
		if err != nil {
			return "", err
		}
		return s.Key(), nil
	}
	if rest, ok := strings.CutPrefix(name, "@"); ok {
		alias, p, ok := strings.Cut(rest, "//")
		if !ok {
			return "", fmt.Errorf("want @NAME//PATH.star")
		}
		s, ok := r.aliases[alias]
		if !ok {
			names := slices.Sorted(maps.Keys(r.aliases))
			if len(names) == 0 {
				return "", fmt.Errorf("no source is named %s: name it in the config file, modules = {%q: \"git+https://HOST/ORG/REPO@REF\"}", alias, alias)
			}
			return "", fmt.Errorf("no source is named %s; the config file's modules name %s", alias, strings.Join(names, ", "))
		}
		return r.join(s, "", p)
	}
	s, err := Parse(from)
	if err != nil {
		return "", fmt.Errorf("internal error: %s is no module key: %v", from, err)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("a module of %s loads files of its repository by relative path, not %s", s.Source, name)
	}
	return r.join(s, path.Dir(s.Path), name)
}

// join is the key of p, relative to dir, in the source of s.
func (r *Resolver) join(s Spec, dir, p string) (string, error) {
	clean := path.Join(dir, p)
	if !fs.ValidPath(clean) || p == "" {
		return "", fmt.Errorf("%s leaves the repository of %s", p, s.Source)
	}
	s.Path = clean
	return s.Key(), nil
}

// Read returns the content of the module key, which Resolve returned: at
// the commit the lock file holds for its source (resolving REF, and adding
// it to the lock, when the lock has none), from the cache, fetching the
// commit first when the cache lacks it. The content must match its SHA-256
// in the lock; a file the lock lacks is added. With Options.Frozen, a
// source or a file missing from the lock is an error.
func (r *Resolver) Read(ctx context.Context, key string) ([]byte, error) {
	s, err := Parse(key)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _, err := r.read(ctx, s)
	return b, err
}

// read is Read of s, also returning the commit. Callers hold r.mu.
func (r *Resolver) read(ctx context.Context, s Spec) ([]byte, string, error) {
	commit, err := r.commit(ctx, s)
	if err != nil {
		return nil, "", err
	}
	var b []byte
	dir := "the bundle"
	if r.opts.Files != nil {
		b, err = fs.ReadFile(r.opts.Files, commit+"/"+s.Path)
	} else {
		b, dir, err = r.treeFile(ctx, s, commit, s.Path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) && r.opts.Files != nil && !strings.HasSuffix(s.Path, ".star"):
		return nil, "", fmt.Errorf("%s: the bundle has no file %s: it carries the files of remote modules that the lock held when it was made, and a run locks those that put() and template() read; run the deploy once without --on-host, then bundle it again", s.Source, s.Path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("%s has no file %s at commit %s", s.Source, s.Path, commit[:12])
	}
	if err != nil {
		return nil, "", err
	}
	sum := Sum(b)
	e := r.lock.Sources[s.Source]
	switch want, ok := e.Files[s.Path]; {
	case ok && want != sum:
		return nil, "", fmt.Errorf("%s: %s does not match %s: it has %s, the lock %s (the cached copy in %s was changed, or the lock was edited); run star-deploy mod verify", s.Source, s.Path, r.lockName(), sum, want, dir)
	case !ok && r.opts.Frozen && !strings.HasSuffix(s.Path, ".star"):
		return nil, "", fmt.Errorf("%s: %s is not in %s; run the deploy once without --frozen to lock it (mod lock locks what scripts load, not what they read; --frozen and CI=true never write the lock)", s.Source, s.Path, r.lockName())
	case !ok && r.opts.Frozen:
		return nil, "", fmt.Errorf("%s: %s is not in %s; run star-deploy mod lock (--frozen and CI=true never write the lock)", s.Source, s.Path, r.lockName())
	case !ok:
		e.Files[s.Path] = sum
		r.dirty = true
	}
	if r.used[s.Source] == nil {
		r.used[s.Source] = map[string]string{}
	}
	r.used[s.Source][s.Path] = sum
	return b, commit, nil
}

// Module is a remote module as a bundle carries it.
type Module struct {
	Key    string // git+URL@REF//PATH
	Source string // git+URL@REF
	Commit string // the locked commit
	Path   string // the file in the repository
	Data   []byte
}

// Module resolves load(name) in the module from and reads it, as Resolve
// and Read do, with the commit it was read at.
func (r *Resolver) Module(ctx context.Context, from, name string) (Module, error) {
	key, err := r.Resolve(from, name)
	if err != nil {
		return Module{}, err
	}
	s, err := Parse(key)
	if err != nil {
		return Module{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b, commit, err := r.read(ctx, s)
	if err != nil {
		return Module{}, err
	}
	return Module{Key: key, Source: s.Source, Commit: commit, Path: s.Path, Data: b}, nil
}

// Files returns the files of source (git+URL@REF) other than modules that
// the lock holds, read at the locked commit and checked as Read checks:
// those that put() and template() read from the source's modules, which a
// bundle carries with them.
func (r *Resolver) Files(ctx context.Context, source string) ([]Module, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.lock.Sources[source]
	if !ok {
		return nil, nil
	}
	var out []Module
	for _, p := range slices.Sorted(maps.Keys(e.Files)) {
		if strings.HasSuffix(p, ".star") {
			continue
		}
		s, err := Parse(source + "//" + p)
		if err != nil {
			return nil, err
		}
		b, commit, err := r.read(ctx, s)
		if err != nil {
			return nil, err
		}
		out = append(out, Module{Key: s.Key(), Source: source, Commit: commit, Path: p, Data: b})
	}
	return out, nil
}

// lockName names the lock file in errors.
func (r *Resolver) lockName() string {
	if r.opts.LockFile == "" {
		return "the lock"
	}
	return r.opts.LockFile
}

// Sum is the lock file's checksum of content b, "sha256:HEX".
func Sum(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// readCapped reads the file p, at most maxModule bytes.
func readCapped(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxModule {
		return nil, fmt.Errorf("%s: larger than %d MiB", p, maxModule>>20)
	}
	return os.ReadFile(p)
}

// commit returns the commit of s's source: the one resolved before in
// this process, else the lock's, else REF resolved now (and locked).
// Callers hold r.mu.
func (r *Resolver) commit(ctx context.Context, s Spec) (string, error) {
	if c, ok := r.commits[s.Source]; ok {
		return c, nil
	}
	if e, ok := r.lock.Sources[s.Source]; ok {
		r.commits[s.Source] = e.Commit
		return e.Commit, nil
	}
	if r.opts.Frozen {
		return "", fmt.Errorf("%s is not in %s; run star-deploy mod lock (--frozen and CI=true never write the lock)", s.Source, r.lockName())
	}
	repo, err := r.repository(ctx, s.URL, true)
	if err != nil {
		return "", err
	}
	c, err := r.resolveRef(ctx, repo, s)
	if err != nil {
		return "", err
	}
	r.lock.Sources[s.Source] = &Locked{Commit: c, Files: map[string]string{}}
	r.commits[s.Source] = c
	r.dirty = true
	return c, nil
}

// ownCache fails when the default cache may hold what another user wrote:
// a run that locks a file for the first time trusts what the cache holds,
// so another user's cache (root run with that user's HOME) is refused, as
// git refuses another user's repository. A CacheDir given is the caller's
// choice (a vendored directory of the deploy's own repository). It is
// asked where the cache is first used, not in New, so that a run that
// loads no remote module never needs one. Callers hold r.mu.
func (r *Resolver) ownCache() error {
	if !r.checkOwner {
		return nil
	}
	if ok, at, owner := fileowner.Dir(r.cache); !ok {
		return fmt.Errorf("the module cache %s may hold what another user wrote (%s: owner uid %d, or writable by group or others; this run is uid %d), and a run trusts the modules it finds there: name a cache directory of your own (star-deploy --module-cache DIR)", r.cache, at, owner, os.Geteuid())
	}
	r.checkOwner = false
	return nil
}

// tree returns the cache directory of commit, fetching and extracting it
// first when the cache lacks it, or again when again. Callers hold r.mu.
func (r *Resolver) tree(ctx context.Context, s Spec, commit string, again bool) (string, error) {
	if err := r.ownCache(); err != nil {
		return "", err
	}
	dir := filepath.Join(r.cache, commit)
	if _, err := os.Stat(dir); err == nil && !again {
		return dir, nil
	}
	repo, err := r.repository(ctx, s.URL, false)
	if err != nil {
		return "", err
	}
	if !hasCommit(repo, commit) {
		if repo, err = r.repository(ctx, s.URL, true); err != nil {
			return "", err
		}
	}
	if !hasCommit(repo, commit) {
		return "", fmt.Errorf("%s: %s has no commit %s (locked in %s); was its history rewritten? star-deploy mod update moves the lock to what REF names now", s.Source, s.URL, commit, r.lockName())
	}
	if err := r.extract(repo, commit, dir); err != nil {
		return "", fmt.Errorf("%s: %w", s.Source, err)
	}
	return dir, nil
}

// treeFile reads the file p of commit from the cache, extracting the
// commit (again, when an older version extracted only its .star files)
// when the cache lacks it. It also returns the cache directory. Callers
// hold r.mu.
func (r *Resolver) treeFile(ctx context.Context, s Spec, commit, p string) ([]byte, string, error) {
	dir, err := r.tree(ctx, s, commit, false)
	if err != nil {
		return nil, "", err
	}
	b, err := readCapped(filepath.Join(dir, filepath.FromSlash(p)))
	if errors.Is(err, fs.ErrNotExist) && !strings.HasSuffix(p, ".star") {
		if _, serr := os.Stat(filepath.Join(dir, wholeTree)); serr != nil {
			if dir, err = r.tree(ctx, s, commit, true); err != nil {
				return nil, "", err
			}
			b, err = readCapped(filepath.Join(dir, filepath.FromSlash(p)))
		}
	}
	return b, dir, err
}

// WriteLock writes the lock file when this process added to it. With
// prune, it keeps only the sources and the modules read in this process
// (star-deploy mod lock), and the other files of the sources it keeps.
func (r *Resolver) WriteLock(prune bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prune {
		for src, e := range r.lock.Sources {
			used, ok := r.used[src]
			if !ok {
				delete(r.lock.Sources, src)
				r.dirty = true
				continue
			}
			for p := range e.Files {
				// The files that put() and template() read are read by a
				// run, not by loading: they stay while their source does.
				if _, ok := used[p]; !ok && strings.HasSuffix(p, ".star") {
					delete(e.Files, p)
					r.dirty = true
				}
			}
		}
	}
	if r.opts.LockFile == "" || (!r.dirty && !prune) {
		return nil
	}
	if r.opts.Frozen {
		return fmt.Errorf("%s is out of date; run star-deploy mod lock (--frozen and CI=true never write the lock)", r.opts.LockFile)
	}
	if err := r.lock.Write(r.opts.LockFile); err != nil {
		return fmt.Errorf("write the lock file: %w", err)
	}
	r.dirty = false
	return nil
}

// Lock returns a copy of the lock.
func (r *Resolver) Lock() *Lock {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &Lock{Version: lockVersion, Sources: map[string]*Locked{}}
	for src, e := range r.lock.Sources {
		out.Sources[src] = &Locked{Commit: e.Commit, Files: maps.Clone(e.Files)}
	}
	return out
}
