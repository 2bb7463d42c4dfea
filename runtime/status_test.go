package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// refusingFactory is the local connector, under the scheme "down", whose
// Open fails, as a host that cannot be reached does.
type refusingFactory struct{ connectors.Factory }

func (refusingFactory) Scheme() string { return "down" }

func (refusingFactory) Open(context.Context, connectors.Target) (connectors.Connector, error) {
	return nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
}

// hostEnds returns the status of each host's one host_end event, failing
// the test when a host has none or several.
func hostEnds(t *testing.T, rec *recorder, names ...string) map[string]builtins.Status {
	t.Helper()
	got := map[string]builtins.Status{}
	for _, e := range rec.of(builtins.KindHostEnd) {
		if _, dup := got[e.Host]; dup {
			t.Errorf("host %s has two host_end events", e.Host)
		}
		got[e.Host] = e.Status
		if e.Counts == nil {
			t.Errorf("host_end of %s has no counts", e.Host)
		}
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			t.Errorf("host %s has no host_end event", n)
		}
	}
	return got
}

// TestHostStatuses: ok, failed (an operation failed) and unreachable (the
// connector could not open the host) are told apart in the report and in
// host_end.
func TestHostStatuses(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `
if host.name == "bad":
    shell("exit 3")
shell("true")
`})
	var rec recorder
	r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(local.NewFactory(), refusingFactory{local.NewFactory()}), OnEvent: rec.add})
	down := localHost(t, "down", nil)
	down.Target.Scheme = "down"
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{localHost(t, "good", nil), localHost(t, "bad", nil), down})
	want := map[string]builtins.Status{"good": builtins.StatusOK, "bad": builtins.StatusFailed, "down": builtins.StatusUnreachable}
	for _, h := range rep.Hosts {
		if h.Status != want[h.Name] {
			t.Errorf("host %s: status %q, want %q (err %v)", h.Name, h.Status, want[h.Name], h.Err)
		}
	}
	ends := hostEnds(t, &rec, "good", "bad", "down")
	for name, s := range want {
		if ends[name] != s {
			t.Errorf("host_end of %s: status %q, want %q", name, ends[name], s)
		}
	}
	if err := rep.Hosts[2].Err; err == nil || err.Error() != "connect to down: dial tcp 127.0.0.1:1: connect: connection refused" {
		t.Errorf("unreachable host: err %v", err)
	}
}

// TestFailPercentStatuses: a host --fail-percent stops after it began is
// stopped, one it kept from beginning is not_started, and each still gets
// a host_end.
func TestFailPercentStatuses(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `
if host.name == "h0":
    fail("broken")
shell("step")
shell("step")
`})
	zero := 0
	var rec recorder
	// One at a time: h0 fails, so no other host begins.
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Parallel: 1, Serial: 1, FailPercent: &zero, OnEvent: rec.add})
	hosts := fakeHosts(4)
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, hosts)
	ends := hostEnds(t, &rec, "h0", "h1", "h2", "h3")
	for i, h := range rep.Hosts {
		want := builtins.StatusNotStarted
		if i == 0 {
			want = builtins.StatusFailed
		}
		if h.Status != want || ends[h.Name] != want {
			t.Errorf("host %s: status %q, host_end %q, want %q", h.Name, h.Status, ends[h.Name], want)
		}
	}

	// All at once: the others begin, then wait for h0 to fail; they are
	// stopped before their next operation.
	out := t.TempDir()
	dir = writeFiles(t, map[string]string{"s.star": `
def wait_for(name):
    shell("for i in $(seq 200); do [ -e ` + out + `/" + name + " ] && exit 0; sleep 0.05; done; exit 1")
if host.name == "h0":
    wait_for("a")
    wait_for("b")
    fail("broken")
shell("touch ` + out + `/" + host.name)
wait_for("h0-done")
shell("true")
`})
	rec = recorder{}
	r = sdrt.New(sdrt.Options{Connectors: connectorsFor(), FailPercent: &zero, OnEvent: func(e sdrt.Event) {
		rec.add(e)
		if e.Kind == builtins.KindHostEnd && e.Host == "h0" {
			os.WriteFile(filepath.Join(out, "h0-done"), nil, 0o644)
		}
	}})
	rep = r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{localHost(t, "h0", nil), localHost(t, "a", nil), localHost(t, "b", nil)})
	ends = hostEnds(t, &rec, "h0", "a", "b")
	for i, h := range rep.Hosts {
		want := builtins.StatusStopped
		if i == 0 {
			want = builtins.StatusFailed
		}
		if h.Status != want || ends[h.Name] != want {
			t.Errorf("host %s: status %q, host_end %q, want %q (err %v)", h.Name, h.Status, ends[h.Name], want, h.Err)
		}
	}
}

// TestInterruptStatuses: a host the interrupt caught running is
// interrupted; one that had not begun is not_started, with a host_end.
func TestInterruptStatuses(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `shell("sleep 30")`})
	ctx, cancel := context.WithCancel(t.Context())
	var rec recorder
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Parallel: 1, OnEvent: func(e sdrt.Event) {
		rec.add(e)
		if e.Kind == builtins.KindOpStart {
			cancel()
		}
	}})
	rep := r.Run(ctx, []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{localHost(t, "a", nil), localHost(t, "b", nil)})
	ends := hostEnds(t, &rec, "a", "b")
	got := map[builtins.Status]int{}
	for _, h := range rep.Hosts {
		got[h.Status]++
		if ends[h.Name] != h.Status {
			t.Errorf("host %s: host_end %q, report %q", h.Name, ends[h.Name], h.Status)
		}
	}
	if got[builtins.StatusInterrupted] != 1 || got[builtins.StatusNotStarted] != 1 {
		t.Errorf("statuses %v, want one interrupted and one not_started", got)
	}
}
