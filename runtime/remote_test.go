package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"testing"

	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// stubRemote serves remote modules from a map of keys to content.
type stubRemote struct {
	files map[string]string
	mu    sync.Mutex
	reads []string
}

func (s *stubRemote) Resolve(from, name string) (string, error) {
	if strings.HasPrefix(name, "git+") {
		return name, nil
	}
	if rest, ok := strings.CutPrefix(name, "@web//"); ok {
		return "git+https://git.example.com/ops/web@v1//" + rest, nil
	}
	src, p, _ := strings.Cut(strings.TrimPrefix(from, "git+https://"), "//")
	key := path.Join(path.Dir(p), name)
	if !fs.ValidPath(key) {
		return "", fmt.Errorf("%s leaves the repository", name)
	}
	return "git+https://" + src + "//" + key, nil
}

func (s *stubRemote) Read(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads = append(s.reads, key)
	b, ok := s.files[key]
	if !ok {
		return nil, fmt.Errorf("no module %s", key)
	}
	return []byte(b), nil
}

// TestRemoteModules: remote loads are off unless the app allows them, and
// then only from the sources of its allow-list, sandbox or not; a remote
// module's relative loads stay in its repository.
func TestRemoteModules(t *testing.T) {
	const web = "git+https://git.example.com/ops/web@v1//"
	files := map[string]string{
		web + "nginx.star":    "load(\"lib/util.star\", \"greet\")\nmsg = greet()\n",
		web + "lib/util.star": "def greet():\n    return \"hi\"\n",
		web + "escape.star":   "load(\"../../x.star\", \"x\")\n",
	}
	cases := []struct {
		name   string
		script string
		remote bool
		allow  []string
		want   string // "" for success
		refuse bool   // the error matches ErrSandbox
	}{
		{name: "off", script: `load("` + web + `nginx.star", "msg")`, want: "remote modules are off", refuse: true},
		{name: "off without allow-list", remote: true, script: `load("` + web + `nginx.star", "msg")`, want: "remote modules are off", refuse: true},
		{name: "alias off", script: `load("@web//nginx.star", "msg")`, want: "unknown module prefix"},
		{name: "not allowed", remote: true, allow: []string{"git+https://git.example.com/other/"}, script: `load("` + web + `nginx.star", "msg")`, want: "is not an allowed source here", refuse: true},
		{name: "allowed", remote: true, allow: []string{"git+https://git.example.com/ops/"}, script: `load("` + web + `nginx.star", "msg")` + "\nprint(msg)\n"},
		{name: "alias allowed", remote: true, allow: []string{"git+"}, script: `load("@web//nginx.star", "msg")` + "\nprint(msg)\n"},
		{name: "escape", remote: true, allow: []string{"git+"}, script: `load("` + web + `escape.star", "x")`, want: "leaves the repository"},
		{name: "missing", remote: true, allow: []string{"git+"}, script: "x = 1\nload(\"" + web + "nope.star\", \"x\")", want: "deploy.star:2:6: cannot load " + web + "nope.star: no module"},
	}
	for _, sandboxed := range []bool{false, true} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/sandbox=%v", c.name, sandboxed), func(t *testing.T) {
				t.Parallel()
				opts := sdrt.Options{Stdlib: stdlib.FS, RemoteAllow: c.allow}
				stub := &stubRemote{files: files}
				if c.remote {
					opts.Remote = stub
				}
				if sandboxed {
					opts.Sandbox = &sdrt.Sandbox{Files: os.DirFS(t.TempDir())}
				}
				_, err := sdrt.New(opts).Compile(t.Context(), "deploy.star", []byte(c.script))
				if c.want == "" {
					if err != nil {
						t.Fatal(err)
					}
					if len(stub.reads) != 2 || stub.reads[1] != web+"lib/util.star" {
						t.Errorf("reads %q; want nginx.star, then lib/util.star of the same source", stub.reads)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %v; want %q", err, c.want)
				}
				if errors.Is(err, sdrt.ErrSandbox) != c.refuse {
					t.Errorf("errors.Is(err, ErrSandbox) = %v; want %v", !c.refuse, c.refuse)
				}
				if !c.remote || c.refuse {
					if len(stub.reads) > 0 {
						t.Errorf("a refused load read %q", stub.reads)
					}
				}
			})
		}
	}
}
