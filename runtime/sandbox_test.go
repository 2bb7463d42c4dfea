package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// sandboxDir makes an app directory for a sandbox: a module, a template, a
// directory, and links that lead out of it, next to a secret outside it.
func sandboxDir(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	secret := filepath.Join(top, "secret.txt")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(secret, []byte("SECRET-CONTENT\n"), 0o600))
	must(os.WriteFile(filepath.Join(top, "outside.star"), []byte("x = 'SECRET-CONTENT'\n"), 0o600))
	app := filepath.Join(top, "app")
	must(os.MkdirAll(filepath.Join(app, "lib"), 0o755))
	must(os.MkdirAll(filepath.Join(app, "site"), 0o755))
	must(os.WriteFile(filepath.Join(app, "lib", "ok.star"), []byte("greeting = 'hi'\n"), 0o644))
	must(os.WriteFile(filepath.Join(app, "site", "index.html"), []byte("<p>ok</p>\n"), 0o644))
	must(os.WriteFile(filepath.Join(app, "page.tmpl"), []byte("page for {{ .host.name }}\n"), 0o644))
	must(os.Symlink(secret, filepath.Join(app, "evil.txt")))
	must(os.Symlink(filepath.Join(top, "outside.star"), filepath.Join(app, "evil.star")))
	must(os.Symlink(top, filepath.Join(app, "evildir")))
	must(os.Symlink("lib/ok.star", filepath.Join(app, "inside.star"))) // a link that stays inside
	return app
}

