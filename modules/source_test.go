package modules

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Spec{
		"git+https://git.example.com/ops/web@v1.4.0//nginx.star":     {Source: "git+https://git.example.com/ops/web@v1.4.0", URL: "https://git.example.com/ops/web", Ref: "v1.4.0", Path: "nginx.star"},
		"git+ssh://git@host/org/repo@release/2//lib/a.star":          {Source: "git+ssh://git@host/org/repo@release/2", URL: "ssh://git@host/org/repo", Ref: "release/2", Path: "lib/a.star"},
		"git+file:///srv/git/mods//a.star":                           {Source: "git+file:///srv/git/mods", URL: "file:///srv/git/mods", Path: "a.star"},
		"git+http://127.0.0.1:8080/r/.git@0123abcd//x/./y/../z.star": {Source: "git+http://127.0.0.1:8080/r/.git@0123abcd", URL: "http://127.0.0.1:8080/r/.git", Ref: "0123abcd", Path: "x/z.star"},
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil && got.Key() != want.Source+"//"+want.Path {
			t.Errorf("Key() = %q", got.Key())
		}
	}
	for in, want := range map[string]string{
		"git+https://host/repo@v1":              "want git+URL@REF//PATH.star",
		"git+ftp://host/repo@v1//a.star":        `unknown scheme "ftp"`,
		"git+file://relative/repo@v1//a.star":   "absolute path",
		"git+https://host/repo@v1//../a.star":   "inside the repository",
		"git+https://host/repo@v1///etc/a.star": "inside the repository",
		"git+https://u:pw@host/repo@v1//a.star": "credentials in the URL",
		"git+https://pw@host/repo@v1//a.star":   "credentials in the URL",
		"git+ssh://u:pw@host/repo@v1//a.star":   "credentials in the URL",
		"git+https:///repo@v1//a.star":          "no host",
		"git+https://host/repo@//a.star":        "bad REF",
		"https://host/repo@v1//a.star":          "want git+URL@REF//PATH.star",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v; want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("Parse(%q): the error shows the password: %v", in, err)
		}
	}
}

func TestResolveRelative(t *testing.T) {
	r, err := New(Options{CacheDir: t.TempDir(), Aliases: map[string]string{"web": "git+https://h/o/web@v1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, name, want string }{
		{"deploy.star", "@web//nginx.star", "git+https://h/o/web@v1//nginx.star"},
		{"git+https://h/o/web@v1//lib/nginx.star", "util.star", "git+https://h/o/web@v1//lib/util.star"},
		{"git+https://h/o/web@v1//lib/nginx.star", "../top.star", "git+https://h/o/web@v1//top.star"},
		{"git+https://h/o/web@v1//lib/nginx.star", "../../out.star", "leaves the repository"},
		{"git+https://h/o/web@v1//nginx.star", "/etc/x.star", "by relative path"},
		{"deploy.star", "@db//x.star", "no source is named db; the config file's modules name web"},
	} {
		got, err := r.Resolve(c.from, c.name)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("Resolve(%q, %q) = %q; want %q", c.from, c.name, got, c.want)
		}
	}
	if _, err := New(Options{Aliases: map[string]string{"stdlib": "git+https://h/o/x@v1"}}); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("alias stdlib: %v", err)
	}
}

// A bundle's resolver (Options.Files) serves a repository's other files
// as it serves modules, checked against the lock, and says how a file the
// bundle lacks gets there.
func TestBundleFiles(t *testing.T) {
	commit := strings.Repeat("a", 40)
	src := "git+https://h/o/web@v1"
	tmpl := []byte("listen {{ .port }}\n")
	files := fstest.MapFS{
		commit + "/web.star":         {Data: []byte("x = 1\n")},
		commit + "/templates/s.tmpl": {Data: tmpl},
	}
	lock := &Lock{Version: lockVersion, Sources: map[string]*Locked{src: {Commit: commit, Files: map[string]string{
		"web.star": Sum([]byte("x = 1\n")), "templates/s.tmpl": Sum(tmpl), "gone.txt": Sum(nil),
	}}}}
	r, err := New(Options{CacheDir: t.TempDir(), Files: files, Lock: lock, Frozen: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := r.Resolve(src+"//web.star", "templates/s.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := r.Read(t.Context(), key); err != nil || string(b) != string(tmpl) {
		t.Errorf("Read(%s) = %q, %v", key, b, err)
	}
	for _, c := range []struct{ path, want string }{
		{"gone.txt", src + ": the bundle has no file gone.txt: it carries the files of remote modules that the lock held when it was made"},
		{"nope.star", src + " has no file nope.star at commit aaaaaaaaaaaa"},
	} {
		if _, err := r.Read(t.Context(), src+"//"+c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Read(%s): %v; want %q", c.path, err, c.want)
		}
	}
	got, err := r.Files(t.Context(), src)
	if err == nil || !strings.Contains(err.Error(), "gone.txt") {
		t.Errorf("Files(%s) = %v, %v; want the error of gone.txt", src, got, err)
	}
	delete(lock.Sources[src].Files, "gone.txt")
	got, err = r.Files(t.Context(), src)
	if err != nil || len(got) != 1 || got[0].Path != "templates/s.tmpl" || got[0].Key != src+"//templates/s.tmpl" || string(got[0].Data) != string(tmpl) {
		t.Errorf("Files(%s) = %+v, %v; want templates/s.tmpl alone", src, got, err)
	}
}
