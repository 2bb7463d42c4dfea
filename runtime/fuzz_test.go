package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// FuzzSandbox runs arbitrary scripts in a sandbox on an in-memory host: a
// run must end (step limit), never panic the engine, and never bring the
// secret that lies outside the sandbox's files to the host or the output.
func FuzzSandbox(f *testing.F) {
	for _, s := range []string{
		`print("hi")`,
		`put("/etc/x", src = "app.conf")`,
		`put("/etc/x", src = "../secret")`,
		`load("lib/m.star", "n")` + "\nprint(n)",
		`template("/secret", "/x")`,
		"while True:\n    pass",
		`local_tree(".")`,
		`shell("cat /secret")`,
		`print(fact("content", "/secret"))`,
		`x = [i for i in range(100)]`,
		`load("@stdlib//files.star", "files")` + "\nfiles.sync(\".\", \"/srv\")",
	} {
		f.Add(s)
	}
	// The app's files, and a secret outside them with a link to it.
	top := f.TempDir()
	app := filepath.Join(top, "app")
	for p, content := range map[string]string{"app/app.conf": "ok\n", "app/lib/m.star": "n = 1\n", "secret": "TOP-SECRET\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(top, p)), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(top, p), []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(top, "secret"), filepath.Join(app, "evil")); err != nil {
		f.Fatal(err)
	}
	f.Add(`put("/x", src = "evil")`)
	files := os.DirFS(app)
	f.Fuzz(func(t *testing.T, script string) {
		var rec recorder
		host, conn := fakeHost("h")
		r := sdrt.New(sdrt.Options{Connectors: connectorsFor(conn),
			MaxSteps: 20_000,
			Stdlib:   stdlib.FS,
			OnEvent:  rec.add,
			Sandbox: &sdrt.Sandbox{
				Files:      files,
				Effects:    builtins.EffectReadHost | builtins.EffectWriteHost | builtins.EffectLocalFS,
				Connectors: []string{"fake"},
				MaxOutput:  4096,
			},
		})
		prog, err := r.Compile(t.Context(), "deploy.star", []byte(script))
		if err != nil {
			return
		}
		rep := r.Run(t.Context(), []*sdrt.Program{prog}, []sdrt.Host{host})
		var pe *sdrt.PanicError
		if err := rep.Hosts[0].Err; err != nil && errors.As(err, &pe) {
			t.Fatalf("engine panic: %v\n%s", pe, pe.Stack)
		}
		noSecret(t, "TOP-SECRET", conn, &rec)
	})
}
