package runtime

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"go.starlark.net/starlark"
)

// loadStdlib loads @stdlib//a.star from stdlib with a new Runner whose
// compile cache is dir, and returns its global v.
func loadStdlib(t *testing.T, dir string, stdlib fstest.MapFS) (string, error) {
	t.Helper()
	r := New(Options{Stdlib: stdlib, CompileCache: dir})
	r.mu.Lock()
	defer r.mu.Unlock()
	g, err := r.load(t.Context(), "", "@stdlib//a.star", nil)
	if err != nil {
		return "", err
	}
	v, _ := starlark.AsString(g["v"])
	return v, nil
}

// entries returns the names of the files in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestCompileCache: a second run decodes the stdlib modules the first one
// compiled; a changed module compiles again, and so does one that loads
// it; a damaged entry compiles from source and is written again.
func TestCompileCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "compiled")
	stdlib := fstest.MapFS{
		"a.star": {Data: []byte("load('@stdlib//b.star', 'f')\nv = f(y = 1)\n")},
		"b.star": {Data: []byte("def f(y):\n    return 'b:' + str(y)\n")},
	}
	if v, err := loadStdlib(t, dir, stdlib); err != nil || v != "b:1" {
		t.Fatalf("first load: %q, %v", v, err)
	}
	names := entries(t, dir)
	if len(names) != 2 || !strings.HasPrefix(names[0], "stdlib-a.star-") || !strings.HasPrefix(names[1], "stdlib-b.star-") {
		t.Fatalf("entries %q, want one of a.star and one of b.star", names)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the cache directory: %v, %v; want mode 0700", fi.Mode(), err)
	}

	// The entry of b, its bytecode swapped for another program's: what
	// the run sees comes from the entry, so the cache served it.
	bPath := filepath.Join(dir, names[1])
	swapEntry(t, bPath, "def f(y):\n    return 'cached:' + str(y)\n")
	if v, err := loadStdlib(t, dir, stdlib); err != nil || v != "cached:1" {
		t.Fatalf("load from the cache: %q, %v; want cached:1", v, err)
	}

	// A new b: its source key changes, and with it a's identity.
	stdlib["b.star"] = &fstest.MapFile{Data: []byte("def f(y):\n    return 'new:' + str(y)\n")}
	if v, err := loadStdlib(t, dir, stdlib); err != nil || v != "new:1" {
		t.Fatalf("after b changed: %q, %v; want new:1", v, err)
	}
	if got := entries(t, dir); len(got) != 2 {
		t.Errorf("entries %q: a changed module should overwrite its entry", got)
	}

	// Damaged bytecode (a byte flipped): compiled from source again.
	entry, err := os.ReadFile(bPath)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(entry)
	damaged[len(damaged)-3] ^= 0xff
	if err := os.WriteFile(bPath, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := loadStdlib(t, dir, stdlib); err != nil || v != "new:1" {
		t.Fatalf("with a damaged entry: %q, %v; want new:1", v, err)
	}
	if again, _ := os.ReadFile(bPath); !bytes.Equal(again, entry) {
		t.Error("the damaged entry was not written again")
	}
}

