package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/internal/atomicfile"
	"github.com/star-deploy/star-deploy/internal/fileowner"
)

// The compile cache keeps the compiled form of stdlib modules between
// runs (Options.CompileCache), so that a run does not parse 40-60 KB of
// Starlark again for each module it loads: files.star takes 3.6 ms to
// parse, resolve, compile and check, and 0.14 ms to decode.
//
// A module's source key hashes what its compiling and checking depend on:
// the program doing it (the executable's path, size and modification
// time: a new build of star-deploy, with a new compiler, checker or
// builtins, compiles afresh once), the module's name and source, and the
// predeclared names it was resolved against. Its identity hashes the
// source key and the identities of the modules it loads, in order, which
// the compile-time keyword check (checkKeywords) reads. An entry holds
// both and the bytecode; it serves a load only when both match, so it can
// never stand for a module that would not compile or check today. A
// checksum of the bytecode keeps a damaged entry from the decoder (which
// prints a stack on bad input). Anything else (a missing, stale or
// damaged entry, an unwritable directory) compiles from source, as
// without a cache.
//
// An entry is trusted only as far as its file: it serves a load only when
// it is a regular file owned by the running user and writable by no one
// else, and the cache is used at all only in a directory of the running
// user's (or, while it does not exist yet, under one). So root, run with
// a HOME or XDG_CACHE_HOME of another user (sudo -E), neither runs the
// bytecode that user could write there nor leaves root's files in it.
//
// Only stdlib modules are kept: there are few, a new build overwrites
// their entries (one file per module and predeclared set), and they are
// most of what a run compiles. A loaded
// module without a source (Options.Modules) has no identity, and a module
// that loads one is not kept.

// cacheMagic starts every entry, followed by the source key, the
// identity, the SHA-256 of the bytecode and the bytecode (Program.Write);
// a new format gets a new magic.
const cacheMagic = "star-deploy compiled module 1\n"

// cacheHead is the length of an entry's header.
const cacheHead = len(cacheMagic) + 3*sha256.Size

// moduleID is a source key or an identity; the zero value means unknown.
type moduleID [sha256.Size]byte

// compiled is a module compiled from source or read from the cache.
type compiled struct {
	prog *starlark.Program
	id   moduleID // zero: not cacheable
}

// compileModule compiles the module key (source src) whose load chain is
// chain, loading the modules it loads first, through the cache when key is
// a stdlib module and Options.CompileCache is set.
func (r *Runner) compileModule(ctx context.Context, key string, src []byte, chain []string) (compiled, error) {
	cacheable := r.opts.CompileCache != "" && strings.HasPrefix(key, stdlibPrefix) && executableID() != "" && r.cacheDirOwned()
	var sk moduleID
	var path string
	if cacheable {
		sk = r.sourceKey(key, src)
		path = r.cachePath(key)
		if c, ok := r.readCached(ctx, path, key, sk, chain); ok {
			return c, nil
		}
	}
	prog, err := r.prepare(ctx, key, src, chain, false)
	if err != nil {
		return compiled{}, err
	}
	c := compiled{prog: prog}
	if !cacheable {
		return c, nil
	}
	if c.id, err = r.identity(ctx, key, sk, prog, chain); err != nil {
		return compiled{}, err
	}
	if c.id != (moduleID{}) {
		writeCached(path, sk, c.id, prog)
	}
	return c, nil
}

// readCached returns the module of the entry at path when the entry's
// source key is sk and its identity is the one the module has today (which
// loads the modules it loads).
func (r *Runner) readCached(ctx context.Context, path, key string, sk moduleID, chain []string) (compiled, bool) {
	data, err := readOwned(path)
	if err != nil {
		return compiled{}, false
	}
	if len(data) < cacheHead || string(data[:len(cacheMagic)]) != cacheMagic {
		return compiled{}, false
	}
	fields, code := data[len(cacheMagic):cacheHead], data[cacheHead:]
	if sum := sha256.Sum256(code); !bytes.Equal(fields[:sha256.Size], sk[:]) || !bytes.Equal(fields[2*sha256.Size:], sum[:]) {
		return compiled{}, false
	}
	var id moduleID
	copy(id[:], fields[sha256.Size:2*sha256.Size])
	prog, err := starlark.CompiledProgram(bytes.NewReader(code))
	if err != nil {
		return compiled{}, false
	}
	now, err := r.identity(ctx, key, sk, prog, chain)
	if err != nil || now != id {
		// A load that fails now, or a loaded module that changed: compile
		// from source, which reports the error as it always does.
		return compiled{}, false
	}
	return compiled{prog: prog, id: id}, true
}

