package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

func compile(t *testing.T, r *sdrt.Runner, dir, file string) *sdrt.Program {
	t.Helper()
	p, err := r.Compile(t.Context(), filepath.Join(dir, file), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunLocalIdempotent(t *testing.T) {
	out := t.TempDir()
	dir := writeFiles(t, map[string]string{
		"deploy.star": `
load("lib/util.star", "greet")
load("@stdlib//std.star", "std_value")
put(OUT + "/a.txt", content = greet(host.name) + std_value)
r = shell("echo hi", creates = OUT + "/a.txt")
print("skipped" if r.skipped else "ran")
`,
		"lib/util.star": "def greet(name):\n    return 'hello ' + name\n",
	})
	src, _ := os.ReadFile(filepath.Join(dir, "deploy.star"))
	os.WriteFile(filepath.Join(dir, "deploy.star"), []byte(strings.ReplaceAll(string(src), "OUT", `"`+out+`"`)), 0o644)
	var rec recorder
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), OnEvent: rec.add, Stdlib: fstest.MapFS{"std.star": {Data: []byte("std_value = '!'\n")}}})
	p := compile(t, r, dir, "deploy.star")
	rep := r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{localHost(t, "@local", nil)})
	if rep.Failed() != 0 {
		t.Fatal(rep.Hosts[0].Err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "a.txt")); string(got) != "hello @local!" {
		t.Errorf("a.txt = %q", got)
	}
	if c := rep.Hosts[0].Counts; c.Changed != 1 || c.Skipped != 1 {
		t.Errorf("first run counts %+v, want 1 changed, 1 skipped", c)
	}
	rep = r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{localHost(t, "@local", nil)})
	if c := rep.Hosts[0].Counts; c.Changed != 0 || c.OK != 1 {
		t.Errorf("second run counts %+v, want 0 changed", c)
	}
	prints := rec.of(builtins.KindPrint)
	if len(prints) != 2 || prints[0].Message != "skipped" || prints[0].Host != "@local" {
		t.Errorf("print events %+v", prints)
	}
	if n := len(rec.of(builtins.KindHostEnd)); n != 2 {
		t.Errorf("%d host_end events, want 2", n)
	}
}

func TestFailingHostStopsOnlyItself(t *testing.T) {
	out := t.TempDir()
	dir := writeFiles(t, map[string]string{"deploy.star": `
if host.data.get("bad"):
    shell("echo broken >&2; exit 7")
put("` + out + `/" + host.name, content = "done")
`})
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Parallel: 2})
	p := compile(t, r, dir, "deploy.star")
	rep := r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{
		localHost(t, "good1", nil), localHost(t, "bad", map[string]any{"bad": true}), localHost(t, "good2", nil),
	})
	if rep.Failed() != 1 {
		t.Fatalf("%d hosts failed, want 1", rep.Failed())
	}
	var se *sdrt.ScriptError
	if !errors.As(rep.Hosts[1].Err, &se) {
		t.Fatalf("bad host error %T %v", rep.Hosts[1].Err, rep.Hosts[1].Err)
	}
	if !strings.HasSuffix(se.Pos, "deploy.star:3:10") || !strings.Contains(se.Error(), "exited with status 7: broken") {
		t.Errorf("error %q at %q", se.Error(), se.Pos)
	}
	for _, name := range []string{"good1", "good2"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("host %s did not finish: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "bad")); err == nil {
		t.Error("the failing host went on after its error")
	}
}

func TestModulesAreFrozenAndShared(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"deploy.star":      "load('lib/m.star', 'items', 'add')\nadd('x')\n",
		"lib/m.star":       "items = []\ndef add(x):\n    items.append(x)\n",
		"count.star":       "load('lib/counter.star', 'n')\nprint(n)\n",
		"lib/counter.star": "n = len([1 for _ in range(3)])\n",
	})
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor()})
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "deploy.star")}, []sdrt.Host{localHost(t, "h", nil)})
	if err := rep.Hosts[0].Err; err == nil || !strings.Contains(err.Error(), "frozen") {
		t.Errorf("mutating a loaded module's list: err = %v, want a frozen error", err)
	}
}

func TestStepLimit(t *testing.T) {
	dir := writeFiles(t, map[string]string{"loop.star": "x = 0\nwhile True:\n    x += 1\n"})
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), MaxSteps: 100000})
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "loop.star")}, []sdrt.Host{localHost(t, "h", nil)})
	if err := rep.Hosts[0].Err; err == nil || !strings.Contains(err.Error(), "too many steps") {
		t.Errorf("err = %v, want too many steps", err)
	}
}

