package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/connectors/plugin"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// The test binary is also the plugins the tests run: linked as
// star-deploy-connector-NAME, it serves the factory of that name.
func TestMain(m *testing.M) {
	if name, ok := strings.CutPrefix(filepath.Base(os.Args[0]), plugin.Prefix); ok {
		plugin.Serve(testFactory{scheme: name})
	}
	os.Exit(m.Run())
}

// testFactory is the local connector under another scheme, with a secret
// data key; the schemes crash, hang and stuck misbehave.
type testFactory struct{ scheme string }

func (f testFactory) Scheme() string { return f.scheme }
func (f testFactory) Doc() string    { return "The local connector, served as a plugin." }
func (f testFactory) Fields() []connectors.Field {
	return []connectors.Field{{Name: f.scheme + "_token", Type: "string", Doc: "A secret.", Secret: true}, {Name: f.scheme + "_size", Type: "int", Default: "3", Doc: "A size."}}
}

func (f testFactory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if addr == "bad" {
		return connectors.Target{}, fmt.Errorf("@%s: address %q is bad", f.scheme, addr)
	}
	return connectors.Target{Name: "@" + f.scheme + "/" + addr, Addr: addr, Data: data}, nil
}

func (f testFactory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	if f.scheme == "hang" {
		select {} // ignores ctx
	}
	c, err := local.NewFactory().Open(ctx, connectors.Target{})
	return testConn{c, f.scheme, t.Data[f.scheme+"_token"]}, err
}

type testConn struct {
	connectors.Connector
	scheme, token string
}

func (c testConn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	switch {
	case c.scheme == "crash" && cmd.Script == "crash":
		fmt.Fprintf(os.Stderr, "boom: lost my token %s\n", c.token)
		os.Exit(3)
	case c.scheme == "stuck" && cmd.Script == "stuck":
		fmt.Fprintln(cmd.Stdout, "ready")
		select {} // ignores ctx
	}
	return c.Connector.Run(ctx, cmd)
}

// link makes the test binary the plugin star-deploy-connector-NAME in dir.
func link(t *testing.T, dir, name string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, plugin.Prefix+name)
	if err := os.Symlink(exe, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// open opens @SCHEME/addr, closed when t ends.
func open(t *testing.T, f *plugin.Factory, addr string, data map[string]string) connectors.Connector {
	t.Helper()
	c, err := sshtest.Open(t, connectors.NewRegistry(f), "@"+f.Scheme()+"/"+addr, data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	f := plugin.NewFactory(link(t, t.TempDir(), "golocal"))
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		return open(t, f, "here", nil), t.TempDir()
	})
}

func TestDescribeAndParse(t *testing.T) {
	f := plugin.NewFactory(link(t, t.TempDir(), "golocal"))
	if f.Scheme() != "golocal" || f.Doc() != "The local connector, served as a plugin." {
		t.Errorf("scheme %q, doc %q", f.Scheme(), f.Doc())
	}
	fields := f.Fields()
	if len(fields) != 2 || fields[0].Name != "golocal_token" || !fields[0].Secret || fields[1].Default != "3" || fields[1].Type != "int" {
		t.Errorf("fields = %+v", fields)
	}
	tg, err := f.Parse("web1", map[string]string{"golocal_size": "4"})
	if err != nil || tg.Name != "@golocal/web1" || tg.Addr != "web1" || tg.Data["golocal_size"] != "4" || tg.Scheme != "golocal" {
		t.Errorf("Parse = %+v, %v", tg, err)
	}
	if _, err := f.Parse("bad", nil); err == nil || err.Error() != `@golocal: address "bad" is bad` {
		t.Errorf("Parse(bad) error = %v, want the plugin's own message", err)
	}
	reg := connectors.NewRegistry(f)
	if err := reg.CheckKey("golocal_sise"); err == nil || !strings.Contains(err.Error(), `did you mean "golocal_size"`) {
		t.Errorf("CheckKey(golocal_sise) = %v", err)
	}
}