// noSecret fails t when secret reached a file of conn (nil: none) or an
// event rec holds.
func noSecret(t *testing.T, secret string, conn *fake.Conn, rec *recorder) {
	t.Helper()
	if conn != nil {
		for _, p := range conn.Paths() {
			if f, _ := conn.File(p); strings.Contains(string(f.Content), secret) {
				t.Errorf("the secret reached the host in %s", p)
			}
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if strings.Contains(e.Message+e.Error+e.Diff, secret) {
			t.Errorf("the secret reached an event: %+v", e)
		}
	}
}

// fakeHost is an in-memory host where no file exists (the file probe,
// "p=...", exits 3); its connector records every upload.
func fakeHost(name string) (sdrt.Host, *fake.Conn) {
	c := fake.New(name).On("p=", connectors.Result{ExitCode: 3})
	return sdrt.Host{Name: name, Target: connectors.Target{Scheme: "fake", Name: name}}, c
}

// TestSandboxEscapes runs scripts that try to reach outside the sandbox:
// every attempt must fail with an error that says why, and no content from
// outside may reach the host or the output.
func TestSandboxEscapes(t *testing.T) {
	app := sandboxDir(t)
	all := builtins.EffectReadHost | builtins.EffectWriteHost | builtins.EffectLocalFS
	cases := []struct {
		name    string
		effects builtins.Effect
		file    string // script file name inside the sandbox (default deploy.star)
		script  string
		want    string
		host    string // connector of the host: "fake" (allowed) or "local"
		opts    func(*sdrt.Options)
	}{
		{name: "load absolute", script: `load("/etc/passwd.star", "x")`, want: "absolute paths are not allowed"},
		{name: "load dotdot", script: `load("../outside.star", "x")`, want: "leaves the sandbox"},
		{name: "load dotdot inside path", script: `load("lib/../../outside.star", "x")`, want: "leaves the sandbox"},
		{name: "load link out", script: `load("evil.star", "x")`, want: "leaves the sandbox"},
		{name: "load through dir link", script: `load("evildir/outside.star", "x")`, want: "leaves the sandbox"},
		{name: "load stdlib dotdot", script: `load("@stdlib//../../../etc/passwd.star", "x")`, want: "no stdlib module"},
		{name: "load unknown prefix", script: `load("@app//x.star", "x")`, want: "unknown module prefix"},
		{name: "put src absolute", effects: all, script: `put("/tmp/x", src = "/etc/passwd")`, want: "absolute paths are not allowed"},
		{name: "put src dotdot", effects: all, script: `put("/tmp/x", src = "../secret.txt")`, want: "leaves the sandbox"},
		{name: "put src link out", effects: all, script: `put("/tmp/x", src = "evil.txt")`, want: "leaves the sandbox"},
		{name: "put src dir link", effects: all, script: `put("/tmp/x", src = "evildir/secret.txt")`, want: "leaves the sandbox"},
		{name: "put src directory", effects: all, script: `put("/tmp/x", src = "site")`, want: "not a regular file"},
		{name: "template link out", effects: all, script: `template("evil.txt", "/tmp/x")`, want: "leaves the sandbox"},
		{name: "template absolute", effects: all, script: `template("/etc/hostname", "/tmp/x")`, want: "absolute paths are not allowed"},
		{name: "template from a subdirectory", effects: all, file: "lib/deploy.star", script: `template("../../secret.txt", "/tmp/x")`, want: "leaves the sandbox"},
		{name: "local_tree root", effects: all, script: `local_tree("/")`, want: "absolute paths are not allowed"},
		{name: "local_tree dotdot", effects: all, script: `local_tree("..")`, want: "leaves the sandbox"},
		{name: "local_tree dir link", effects: all, script: `local_tree("evildir")`, want: "leaves the sandbox"},
		{name: "get writes local", effects: all, script: `get("/etc/hostname", "stolen")`, want: "writing local files is not allowed"},
		{name: "shell withheld", effects: builtins.EffectReadHost, script: `shell("id")`, want: "undefined: shell"},
		{name: "put withheld", effects: builtins.EffectReadHost | builtins.EffectWriteHost, script: `put("/x", content = "y")`, want: "undefined: put"},
		{name: "fact withheld", script: `fact("os")`, want: "undefined: fact"},
		{name: "stdlib needing withheld builtins", effects: builtins.EffectReadHost, script: `load("@stdlib//files.star", "files")`, want: "undefined: shell"},
		{name: "withheld connector", host: "local", script: `print(1)`, want: "the local connector is not allowed here"},
		{name: "print flood", script: "for i in range(100000):\n    print('x' * 1000)", want: "output limit of the sandbox was exceeded"},
		{name: "infinite loop", script: "while True:\n    pass", want: "too many steps"},
		{name: "range bomb", script: "x = list(range(1 << 40))", want: "more than the sandbox allows"},
		{name: "range bomb through sorted", script: "x = sorted(range(1 << 30))", want: "more than the sandbox allows"},
		{name: "deadline in a builtin-heavy loop", script: "while True:\n    re.sub('a+', 'b', 'a' * 10000)",
			want: "cancelled", opts: func(o *sdrt.Options) { o.MaxSteps = 0; o.Timeout = 200 * time.Millisecond }},
		{name: "compile absolute file", file: "/etc/passwd", script: `x = 1`, want: "absolute paths are not allowed"},
		{name: "compile dotdot file", file: "../outside.star", script: `x = 1`, want: "leaves the sandbox"},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d escape attempts", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conns := []string{"fake"}
			host, conn := fakeHost("h")
			opts := sdrt.Options{
				Connectors: connectorsFor(conn),
				MaxSteps:   100_000,
				Stdlib:     stdlib.FS,
				Sandbox:    &sdrt.Sandbox{Files: os.DirFS(app), Effects: c.effects, Connectors: conns, MaxOutput: 10_000},
			}
			if c.opts != nil {
				c.opts(&opts)
			}
			var rec recorder
			opts.OnEvent = rec.add
			r := sdrt.New(opts)
			file := c.file
			if file == "" {
				file = "deploy.star"
			}
			var errText string
			prog, err := r.Compile(t.Context(), file, []byte(c.script))
			if err != nil {
				errText = err.Error()
				conn = nil
			} else {
				if c.host == "local" {
					host = localHost(t, "h", nil)
				}
				rep := r.Run(t.Context(), []*sdrt.Program{prog}, []sdrt.Host{host})
				if rep.Hosts[0].Err == nil {
					t.Fatalf("the script succeeded; want an error with %q", c.want)
				}
				errText = rep.Hosts[0].Err.Error()
			}
			if !strings.Contains(errText, c.want) {
				t.Errorf("error %q lacks %q", errText, c.want)
			}
			noSecret(t, "SECRET", conn, &rec)
		})
	}
}