func TestCancelStopsHostsAndKillsCommands(t *testing.T) {
	out := t.TempDir()
	dir := writeFiles(t, map[string]string{"slow.star": `
print("started")
shell("sleep 30; touch ` + out + `/$$")
put("` + out + `/after", content = "x")
`})
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{}, 3)
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), OnEvent: func(e sdrt.Event) {
		if e.Kind == builtins.KindOpStart {
			started <- struct{}{}
		}
	}})
	p := compile(t, r, dir, "slow.star")
	done := make(chan *sdrt.Report)
	go func() {
		done <- r.Run(ctx, []*sdrt.Program{p}, []sdrt.Host{localHost(t, "a", nil), localHost(t, "b", nil), localHost(t, "c", nil)})
	}()
	for range 3 {
		<-started
	}
	cancel()
	rep := <-done
	if !rep.Interrupted {
		t.Error("report not marked interrupted")
	}
	for _, h := range rep.Hosts {
		if h.Err == nil || !errors.Is(h.Err, context.Canceled) {
			t.Errorf("host %s: err = %v, want context.Canceled", h.Name, h.Err)
		}
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 0 {
		t.Errorf("commands went on after cancel: %v", entries)
	}
}

func TestParallelBound(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.star": `shell("sleep 0.05")`})
	var rec recorder
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Parallel: 2, OnEvent: rec.add})
	var hosts []sdrt.Host
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		hosts = append(hosts, localHost(t, n, nil))
	}
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "p.star")}, hosts)
	if rep.Failed() != 0 {
		t.Fatal(rep.Hosts)
	}
	running, peak := 0, 0
	for _, e := range rec.events {
		switch e.Kind {
		case builtins.KindHostStart:
			running++
			peak = max(peak, running)
		case builtins.KindHostEnd:
			running--
		}
	}
	// The bound is what is checked here; that hosts do run at once is
	// shown by TestCancelStopsHostsAndKillsCommands, which waits for three.
	if peak > 2 || peak == 0 {
		t.Errorf("peak concurrent hosts %d, want at most 2", peak)
	}
}

func TestTimeoutOption(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `shell("sleep 30")`})
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Timeout: 200 * time.Millisecond})
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{localHost(t, "h", nil)})
	if err := rep.Hosts[0].Err; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
}

func TestControlDefaultsFromData(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `r = shell("exit 3")
print(r.exit_code)`})
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor()})
	var rec recorder
	r = sdrt.New(sdrt.Options{Connectors: connectorsFor(), OnEvent: rec.add})
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{localHost(t, "h", map[string]any{"success_exit_codes": "0,3"})})
	if rep.Failed() != 0 {
		t.Fatal(rep.Hosts[0].Err)
	}
	rep = r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{localHost(t, "h", map[string]any{"sudo": "maybe"})})
	if err := rep.Hosts[0].Err; err == nil || !strings.Contains(err.Error(), `data sudo: want true or false, got "maybe"`) {
		t.Errorf("err = %v", err)
	}
}

func TestPanicFailsOnlyThatHost(t *testing.T) {
	f := fake.NewFactory(func(tg connectors.Target) *fake.Conn {
		c := fake.New(tg.Name)
		if tg.Name == "buggy" {
			c.OnFunc("boom", func(context.Context, connectors.Command) (connectors.Result, error) { panic("connector bug") })
		}
		return c
	})
	dir := writeFiles(t, map[string]string{"s.star": `shell("boom")`})
	r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(f)})
	var hosts []sdrt.Host
	for _, n := range []string{"fine", "buggy"} {
		hosts = append(hosts, sdrt.Host{Name: n, Target: connectors.Target{Scheme: "fake", Name: n}})
	}
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, hosts)
	if rep.Hosts[0].Err != nil {
		t.Errorf("fine host: %v", rep.Hosts[0].Err)
	}
	var pe *sdrt.PanicError
	if !errors.As(rep.Hosts[1].Err, &pe) || !strings.Contains(pe.Error(), "connector bug") || !strings.Contains(pe.Stack, "fake") {
		t.Errorf("buggy host: %v", rep.Hosts[1].Err)
	}
}

func TestFailPercentStopsTheRun(t *testing.T) {
	// Host "bad" fails at once; the others wait for it and then try one more
	// operation, which the 0% limit must refuse.
	out := t.TempDir()
	dir := writeFiles(t, map[string]string{"s.star": `
if host.name == "bad":
    fail("broken host")
shell("for i in $(seq 100); do [ -e ` + out + `/bad-done ] && exit 0; sleep 0.05; done")
put("` + out + `/" + host.name, content = "x")
`})
	zero := 0
	var rec recorder
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), FailPercent: &zero, OnEvent: func(e sdrt.Event) {
		rec.add(e)
		if e.Kind == builtins.KindHostEnd && e.Host == "bad" {
			os.WriteFile(filepath.Join(out, "bad-done"), nil, 0o644)
		}
	}})
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{localHost(t, "bad", nil), localHost(t, "a", nil), localHost(t, "b", nil)})
	for _, h := range rep.Hosts[1:] {
		if h.Err == nil || !strings.Contains(h.Err.Error(), "more than 0% of hosts failed") {
			t.Errorf("host %s: err = %v, want stopped by --fail-percent", h.Name, h.Err)
		}
		if _, err := os.Stat(filepath.Join(out, h.Name)); err == nil {
			t.Errorf("host %s started an operation after the limit was passed", h.Name)
		}
	}
}