// readOwned returns the content of the file at path when it is a regular
// file owned by the running user that no one else may write.
func readOwned(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || !fileowner.Mine(fi) {
		return nil, fmt.Errorf("%s: not a file of the running user's alone", path)
	}
	return io.ReadAll(f)
}

// cacheDirOwned reports whether Options.CompileCache may be used
// (fileowner.Dir). It is asked once per Runner.
func (r *Runner) cacheDirOwned() bool {
	r.cacheDirOnce.Do(func() {
		r.cacheDirOK, _, _ = fileowner.Dir(r.opts.CompileCache)
	})
	return r.cacheDirOK
}

// writeCached writes an entry. A cache that cannot be written is no
// error: the next run compiles from source again.
func writeCached(path string, sk, id moduleID, prog *starlark.Program) {
	var code bytes.Buffer
	if err := prog.Write(&code); err != nil {
		return
	}
	sum := sha256.Sum256(code.Bytes())
	var buf bytes.Buffer
	buf.WriteString(cacheMagic)
	buf.Write(sk[:])
	buf.Write(id[:])
	buf.Write(sum[:])
	buf.Write(code.Bytes())
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return
	}
	_ = atomicfile.Write(path, buf.Bytes())
}

// identity returns the identity of module key, of source key sk and
// program prog: it loads the modules prog loads (load holds them once
// loaded). It is zero when a loaded module has none.
func (r *Runner) identity(ctx context.Context, key string, sk moduleID, prog *starlark.Program, chain []string) (moduleID, error) {
	h := sha256.New()
	h.Write(sk[:])
	for i := range prog.NumLoads() {
		name, pos := prog.Load(i)
		if _, err := r.load(ctx, key, name, chain); err != nil {
			return moduleID{}, fmt.Errorf("%s: %w", pos, err)
		}
		dep, _ := r.resolve(key, name)
		id := r.ids[dep]
		if id == (moduleID{}) {
			return moduleID{}, nil
		}
		h.Write(id[:])
	}
	var id moduleID
	h.Sum(id[:0])
	return id, nil
}

// sourceKey hashes what the bytecode of stdlib module key depends on.
func (r *Runner) sourceKey(key string, src []byte) moduleID {
	h := sha256.New()
	fmt.Fprintf(h, "%s%s\x00%+v\x00%s\x00", cacheMagic, executableID(), *FileOptions(), key)
	h.Write(r.stdlibDigest())
	fmt.Fprintf(h, "%d\x00", len(src))
	h.Write(src)
	var id moduleID
	h.Sum(id[:0])
	return id
}

// cachePath is the entry of module key: one per module and predeclared
// set, so that a new build overwrites its entries.
func (r *Runner) cachePath(key string) string {
	name := strings.TrimPrefix(key, stdlibPrefix)
	name = strings.NewReplacer("/", "_", "\\", "_").Replace(name)
	return filepath.Join(r.opts.CompileCache, "stdlib-"+name+"-"+hex.EncodeToString(r.stdlibDigest()[:6]))
}

// stdlibDigest hashes the predeclared names of stdlib modules (the only
// ones kept), and the parameters of those that are Starlark functions
// (which checkKeywords reads); it is computed once per Runner.
func (r *Runner) stdlibDigest() []byte {
	r.digestOnce.Do(func() {
		h := sha256.New()
		for _, name := range slices.Sorted(maps.Keys(r.stdlibGlobals)) {
			fmt.Fprintf(h, "%s\x00", name)
			if f, ok := r.stdlibGlobals[name].(*starlark.Function); ok {
				kws, _ := functionKeywords(f)
				fmt.Fprintf(h, "%q\x00", kws)
			}
		}
		r.digest = h.Sum(nil)
	})
	return r.digest
}

// executableID names this build of the program: its path, size and
// modification time, or "" (no cache) when it cannot be read.
var executableID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s\x00%d\x00%d", exe, fi.Size(), fi.ModTime().UnixNano())
})