// TestSandboxAllowsTheInside: what stays inside the sandbox works,
// including a link that points inside, an app builtin and an app module.
func TestSandboxAllowsTheInside(t *testing.T) {
	app := sandboxDir(t)
	var printed []string
	var mu sync.Mutex
	host, conn := fakeHost("h")
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(conn),
		Stdlib: stdlib.FS,
		Sandbox: &sdrt.Sandbox{
			Files:      os.DirFS(app),
			Effects:    builtins.EffectReadHost | builtins.EffectWriteHost | builtins.EffectLocalFS,
			Connectors: []string{"fake"},
		},
		Builtins: starlark.StringDict{"app_version": starlark.String("2.1")},
		Print: func(host, msg string) {
			mu.Lock()
			defer mu.Unlock()
			printed = append(printed, host+": "+msg)
		},
	})
	prog, err := r.Compile(t.Context(), "deploy.star", []byte(`
load("lib/ok.star", "greeting")
load("inside.star", g2 = "greeting")
load("@stdlib//files.star", "files")
template("page.tmpl", "/srv/page")
files.sync("site", "/srv/site")
print(greeting, g2, app_version, len(local_tree(".")))
`))
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Run(t.Context(), []*sdrt.Program{prog}, []sdrt.Host{host})
	if err := rep.Hosts[0].Err; err != nil {
		t.Fatal(err)
	}
	if f, ok := conn.File("/srv/page"); !ok || string(f.Content) != "page for h\n" {
		t.Errorf("/srv/page = %q", f.Content)
	}
	if f, ok := conn.File("/srv/site/index.html"); !ok || string(f.Content) != "<p>ok</p>\n" {
		t.Errorf("/srv/site/index.html = %q", f.Content)
	}
	if len(printed) != 1 || !strings.HasPrefix(printed[0], "h: hi hi 2.1 ") {
		t.Errorf("printed %q", printed)
	}
}

// TestConcurrentSandboxedRuns runs 50 embedded runs at once (go test -race
// checks them for races) and checks that no goroutine or file descriptor
// outlives them.
func TestConcurrentSandboxedRuns(t *testing.T) {
	files := fstest.MapFS{
		"deploy.star":   {Data: []byte("load('lib/m.star', 'n')\nput('/etc/app', src = 'app.conf')\nprint(n + 1)\n")},
		"lib/m.star":    {Data: []byte("n = 41\n")},
		"app.conf":      {Data: []byte("x = 1\n")},
		"infinite.star": {Data: []byte("while True:\n    pass\n")},
	}
	run := func(i int) error {
		var hosts []sdrt.Host
		var conns []*fake.Conn
		for j := range 3 {
			h, c := fakeHost(fmt.Sprintf("run%d-h%d", i, j))
			hosts, conns = append(hosts, h), append(conns, c)
		}
		r := sdrt.New(sdrt.Options{Connectors: connectorsFor(conns...),
			MaxSteps: 10_000,
			Sandbox:  &sdrt.Sandbox{Files: files, Effects: builtins.EffectReadHost | builtins.EffectWriteHost | builtins.EffectLocalFS, Connectors: []string{"fake"}},
		})
		name := "deploy.star"
		if i%5 == 0 {
			name = "infinite.star"
		}
		prog, err := r.Compile(t.Context(), name, nil)
		if err != nil {
			return err
		}
		rep := r.Run(t.Context(), []*sdrt.Program{prog}, hosts)
		for _, h := range rep.Hosts {
			switch {
			case name == "infinite.star" && (h.Err == nil || !strings.Contains(h.Err.Error(), "too many steps")):
				return fmt.Errorf("run %d %s: err = %v, want the step limit", i, h.Name, h.Err)
			case name == "deploy.star" && h.Err != nil:
				return fmt.Errorf("run %d %s: %v", i, h.Name, h.Err)
			}
		}
		return nil
	}
	run(-1) // warm up caches (regexps, the stdlib) before counting
	goroutines, fds := goruntime.NumGoroutine(), openFDs(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Goroutines end a moment after Run returns (AfterFunc stops); wait a
	// bounded while for them.
	var now int
	for range 100 {
		if now = goruntime.NumGoroutine(); now <= goroutines {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if now > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", goroutines, now, buf[:goruntime.Stack(buf, true)])
	}
	if after := openFDs(t); after > fds {
		t.Errorf("%d open file descriptors before, %d after", fds, after)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(entries)
}
