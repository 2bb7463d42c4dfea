package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// deployDir writes a deploy tree: a script loading a relative module and a
// stdlib module, a module loading another, data files, a VCS directory.
func deployDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("deploy.star", "load(\"lib/web.star\", \"web\")\nload(\"@stdlib//files.star\", \"files\")\nweb()\n", 0o644)
	write("lib/web.star", "load(\"util.star\", \"x\")\ndef web():\n    put(dest=\"/tmp/x\", src=\"../files/index.html\")\n", 0o644)
	write("lib/util.star", "x = 1\n", 0o644)
	write("files/index.html", "<h1>hi</h1>\n", 0o644)
	write("files/run.sh", "#!/bin/sh\n", 0o755)
	write("secrets/key.pem", "secret\n", 0o600)
	write("notes.pyc", "x", 0o644)
	write(".git/HEAD", "ref: refs/heads/main\n", 0o644)
	return dir
}

var testStdlib = fstest.MapFS{
	"files.star": {Data: []byte("load(\"@stdlib//ops.star\", \"ops\")\nfiles = 1\n")},
	"ops.star":   {Data: []byte("ops = 1\n")},
	"apt.star":   {Data: []byte("apt = 1\n")},
}

func make1(t *testing.T, opts Options) ([]byte, *Manifest) {
	t.Helper()
	if opts.Stdlib == nil {
		opts.Stdlib = testStdlib
	}
	b, m, err := Make(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b, m
}

func TestMakeAndRead(t *testing.T) {
	dir := deployDir(t)
	b, m := make1(t, Options{Scripts: []string{filepath.Join(dir, "deploy.star")}, Exclude: []string{"secrets", "*.pyc"}, StarDeploy: "star-deploy test"})
	var paths []string
	for _, f := range m.Files {
		paths = append(paths, f.Path)
	}
	want := []string{"deploy.star", "files/index.html", "files/run.sh", "lib/util.star", "lib/web.star"}
	if !slices.Equal(paths, want) {
		t.Errorf("files = %v, want %v (no .git, no excluded ones)", paths, want)
	}
	if len(m.Stdlib) != 2 || m.Stdlib[0].Path != "files.star" || m.Stdlib[1].Path != "ops.star" {
		t.Errorf("stdlib = %+v, want files.star and the ops.star it loads", m.Stdlib)
	}
	got, err := Read("site.bundle", b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != Hash(b) || !slices.Equal(got.Manifest.Scripts, []string{"deploy.star"}) {
		t.Errorf("read back %s %v", got.Hash, got.Manifest.Scripts)
	}
	data, err := fs.ReadFile(got.Files(), "files/index.html")
	if err != nil || string(data) != "<h1>hi</h1>\n" {
		t.Errorf("files/index.html = %q, %v", data, err)
	}
	fi, err := fs.Stat(got.Files(), "files/run.sh")
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("files/run.sh mode %v, %v; want 0755", fi.Mode(), err)
	}
	entries, err := fs.ReadDir(got.Files(), "files")
	if err != nil || len(entries) != 2 {
		t.Errorf("ReadDir(files) = %v, %v", entries, err)
	}
	if err := fstest.TestFS(got.Files(), want...); err != nil {
		t.Error(err)
	}
	if _, err := fs.ReadFile(got.Stdlib(), "ops.star"); err != nil {
		t.Error(err)
	}
	_, err = got.Files().Open("secrets/key.pem")
	var missing *MissingError
	if !errors.As(err, &missing) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening an excluded file: %v, want a MissingError", err)
	}
	for _, s := range []string{"site.bundle", "secrets/key.pem", "--include"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

func TestReproducible(t *testing.T) {
	dir := deployDir(t)
	opts := Options{Scripts: []string{filepath.Join(dir, "deploy.star")}, StarDeploy: "v"}
	a, _ := make1(t, opts)
	b, _ := make1(t, opts)
	if !bytes.Equal(a, b) {
		t.Fatal("two bundles of the same inputs differ")
	}
	// Other modification times, and files written in another order, give
	// the same bytes.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	os.Remove(filepath.Join(dir, "files/index.html"))
	os.WriteFile(filepath.Join(dir, "files/index.html"), []byte("<h1>hi</h1>\n"), 0o600)
	c, _ := make1(t, opts)
	if !bytes.Equal(a, c) {
		t.Fatal("a bundle changed with the modification times or permissions of its inputs")
	}
	// The archive itself has no times, owners or names in its headers.
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q, time %v", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: header %+v", h.Name, h)
		}
	}
	// A change of content is a different bundle.
	os.WriteFile(filepath.Join(dir, "files/index.html"), []byte("<h1>ho</h1>\n"), 0o644)
	if d, _ := make1(t, opts); bytes.Equal(a, d) {
		t.Fatal("a changed file gave the same bundle")
	}
}

