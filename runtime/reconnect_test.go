package runtime_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// flakyFactory opens fake hosts, failing the opens numbered in down (the
// host is rebooting).
type flakyFactory struct {
	*fake.Factory
	opens atomic.Int32
	down  func(n int32) bool
	conns []*fake.Conn
}

func (f *flakyFactory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	n := f.opens.Add(1)
	if f.down(n) {
		return nil, errors.New("connection refused")
	}
	c := fake.New(t.Name)
	f.conns = append(f.conns, c)
	return c, nil
}

// TestReconnect: reconnect() closes the connection and opens a new one,
// retrying until the host is back, and later operations use the new one.
func TestReconnect(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.star": `
shell("before")
reconnect(delay = 0, interval = 0.01, timeout = 0.5)
shell("after")
`})
	f := &flakyFactory{Factory: fake.NewFactory(nil), down: func(n int32) bool { return n == 2 || n == 3 }}
	r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(f)})
	host := sdrt.Host{Name: "h", Target: connectors.Target{Scheme: "fake", Name: "h"}}
	rep := r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{host})
	if err := rep.Hosts[0].Err; err != nil {
		t.Fatal(err)
	}
	if n := f.opens.Load(); n != 4 || len(f.conns) != 2 {
		t.Fatalf("%d opens, %d connections; want 4 and 2", n, len(f.conns))
	}
	first, second := f.conns[0], f.conns[1]
	if got := strings.Join(first.Commands(), ";"); got != "before" || !first.Closed() {
		t.Errorf("first connection ran %q, closed %v", got, first.Closed())
	}
	if got := strings.Join(second.Commands(), ";"); got != "after" || !second.Closed() {
		t.Errorf("second connection ran %q, closed %v", got, second.Closed())
	}

	// A host that does not come back fails the operation.
	f = &flakyFactory{Factory: fake.NewFactory(nil), down: func(n int32) bool { return n > 1 }}
	r = sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(f)})
	rep = r.Run(t.Context(), []*sdrt.Program{compile(t, r, dir, "s.star")}, []sdrt.Host{host})
	if err := rep.Hosts[0].Err; err == nil || !strings.Contains(err.Error(), "did not come back within") {
		t.Errorf("err = %v", err)
	}
}
