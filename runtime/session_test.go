package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// eval runs src in s and returns each host's value (its String, "" for
// none) or error.
func eval(t *testing.T, s *sdrt.Session, src string) []string {
	t.Helper()
	res, err := s.Eval(t.Context(), []byte(src))
	if err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	var out []string
	for _, r := range res {
		switch {
		case r.Err != nil:
			out = append(out, "error: "+r.Err.Error())
		case r.Value != nil:
			out = append(out, r.Value.String())
		default:
			out = append(out, "")
		}
	}
	return out
}

func TestSessionKeepsGlobalsPerHost(t *testing.T) {
	var rec recorder
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), OnEvent: rec.add,
		Stdlib: fstest.MapFS{"m.star": {Data: []byte("def twice(x):\n    return 2 * x\n")}}})
	s, err := r.OpenSession(t.Context(), []sdrt.Host{localHost(t, "@local", nil), localHost(t, "@other", nil)})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		src  string
		want []string
	}{
		{"x = len(host.name)", []string{"", ""}},
		{"x + 1", []string{"7", "7"}},
		{"_ * 2", []string{"14", "14"}},
		{"if host.name == '@local':\n    y = 'l'\n\n", []string{"", ""}},
		{"y", []string{"\"l\"", "error: <repl>:1:1: undefined: y"}},
		{"def f(a):\n    return a + x\n\nf(1)\n", []string{"", ""}},
		{"f(10)", []string{"16", "16"}},
		{`load("@stdlib//m.star", "twice")`, []string{"", ""}},
		{"twice(x)", []string{"12", "12"}},
		{`shell("echo hi").stdout`, []string{`"hi\n"`, `"hi\n"`}},
		{`fail("no")`, []string{"error: <repl>:1:5: fail: no", "error: <repl>:1:5: fail: no"}},
		{"x", []string{"6", "6"}},
		{"None", []string{"", ""}},
	}
	for _, st := range steps {
		if got := eval(t, s, st.src); !slices.Equal(got, st.want) {
			t.Errorf("%q:\n got %q\nwant %q", st.src, got, st.want)
		}
	}
	if _, err := s.Eval(t.Context(), []byte("x = (")); err == nil || !strings.Contains(err.Error(), "<repl>:1:") {
		t.Errorf("syntax error: %v", err)
	}
	if _, err := s.Eval(t.Context(), []byte(`load("@stdlib//nope.star", "a")`)); err == nil || !strings.Contains(err.Error(), "nope.star") {
		t.Errorf("missing module: %v", err)
	}
	if got := s.Complete("tw"); !slices.Equal(got, []string{"twice"}) {
		t.Errorf("Complete(tw) = %q", got)
	}
	if got := s.Complete("host.na"); !slices.Equal(got, []string{"host.name"}) {
		t.Errorf("Complete(host.na) = %q", got)
	}
	if got := s.Complete("sh"); !slices.Contains(got, "shell") {
		t.Errorf("Complete(sh) = %q", got)
	}
	rep := s.Close(t.Context())
	if len(rep.Hosts) != 2 || rep.Hosts[0].Status != sdrt.StatusOK || rep.Hosts[0].Counts.Changed != 1 {
		t.Errorf("report %+v", rep.Hosts)
	}
	if n := len(rec.of(builtins.KindHostStart)); n != 2 {
		t.Errorf("%d host_start events, want 2 (one connection per host)", n)
	}
	if n := len(rec.of(builtins.KindHostEnd)); n != 2 {
		t.Errorf("%d host_end events, want 2", n)
	}
}