func TestInclude(t *testing.T) {
	dir := deployDir(t)
	_, m := make1(t, Options{Scripts: []string{filepath.Join(dir, "deploy.star")}, Include: []string{"files/*.html"}})
	var paths []string
	for _, f := range m.Files {
		paths = append(paths, f.Path)
	}
	// The scripts and modules always; of the rest, what --include names.
	want := []string{"deploy.star", "files/index.html", "lib/util.star", "lib/web.star"}
	if !slices.Equal(paths, want) {
		t.Errorf("files = %v, want %v", paths, want)
	}
}

func TestMakeErrors(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ src, want string }{
		"missing":  {"load(\"nope.star\", \"x\")\n", `s.star:1:1: load("nope.star"): nope.star does not exist`},
		"outside":  {"load(\"../x.star\", \"x\")\n", "outside the bundle root"},
		"absolute": {"load(\"/etc/x.star\", \"x\")\n", "absolute path"},
		"source":   {"load(\"@web//x.star\", \"x\")\n", "only modules relative"},
		"stdlib":   {"load(\"@stdlib//nope.star\", \"x\")\n", `no stdlib module "nope.star"`},
		"syntax":   {"def (\n", "s.star:1:"},
	} {
		os.WriteFile(filepath.Join(dir, "s.star"), []byte(c.src), 0o644)
		_, _, err := Make(Options{Scripts: []string{filepath.Join(dir, "s.star")}, Stdlib: testStdlib})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
	os.WriteFile(filepath.Join(dir, "s.star"), nil, 0o644)
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "o.star"), nil, 0o644)
	_, _, err := Make(Options{Scripts: []string{filepath.Join(dir, "s.star"), filepath.Join(other, "o.star")}, Root: dir})
	if err == nil || !strings.Contains(err.Error(), "--root") {
		t.Errorf("a script outside the root: %v", err)
	}
}

func TestReadRefusesAlteredBundles(t *testing.T) {
	dir := deployDir(t)
	b, m := make1(t, Options{Scripts: []string{filepath.Join(dir, "deploy.star")}})
	// Rewrite the archive with one file's content changed but the manifest
	// kept: Read must notice.
	var entries []entry
	zr, _ := gzip.NewReader(bytes.NewReader(b))
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		data, _ := io.ReadAll(tr)
		if h.Name == "files/files/index.html" {
			data = []byte("<script>evil</script>")
		}
		if h.Name != manifestName {
			entries = append(entries, entry{name: h.Name, data: data})
		}
	}
	bad, err := archive(*m, entries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read("x.bundle", bad); err == nil || !strings.Contains(err.Error(), "files/files/index.html does not match") {
		t.Errorf("altered bundle: %v", err)
	}
	if _, err := Read("x.bundle", []byte("not gzip")); err == nil || !strings.Contains(err.Error(), "not a star-deploy bundle") {
		t.Errorf("garbage: %v", err)
	}
	m2 := *m
	m2.Format = 99
	future, _ := archive(m2, nil)
	if _, err := Read("x.bundle", future); err == nil || !strings.Contains(err.Error(), "format version 99") {
		t.Errorf("future format: %v", err)
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		glob, path string
		want       bool
	}{
		{"secrets", "secrets/a/b.pem", true},
		{"*.pyc", "a/b/c.pyc", true},
		{"files/*", "files/a/b", true},
		{"files/*.html", "files/a.html", true},
		{"files/*.html", "files/a/b.html", false},
		{"./files/", "files/x", true},
		{"lib", "library/x", false},
	} {
		if got := Match([]string{c.glob}, c.path); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.glob, c.path, got, c.want)
		}
	}
}
