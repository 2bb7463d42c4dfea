package runtime_test

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// writeFiles creates files (name -> content) under a fresh directory and
// returns it.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		sshtest.WriteFile(t, filepath.Join(dir, name), content)
	}
	return dir
}

func localHost(t testing.TB, name string, data map[string]any) sdrt.Host {
	t.Helper()
	target, err := local.NewFactory().Parse("", nil)
	if err != nil {
		t.Fatal(err)
	}
	return sdrt.Host{Name: name, Data: data, Target: target}
}

// connectorsFor returns the connectors of a test run: the local one, and a
// fake one that opens each of conns by its name (a fresh, empty Conn for
// any other name).
func connectorsFor(conns ...*fake.Conn) *connectors.Registry {
	byName := map[string]*fake.Conn{}
	for _, c := range conns {
		byName[c.Target().Name] = c
	}
	return connectors.NewRegistry(local.NewFactory(), fake.NewFactory(func(t connectors.Target) *fake.Conn {
		if c, ok := byName[t.Name]; ok {
			return c
		}
		return fake.New(t.Name)
	}))
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []sdrt.Event
}

func (r *recorder) add(e sdrt.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) of(kind builtins.Kind) []sdrt.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sdrt.Event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestCompileErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"syntax.star":      "shell('true')\nif x\n",
		"undefined.star":   "shell('true')\nprint(nope)\n",
		"missing.star":     "load('lib/none.star', 'x')\n",
		"cycle.star":       "load('lib/a.star', 'a')\n",
		"lib/a.star":       "load('b.star', 'b')\na = 1\n",
		"lib/b.star":       "load('a.star', 'a')\nb = 1\n",
		"loadtime.star":    "load('lib/bad.star', 'x')\n",
		"lib/bad.star":     "x = shell('true')\n",
		"hostmod.star":     "load('lib/usehost.star', 'f')\n",
		"lib/usehost.star": "def f():\n    return host.name\n",
		"prefix.star":      "load('@nope//x.star', 'x')\n",
		"nostd.star":       "load('@stdlib//nope.star', 'x')\n",
		"badsym.star":      "load('lib/ok.star', 'zzz')\n",
		"lib/ok.star":      "ok = 1\n",
		// Keywords are checked where the callee is known: a builtin, a
		// stdlib operation (params and control arguments), a loaded function
		// without **kwargs.
		"kwbuiltin.star": "put('/x', contents = 'x')\n",
		"kwstdlib.star":  "load('@stdlib//m.star', 'm')\nm.op('a', timeout = 3, name = 'n')\nm.op('a', tmeout = 3)\n",
		"kwfunc.star":    "load('lib/f.star', 'g', 'k')\nk(x = 1, anything = 2)\ng(y = 1)\n",
		"lib/f.star":     "def g(x):\n    pass\ndef k(**kw):\n    pass\n",
		// Inside functions too, nested ones as well; a parameter that
		// shadows a loaded name is not the loaded function.
		"kwinner.star": "load('@stdlib//m.star', 'm')\nload('lib/f.star', 'g')\ndef setup(p, g):\n    g(anything = 1)\n    def inner():\n        m.op(p, tmeout = 3)\n    inner()\n",
		"kwdef.star":   "load('lib/f.star', 'g')\ndef setup():\n    g(y = 1)\n",
		// A private keyword is the stdlib's own (yum.star passes dnf's ops
		// _manager), not a script's.
		"kwprivate.star": "load('@stdlib//m.star', 'm')\nm.op('a', _manager = 'x')\n",
	})
	stdlibFS := fstest.MapFS{"m.star": {Data: []byte("def _op(path, **control):\n    pass\nm = struct(op = _op)\n")}}
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Stdlib: stdlibFS})
	for _, tc := range []struct{ file, want string }{
		{"syntax.star", "syntax.star:2:5: got newline, want ':'"},
		{"undefined.star", "undefined.star:2:7: undefined: nope"},
		{"missing.star", "missing.star:1:6: cannot load lib/none.star: no such file"},
		{"cycle.star", "load cycle: " + filepath.Join(dir, "lib/a.star") + " -> " + filepath.Join(dir, "lib/b.star") + " -> " + filepath.Join(dir, "lib/a.star")},
		{"loadtime.star", "shell() called at load time"},
		{"hostmod.star", "usehost.star:2:12: undefined: host (host is predeclared in deploy scripts only"},
		{"prefix.star", "unknown module prefix"},
		{"nostd.star", `no stdlib module "nope.star"`},
		{"badsym.star", `badsym.star:1:22: load: lib/ok.star has no symbol "zzz"`},
		{"kwbuiltin.star", `kwbuiltin.star:1:11: put: unexpected keyword argument "contents" (did you mean content?)`},
		{"kwstdlib.star", `kwstdlib.star:3:11: m.op: unexpected keyword argument "tmeout" (did you mean timeout?)`},
		{"kwfunc.star", `kwfunc.star:3:3: g: unexpected keyword argument "y"`},
		{"kwinner.star", `kwinner.star:6:17: m.op: unexpected keyword argument "tmeout" (did you mean timeout?)`},
		{"kwdef.star", `kwdef.star:3:7: g: unexpected keyword argument "y"`},
		{"kwprivate.star", `kwprivate.star:2:11: m.op: unexpected keyword argument "_manager"`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := r.Compile(t.Context(), filepath.Join(dir, tc.file), nil)
			var ce *sdrt.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("got %T %v, want *CompileError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
		})
	}
}