func TestFind(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	a := link(t, d1, "one")
	link(t, d2, "one") // shadowed by the first
	b := link(t, d2, "two")
	os.WriteFile(filepath.Join(d2, plugin.Prefix+"noexec"), []byte("#!/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(d2, "other"), []byte("#!/bin/sh\n"), 0o755)
	got := plugin.Find(d1 + string(filepath.ListSeparator) + d2 + string(filepath.ListSeparator) + filepath.Join(d1, "missing"))
	if want := []string{a, b}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Find = %q, want %q", got, want)
	}
	for in, want := range map[string]string{"/x/star-deploy-connector-rest": "rest", "star-deploy-connector-api.py": "api", "/bin/mine": "mine"} {
		if got := plugin.SchemeOf(in); got != want {
			t.Errorf("SchemeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSchemeMismatch(t *testing.T) {
	dir := t.TempDir()
	exe, _ := os.Executable()
	// A plugin serving "golocal" under the file name of "other".
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	real := filepath.Join(dir, "sub", plugin.Prefix+"golocal")
	os.Symlink(exe, real)
	script := filepath.Join(dir, plugin.Prefix+"other")
	os.WriteFile(script, []byte("#!/bin/sh\nexec "+real+"\n"), 0o755)
	f := plugin.NewFactory(script)
	if _, err := f.Parse("x", nil); err == nil || !strings.Contains(err.Error(), "provides @golocal, but its file name provides @other") {
		t.Errorf("Parse = %v, want a scheme mismatch", err)
	}
}

func TestCrashFailsTheConnection(t *testing.T) {
	f := plugin.NewFactory(link(t, t.TempDir(), "crash"))
	const token = "s3cr3t-token-value"
	c := open(t, f, "x", map[string]string{"crash_token": token})
	if res, err := c.Run(t.Context(), connectors.Command{Script: "echo fine"}); err != nil || string(res.Stdout) != "fine\n" {
		t.Fatalf("run before the crash: %+v, %v", res, err)
	}
	_, err := c.Run(t.Context(), connectors.Command{Script: "crash"})
	if err == nil || !strings.Contains(err.Error(), "exited unexpectedly (exit status 3)") || !strings.Contains(err.Error(), "boom: lost my token <secret>") {
		t.Fatalf("run that crashes the plugin: %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("the error shows the secret: %v", err)
	}
	if _, err := c.Run(t.Context(), connectors.Command{Script: "true"}); err == nil || !strings.Contains(err.Error(), "exited unexpectedly") {
		t.Errorf("run after the crash: %v", err)
	}
	if err := c.Put(t.Context(), filepath.Join(t.TempDir(), "f"), strings.NewReader("x"), 0o644); err == nil {
		t.Errorf("put after the crash succeeded")
	}
	if err := c.Close(); err != nil {
		t.Errorf("close after the crash: %v", err)
	}
}

func TestHangingOpenTimesOut(t *testing.T) {
	f := plugin.NewFactory(link(t, t.TempDir(), "hang"), plugin.Options{CallTimeout: time.Second})
	tg, err := f.Parse("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Open(t.Context(), tg)
	if err == nil || !strings.Contains(err.Error(), `did not answer "open" within 1s`) {
		t.Errorf("open of a hanging plugin: %v", err)
	}

	// A cancel ends the wait at once.
	f = plugin.NewFactory(f.Path(), plugin.Options{CallTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := f.Open(ctx, tg); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("open cancelled by its context: %v, want DeadlineExceeded", err)
	}
}

func TestStuckCommandIsKilledAfterCancel(t *testing.T) {
	f := plugin.NewFactory(link(t, t.TempDir(), "stuck"), plugin.Options{CancelGrace: 500 * time.Millisecond})
	c := open(t, f, "x", nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, connectors.Command{Script: "stuck", Stdout: writerFunc(func(p []byte) { cancel() })})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled run: %v, want Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a cancelled run of a stuck plugin did not return")
	}
	_, err := c.Run(t.Context(), connectors.Command{Script: "true"})
	if err == nil || !strings.Contains(err.Error(), "a cancelled command did not end within 500ms") {
		t.Errorf("run after the kill: %v", err)
	}
}

func TestGetMissingAndModes(t *testing.T) {
	f := plugin.NewFactory(link(t, t.TempDir(), "golocal"))
	c := open(t, f, "x", nil)
	dir := t.TempDir()
	err := c.Get(t.Context(), filepath.Join(dir, "nope"), io.Discard)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("get of a missing file: %v", err)
	}
	p := filepath.Join(dir, "suid")
	if err := c.Put(t.Context(), p, strings.NewReader("x"), 0o4755); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode()&fs.ModeSetuid == 0 || st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want setuid 0755", st.Mode())
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
