package stdlib_test

import (
	"context"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// TestLocalScenarios runs each testdata/local/*.star on this machine, in a
// fresh directory passed as host.data["dir"], with the checks of scenario:
// --dry reports exactly what the real run changes, and a second run
// changes nothing.
func TestLocalScenarios(t *testing.T) {
	scripts, err := filepath.Glob("testdata/local/*.star")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scenarios in testdata/local (%v)", err)
	}
	for _, script := range scripts {
		t.Run(strings.TrimSuffix(filepath.Base(script), ".star"), func(t *testing.T) {
			t.Parallel()
			host, counting := countingLocal(t, map[string]any{"dir": t.TempDir()})
			scenario(t, host, script, builtins.Control{}, nil)

			// A quiet run costs about one round trip per operation: facts
			// are cached and shared between operations.
			counting.calls.Store(0)
			ops := len(runScriptOps(t, host, script))
			calls := int(counting.calls.Load())
			t.Logf("a quiet run: %d operations, %d round trips", ops, calls)
			if calls > ops+ops/4 {
				t.Errorf("a quiet run of %d operations made %d round trips", ops, calls)
			}
		})
	}
}

// countingLocal is an @local host with data as its host data, whose
// connections count their commands and transfers in the factory returned.
func countingLocal(tb testing.TB, data map[string]any) (testHost, *countingFactory) {
	tb.Helper()
	f := local.NewFactory()
	target, err := f.Parse("", nil)
	if err != nil {
		tb.Fatal(err)
	}
	counting := &countingFactory{Factory: f}
	return testHost{sdrt.Host{Name: "@local", Target: target, Data: data}, connectors.NewRegistry(counting)}, counting
}

// countingFactory counts the commands and transfers of its connections.
type countingFactory struct {
	connectors.Factory
	calls atomic.Int64
}

func (f *countingFactory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	c, err := f.Factory.Open(ctx, t)
	if err != nil {
		return nil, err
	}
	return &countingConn{Connector: c, calls: &f.calls}, nil
}

type countingConn struct {
	connectors.Connector
	calls *atomic.Int64
}

func (c *countingConn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	c.calls.Add(1)
	return c.Connector.Run(ctx, cmd)
}

func (c *countingConn) Put(ctx context.Context, dest string, r io.Reader, mode fs.FileMode) error {
	c.calls.Add(1)
	return c.Connector.Put(ctx, dest, r, mode)
}

func (c *countingConn) Get(ctx context.Context, src string, w io.Writer) error {
	c.calls.Add(1)
	return c.Connector.Get(ctx, src, w)
}

// TestLinksAndValidate runs testdata/once/links_validate.star on this
// machine: writes through symbolic links, follow=False and validate=. The
// script checks the files itself; this test checks what the events say.
func TestLinksAndValidate(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir()) // events name resolved paths
	if err != nil {
		t.Fatal(err)
	}
	host, _ := countingLocal(t, nil)
	checkLinksAndValidate(t, host, builtins.Control{}, dir)
}

// checkLinksAndValidate runs testdata/once/links_validate.star once on
// host, with dir as host.data["dir"], and checks its events: a write
// through a link names the link's target, and a rejected validation names
// the command and its stderr's last line.
func checkLinksAndValidate(t *testing.T, host testHost, ctl builtins.Control, dir string) {
	t.Helper()
	data := map[string]any{"dir": dir}
	for k, v := range host.Data {
		data[k] = v
	}
	host.Data = data
	events := map[string]sdrt.Event{}
	runScriptWith(t, host, "testdata/once/links_validate.star", ctl, false, func(e sdrt.Event) {
		if e.Kind == builtins.KindOpEnd {
			events[e.Name] = e
		}
	})
	want := map[string]string{
		"put through a link":                          "update " + dir + "/avail/site (4 -> 4 bytes), through the link " + dir + "/enabled/site",
		"put rejected by validate":                    `validate "grep -q good %s || { echo 'no good in it' >&2; exit 1; }" rejected the new content, the old file is kept: exit status 1: no good in it`,
		"block rejected by validate":                  `validate "! grep -q bad %s" rejected the new content, the old file is kept: exit status 1`,
		"put through a link into a missing directory": "follow the link " + dir + "/enabled/bad: the directory of its target",
		"replace the link":                            "replace the link " + dir + "/enabled/site with a file",
	}
	for name, text := range want {
		e, ok := events[name]
		switch {
		case !ok:
			t.Errorf("no operation %q ran", name)
		case !strings.Contains(e.Message+e.Error, text):
			t.Errorf("%s: message %q, error %q; want %q in them", name, e.Message, e.Error, text)
		}
	}
}