// swapEntry replaces the bytecode of the entry at path with that of src,
// compiled as @stdlib//b.star, keeping its source key and identity: a run
// that loads b from the entry then runs src.
func swapEntry(t *testing.T, path, src string) {
	t.Helper()
	entry, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{})
	_, prog, err := starlark.SourceProgramOptions(FileOptions(), "@stdlib//b.star", []byte(src), func(name string) bool {
		_, ok := r.stdlibGlobals[name]
		return ok
	})
	if err != nil {
		t.Fatal(err)
	}
	var code bytes.Buffer
	if err := prog.Write(&code); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code.Bytes())
	head := cacheHead - sha256.Size // the source key and identity, not the checksum
	swapped := bytes.NewBuffer(entry[:head:head])
	swapped.Write(sum[:])
	swapped.Write(code.Bytes())
	if err := os.WriteFile(path, swapped.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCompileCacheOwner: an entry another user could have written (group-
// or world-writable, or owned by another user) serves no load, and a
// cache directory of another user's is neither read nor written: root run
// with another user's HOME does not run bytecode that user wrote. The
// cases that need chown run as root (as CI does).
func TestCompileCacheOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "compiled")
	stdlib := fstest.MapFS{
		"a.star": {Data: []byte("load('@stdlib//b.star', 'f')\nv = f(y = 1)\n")},
		"b.star": {Data: []byte("def f(y):\n    return 'b:' + str(y)\n")},
	}
	load := func(what, want string) {
		t.Helper()
		if v, err := loadStdlib(t, dir, stdlib); err != nil || v != want {
			t.Fatalf("%s: %q, %v; want %q", what, v, err, want)
		}
	}
	load("first load", "b:1")
	bPath := filepath.Join(dir, entries(t, dir)[1])
	swapEntry(t, bPath, "def f(y):\n    return 'cached:' + str(y)\n")
	load("a swapped entry of the running user's", "cached:1")

	swapEntry(t, bPath, "def f(y):\n    return 'writable:' + str(y)\n")
	if err := os.Chmod(bPath, 0o666); err != nil {
		t.Fatal(err)
	}
	load("a world-writable entry", "b:1")
	if fi, err := os.Stat(bPath); err != nil || fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("the entry compiled again: %v, %v; want it written again, writable by its owner alone", fi.Mode(), err)
	}

	if os.Geteuid() != 0 {
		t.Log("not root: the cases of files owned by another user need chown; CI runs them")
		return
	}
	const nobody = 65534
	swapEntry(t, bPath, "def f(y):\n    return 'theirs:' + str(y)\n")
	if err := os.Chown(bPath, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	load("an entry of another user's", "b:1")

	// The directory another user's: not read, not written.
	swapEntry(t, bPath, "def f(y):\n    return 'theirs:' + str(y)\n")
	if err := os.Chown(bPath, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(bPath)
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	load("a directory of another user's", "b:1")
	if after, _ := os.ReadFile(bPath); !bytes.Equal(before, after) {
		t.Error("the run wrote into a cache directory of another user's")
	}

	// Not there yet, under another user's directory: not made.
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(home, ".cache", "star-deploy", "compiled")
	load("under another user's home", "b:1")
	if _, err := os.Lstat(filepath.Join(home, ".cache")); !os.IsNotExist(err) {
		t.Errorf("the run made %s/.cache in another user's home (%v)", home, err)
	}
}

// TestCompileCacheChecksKeywordsAgain: a module whose source did not change
// but whose loaded module did is checked again, so that a call with a
// keyword the new function lacks is still the compile-time error (with its
// suggestion), not the call's failure at run time.
func TestCompileCacheChecksKeywordsAgain(t *testing.T) {
	dir := t.TempDir()
	stdlib := fstest.MapFS{
		"a.star": {Data: []byte("load('@stdlib//b.star', 'f')\nv = f(y = 'a')\n")},
		"b.star": {Data: []byte("def f(y):\n    return y\n")},
	}
	if v, err := loadStdlib(t, dir, stdlib); err != nil || v != "a" {
		t.Fatalf("first load: %q, %v", v, err)
	}
	stdlib["b.star"] = &fstest.MapFile{Data: []byte("def f(x):\n    return x\n")}
	_, err := loadStdlib(t, dir, stdlib)
	if err == nil || !strings.Contains(err.Error(), `@stdlib//a.star:2:7: f: unexpected keyword argument "y" (did you mean x?)`) {
		t.Fatalf("after f lost y: %v; want the compile-time keyword error", err)
	}
	// And a module that does not compile leaves no entry of its own.
	stdlib["b.star"] = &fstest.MapFile{Data: []byte("def f(y):\n    return y +\n")}
	before := entries(t, dir)
	if _, err := loadStdlib(t, dir, stdlib); err == nil {
		t.Fatal("a syntax error loaded")
	}
	if after := entries(t, dir); len(after) != len(before) {
		t.Errorf("entries %q, then %q", before, after)
	}
}

// TestCompileCacheUnwritable: a cache that cannot be written is no error.
func TestCompileCacheUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stdlib := fstest.MapFS{"a.star": {Data: []byte("v = 'ok'\n")}}
	for range 2 {
		if v, err := loadStdlib(t, filepath.Join(file, "compiled"), stdlib); err != nil || v != "ok" {
			t.Fatalf("%q, %v", v, err)
		}
	}
}

// TestCompileCachePerPredeclaredSet: a sandbox, which predeclares other
// names, keeps entries of its own.
func TestCompileCachePerPredeclaredSet(t *testing.T) {
	open := New(Options{CompileCache: "/c"}).cachePath("@stdlib//files.star")
	sandboxed := New(Options{CompileCache: "/c", Sandbox: &Sandbox{}}).cachePath("@stdlib//files.star")
	if open == sandboxed || !strings.HasPrefix(open, "/c/stdlib-files.star-") {
		t.Errorf("entries %q and %q", open, sandboxed)
	}
}