func TestSessionDryAndCancel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Dry: true})
	s, err := r.OpenSession(t.Context(), []sdrt.Host{localHost(t, "@local", nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	if got := eval(t, s, `put(`+starlark.String(path).String()+`, content="x").changed`); !slices.Equal(got, []string{"True"}) {
		t.Errorf("dry put: %q", got)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry put wrote the file: %v", err)
	}

	// A cancelled chunk fails on the host; the session goes on.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res, err := s.Eval(ctx, []byte("1"))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, sdrt.ErrCancelled) {
		t.Errorf("cancelled chunk: %+v, %v", res, err)
	}
	if got := eval(t, s, "2"); !slices.Equal(got, []string{"2"}) {
		t.Errorf("after the cancel: %q", got)
	}
}

func TestSessionUnreachable(t *testing.T) {
	var rec recorder
	down := &flakyFactory{Factory: fake.NewFactory(nil), down: func(int32) bool { return true }}
	r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(local.NewFactory(), down), OnEvent: rec.add})
	bad := sdrt.Host{Name: "down", Target: connectors.Target{Scheme: "fake", Name: "down"}}
	s, err := r.OpenSession(t.Context(), []sdrt.Host{localHost(t, "@local", nil), bad})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Connected(); !slices.Equal(got, []string{"@local"}) {
		t.Errorf("connected %q", got)
	}
	if got := eval(t, s, "1"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("%q", got)
	}
	ends := rec.of(builtins.KindHostEnd)
	if len(ends) != 1 || ends[0].Status != sdrt.StatusUnreachable {
		t.Errorf("host_end %+v", ends)
	}
	rep := s.Close(t.Context())
	if rep.Failed() != 1 || rep.Hosts[1].Status != sdrt.StatusUnreachable {
		t.Errorf("report %+v", rep.Hosts)
	}
}

// TestSessionChecksKeywords: a chunk's calls are checked as Compile checks
// a script's, before any host runs it, where every host's callee is the
// same; a function the chunk itself (re)defines is taken as it will be.
func TestSessionChecksKeywords(t *testing.T) {
	dir := t.TempDir()
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(),
		Stdlib: fstest.MapFS{"m.star": {Data: []byte("def _op(path, **control):\n    pass\nm = struct(op = _op)\n")}}})
	s, err := r.OpenSession(t.Context(), []sdrt.Host{localHost(t, "@local", nil), localHost(t, "@other", nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	if got := eval(t, s, `load("@stdlib//m.star", "m")`); !slices.Equal(got, []string{"", ""}) {
		t.Fatalf("load: %q", got)
	}
	out := filepath.Join(dir, "put")
	for _, c := range []struct{ src, want string }{
		{"put(" + strconv.Quote(out) + ", contents = 'x')", `<repl>:1:` + strconv.Itoa(len(strconv.Quote(out))+7) + `: put: unexpected keyword argument "contents" (did you mean content?)`},
		{"m.op('a', tmeout = 3)", `<repl>:1:11: m.op: unexpected keyword argument "tmeout" (did you mean timeout?)`},
		{"def setup():\n    m.op('a', tmeout = 3)\n", `<repl>:2:15: m.op: unexpected keyword argument "tmeout"`},
		{`load("@stdlib//m.star", m2 = "m")` + "\nm2.op('a', tmeout = 3)", `<repl>:2:12: m2.op: unexpected keyword argument "tmeout"`},
	} {
		if _, err := s.Eval(t.Context(), []byte(c.src)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v\nwant %s", c.src, err, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the refused put ran: %v", err)
	}
	// g's old parameters do not hold for the g this chunk defines; a
	// function each host defined for itself is not checked.
	for _, src := range []string{"def g(x):\n    return x\n", "def g(y):\n    return y\ng(y = 1)\n", "g(z = 1) if False else None", "m.op('a', timeout = 3, name = 'n')"} {
		if _, err := s.Eval(t.Context(), []byte(src)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

// TestSessionChecksItsOwnFunctions: a function a chunk defines sees the
// globals as they were then, so a call in it of the g an earlier chunk
// defined is checked against that g, which no later chunk changes for it.
func TestSessionChecksItsOwnFunctions(t *testing.T) {
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor()})
	s, err := r.OpenSession(t.Context(), []sdrt.Host{localHost(t, "@local", nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	if _, err := s.Eval(t.Context(), []byte("def g(x):\n    return x\n")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Eval(t.Context(), []byte("def h():\n    return g(y = 1)\n"))
	if want := `<repl>:2:14: g: unexpected keyword argument "y" (did you mean x?)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("h calling g(y = 1): %v, want %s", err, want)
	}
	// Why that is right: k keeps the g of its chunk when g changes.
	for _, src := range []string{"def k():\n    return g(5)\n", "def g(y):\n    return y * 2\n"} {
		if _, err := s.Eval(t.Context(), []byte(src)); err != nil {
			t.Fatal(err)
		}
	}
	if got := eval(t, s, "k()"); !slices.Equal(got, []string{"5"}) {
		t.Errorf("k() = %q, want 5 (the g it was defined with)", got)
	}
}
