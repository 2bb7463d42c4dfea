package bundle

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// A stub of the CLI's resolver: git+https://h/o/web@v1//PATH at commit c1.
func stubRemote(from, name string) (RemoteModule, error) {
	const src = "git+https://h/o/web@v1"
	var p string
	switch {
	case strings.HasPrefix(name, src+"//"):
		p = strings.TrimPrefix(name, src+"//")
	case strings.HasPrefix(name, "@web//"):
		p = strings.TrimPrefix(name, "@web//")
	case strings.HasPrefix(from, src+"//"):
		p = path.Join(path.Dir(strings.TrimPrefix(from, src+"//")), name)
	default:
		return RemoteModule{}, fmt.Errorf("unknown source")
	}
	files := map[string]string{
		"nginx.star":    "load(\"lib/util.star\", \"u\")\nload(\"@stdlib//ops.star\", \"ops\")\nnginx = 1\n",
		"lib/util.star": "u = 1\n",
	}
	data, ok := files[p]
	if !ok {
		return RemoteModule{}, fmt.Errorf("%s has no file %s", src, p)
	}
	return RemoteModule{Key: src + "//" + p, Source: src, Commit: strings.Repeat("c1", 20), Path: p, Data: []byte(data)}, nil
}

// Remote modules go in at their commits, with their relative loads and
// the stdlib modules they load; Read checks them; Modules serves them.
func TestRemoteModules(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s.star")
	os.WriteFile(script, []byte("load(\"@web//nginx.star\", \"nginx\")\nload(\"git+https://h/o/web@v1//nginx.star\", n2 = \"nginx\")\n"), 0o644)
	b, m := make1(t, Options{Scripts: []string{script}, Remote: stubRemote, ModuleAliases: map[string]string{"web": "git+https://h/o/web@v1"}})
	commit := strings.Repeat("c1", 20)
	if len(m.Modules) != 2 || m.Modules[0].Path != commit+"/lib/util.star" || m.ModuleSources["git+https://h/o/web@v1"] != commit || m.ModuleAliases["web"] == "" {
		t.Fatalf("manifest: %+v", m)
	}
	if len(m.Stdlib) != 1 || m.Stdlib[0].Path != "ops.star" {
		t.Errorf("stdlib of the remote module: %+v", m.Stdlib)
	}
	got, err := Read("x.bundle", b)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := fs.ReadFile(got.Modules(), commit+"/nginx.star"); err != nil || !strings.Contains(string(data), "nginx = 1") {
		t.Errorf("Modules(): %q, %v", data, err)
	}
	if _, _, err := Make(Options{Scripts: []string{script}, Stdlib: testStdlib}); err == nil || !strings.Contains(err.Error(), "only modules relative") {
		t.Errorf("without Remote: %v", err)
	}
	os.WriteFile(script, []byte("x = 1\nload(\"@web//nope.star\", \"x\")\n"), 0o644)
	if _, _, err := Make(Options{Scripts: []string{script}, Stdlib: testStdlib, Remote: stubRemote}); err == nil || !strings.Contains(err.Error(), `s.star:2:1: load("@web//nope.star"): git+https://h/o/web@v1 has no file nope.star`) {
		t.Errorf("missing remote file: %v", err)
	}
}
