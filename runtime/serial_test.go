package runtime_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

func fakeHosts(n int) []sdrt.Host {
	var hosts []sdrt.Host
	for i := range n {
		name := fmt.Sprintf("h%d", i)
		hosts = append(hosts, sdrt.Host{Name: name, Target: connectors.Target{Scheme: "fake", Name: name}})
	}
	return hosts
}

// TestSerialBatches: with Serial 2, no host of a batch starts before every
// host of the previous batch has ended.
func TestSerialBatches(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `shell("step")`})
	var mu sync.Mutex
	var order []string
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Serial: 2, OnEvent: func(e sdrt.Event) {
		if e.Kind == builtins.KindHostStart || e.Kind == builtins.KindHostEnd {
			mu.Lock()
			order = append(order, string(e.Kind)+" "+e.Host)
			mu.Unlock()
		}
	}})
	hosts := fakeHosts(5)
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, hosts)
	if rep.Failed() != 0 {
		t.Fatal(rep.Hosts)
	}
	batchOf := func(h string) int { return int(h[1]-'0') / 2 }
	ended := map[int]int{}
	for _, ev := range order {
		kind, h, _ := strings.Cut(ev, " ")
		b := batchOf(h)
		if kind == string(builtins.KindHostStart) && b > 0 && ended[b-1] < 2 {
			t.Fatalf("%s started before batch %d ended: %v", h, b-1, order)
		}
		if kind == string(builtins.KindHostEnd) {
			ended[b]++
		}
	}
}

// TestSerialFailPercentStopsTheRollout: a failing first batch stops the
// batches after it: none of their hosts starts.
func TestSerialFailPercentStopsTheRollout(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `
if host.name == "h0":
    fail("broken")
shell("step")`})
	pct := 10
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Serial: 2, FailPercent: &pct})
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, fakeHosts(6))
	for _, h := range rep.Hosts[2:] {
		if h.Started || h.Err == nil || !strings.Contains(h.Err.Error(), "--fail-percent") {
			t.Errorf("%s: started=%v err=%v, want not started", h.Name, h.Started, h.Err)
		}
	}
}

// TestRunOnce: the function runs on one host only and every host gets its
// result, also across --serial batches.
func TestRunOnce(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `
def token():
    shell("fetch-token", name = "fetch token")
    return {"token": "t-" + host.name}

t = run_once(token)
print("got", t["token"])
`})
	for _, serial := range []int{0, 1} {
		var mu sync.Mutex
		fetched, got := 0, map[string]string{}
		r := sdrt.New(sdrt.Options{Connectors: connectorsFor(), Serial: serial, OnEvent: func(e sdrt.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Kind == builtins.KindOpEnd && e.Name == "fetch token" {
				fetched++
			}
			if e.Kind == builtins.KindPrint {
				got[e.Host] = e.Message
			}
		}})
		rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, fakeHosts(5))
		if rep.Failed() != 0 {
			t.Fatal(rep.Hosts)
		}
		if fetched != 1 {
			t.Errorf("serial %d: the function ran %d times", serial, fetched)
		}
		first := got["h0"]
		for h, msg := range got {
			if msg != first || !strings.HasPrefix(msg, "got t-h") {
				t.Errorf("serial %d: %s printed %q, h0 printed %q", serial, h, msg, first)
			}
		}
	}
}

// TestRunOnceFailure: a failing function fails the call on every host.
func TestRunOnceFailure(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `
def broken():
    fail("no token")

run_once(broken)
`})
	r := sdrt.New(sdrt.Options{Connectors: connectorsFor()})
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, fakeHosts(3))
	for _, h := range rep.Hosts {
		if h.Err == nil || !strings.Contains(h.Err.Error(), "no token") {
			t.Errorf("%s: err = %v", h.Name, h.Err)
		}
	}
}
