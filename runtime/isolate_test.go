package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// TestMain makes the test binary its own isolated child, as an embedding
// app's main does.
func TestMain(m *testing.M) {
	if sdrt.IsChild() {
		sdrt.ServeChild(sdrt.ChildConfig{
			Connectors: connectors.NewRegistry(local.NewFactory(), fake.NewFactory(nil)),
			Stdlib:     stdlib.FS,
		})
	}
	os.Exit(m.Run())
}

func isolatedRunner(rec *recorder) *sdrt.Runner {
	return sdrt.New(sdrt.Options{Connectors: connectorsFor(),
		MaxSteps: 50_000_000,
		Stdlib:   stdlib.FS,
		OnEvent:  rec.add,
		Sandbox: &sdrt.Sandbox{
			Files:      fstest.MapFS{"conf.tmpl": {Data: []byte("port {{ .port }}\n")}},
			Effects:    builtins.EffectReadHost | builtins.EffectWriteHost | builtins.EffectLocalFS,
			Connectors: []string{"local", "fake"},
		},
	})
}

// TestIsolatedRun: a script runs in the child with the sandbox's files and
// the host's data, and its events reach the parent.
func TestIsolatedRun(t *testing.T) {
	out := t.TempDir()
	var rec recorder
	r := isolatedRunner(&rec)
	host := localHost(t, "h", map[string]any{"port": int64(8080), "dest": filepath.Join(out, "app.conf")})
	rep, err := r.RunIsolated(t.Context(), sdrt.Isolation{}, []sdrt.Script{{Filename: "deploy.star", Src: []byte(`
template("conf.tmpl", host.data["dest"], vars = {"port": host.data["port"]})
print("port", host.data["port"] + 1)
`)}}, []sdrt.Host{host})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Hosts[0].Err; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "app.conf"))
	if err != nil || string(b) != "port 8080\n" {
		t.Errorf("app.conf = %q, %v", b, err)
	}
	if rep.Hosts[0].Counts.Changed != 1 {
		t.Errorf("counts %+v", rep.Hosts[0].Counts)
	}
	prints := rec.of(builtins.KindPrint)
	if len(prints) != 1 || prints[0].Message != "port 8081" {
		t.Errorf("prints %+v", prints)
	}
}

// TestIsolatedMemoryLimit: scripts that would eat the machine's memory fail
// their run with a clear error, and the app carries on.
func TestIsolatedMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		script  string
		sandbox bool
	}{
		{"x = []\nfor i in range(1000):\n    x.append('a' * (1 << 24) + str(i))", true},
		{"x = [0] * (1 << 28)", true},
		{"x = 'a' * (1 << 30)", true},
		{"x = list(range(1 << 40))", true},  // the sandbox bounds range()
		{"x = list(range(1 << 27))", false}, // without it, the child dies, alone
	} {
		script := c.script
		var rec recorder
		r := isolatedRunner(&rec)
		if !c.sandbox {
			r = sdrt.New(sdrt.Options{Connectors: connectorsFor(), OnEvent: rec.add})
		}
		h, _ := fakeHost("h")
		rep, err := r.RunIsolated(t.Context(), sdrt.Isolation{MemoryLimit: 128 << 20}, []sdrt.Script{{Filename: "hog.star", Src: []byte(script)}}, []sdrt.Host{h})
		if err != nil {
			t.Fatal(err)
		}
		msg := ""
		if rep.Hosts[0].Err != nil {
			msg = rep.Hosts[0].Err.Error()
		}
		if !strings.Contains(msg, "memory limit of 128 MiB") && !strings.Contains(msg, "excessive repeat") && !strings.Contains(msg, "more than the sandbox allows") {
			t.Errorf("%q: err = %q, want a memory error", script, msg)
		}
		t.Logf("%q: %s", script, msg)
	}
	// The app carries on: the next isolated run works.
	var rec recorder
	h, _ := fakeHost("h")
	rep, err := isolatedRunner(&rec).RunIsolated(t.Context(), sdrt.Isolation{}, []sdrt.Script{{Filename: "ok.star", Src: []byte("print('fine')")}}, []sdrt.Host{h})
	if err != nil || rep.Hosts[0].Err != nil {
		t.Fatalf("%v %v", err, rep.Hosts[0].Err)
	}
}

// TestIsolatedCompileError comes back as a *CompileError.
func TestIsolatedCompileError(t *testing.T) {
	var rec recorder
	h, _ := fakeHost("h")
	_, err := isolatedRunner(&rec).RunIsolated(t.Context(), sdrt.Isolation{}, []sdrt.Script{{Filename: "bad.star", Src: []byte("x = \n")}}, []sdrt.Host{h})
	if _, ok := err.(*sdrt.CompileError); !ok || !strings.Contains(err.Error(), "bad.star:1") {
		t.Errorf("err = %v", err)
	}
}

// TestIsolatedChildThatDoesNotServe: a child command that is not a
// star-deploy child is stopped with an error that says what is missing.
func TestIsolatedChildThatDoesNotServe(t *testing.T) {
	var rec recorder
	h, _ := fakeHost("h")
	_, err := isolatedRunner(&rec).RunIsolated(t.Context(), sdrt.Isolation{Command: []string{"sh", "-c", "cat >/dev/null; echo not json"}}, []sdrt.Script{{Filename: "ok.star", Src: []byte("print(1)")}}, []sdrt.Host{h})
	if err == nil || !strings.Contains(err.Error(), "does its main call runtime.ServeChild") {
		t.Fatalf("err = %v", err)
	}
}

// TestIsolatedRemoteModules: in an isolated run the child loads remote
// modules, and a remote module's template, through the parent's
// Options.Remote; a source outside RemoteAllow is refused in the child.
func TestIsolatedRemoteModules(t *testing.T) {
	const web = "git+https://git.example.com/ops/web@v1//"
	stub := &stubRemote{files: map[string]string{
		web + "site.star":     "load(\"lib/util.star\", \"greet\")\ndef site(dest):\n    template(\"site.tmpl\", dest, vars = {\"name\": greet()})\n",
		web + "lib/util.star": "def greet():\n    return \"web\"\n",
		web + "site.tmpl":     "server {{ .name }}\n",
	}}
	dest := filepath.Join(t.TempDir(), "site.conf")
	var rec recorder
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Stdlib: stdlib.FS, OnEvent: rec.add,
		Remote: stub, RemoteAllow: []string{"git+https://git.example.com/ops/"}})
	host := localHost(t, "h", map[string]any{"dest": dest})
	rep, err := r.RunIsolated(t.Context(), sdrt.Isolation{}, []sdrt.Script{{Filename: "deploy.star", Src: []byte(
		"load(\"" + web + "site.star\", \"site\")\nsite(host.data[\"dest\"])\n")}}, []sdrt.Host{host})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Hosts[0].Err; err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "server web\n" {
		t.Errorf("site.conf = %q, %v", b, err)
	}
	stub.mu.Lock()
	reads := strings.Join(stub.reads, " ")
	stub.mu.Unlock()
	if reads != web+"site.star "+web+"lib/util.star "+web+"site.tmpl" {
		t.Errorf("the parent read %q", reads)
	}

	other := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Stdlib: stdlib.FS, Remote: stub, RemoteAllow: []string{"git+https://git.example.com/other/"}})
	_, err = other.RunIsolated(t.Context(), sdrt.Isolation{}, []sdrt.Script{{Filename: "deploy.star", Src: []byte("load(\"" + web + "site.star\", \"site\")\n")}}, []sdrt.Host{host})
	if !errors.Is(err, sdrt.ErrSandbox) || !strings.Contains(err.Error(), "is not an allowed source here") {
		t.Errorf("a source outside RemoteAllow: %v", err)
	}
}
