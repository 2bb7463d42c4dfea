package stdlib_test

import (
	"os"
	"sync/atomic"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// BenchmarkFilesQuietRun times a run of testdata/local/files.star (17
// files operations) on @local when nothing is left to change: the cost of
// the facts that prove it. "sh" hides @local's native file calls behind a
// wrapper that counts the round trips (each a fork of sh), as on a remote
// host; "native" is @local as the CLI gets it (connectors.Native).
func BenchmarkFilesQuietRun(b *testing.B) {
	b.Run("sh", func(b *testing.B) {
		host, counting := countingLocal(b, map[string]any{"dir": b.TempDir()})
		quietRun(b, host, &counting.calls)
	})
	b.Run("native", func(b *testing.B) {
		f := local.NewFactory()
		target, err := f.Parse("", nil)
		if err != nil {
			b.Fatal(err)
		}
		host := testHost{sdrt.Host{Name: "@local", Target: target, Data: map[string]any{"dir": b.TempDir()}}, connectors.NewRegistry(f)}
		quietRun(b, host, nil)
	})
}

// quietRun runs files.star once to change what it changes, then times the
// runs that change nothing; calls, when set, counts round trips.
func quietRun(b *testing.B, host testHost, calls *atomic.Int64) {
	src, err := os.ReadFile("testdata/local/files.star")
	if err != nil {
		b.Fatal(err)
	}
	r := sdrt.New(sdrt.Options{Connectors: host.conns, Stdlib: stdlib.FS})
	prog, err := r.Compile(b.Context(), "testdata/local/files.star", src)
	if err != nil {
		b.Fatal(err)
	}
	run := func() builtins.Counts {
		rep := r.Run(b.Context(), []*sdrt.Program{prog}, []sdrt.Host{host.Host})
		if err := rep.Hosts[0].Err; err != nil {
			b.Fatal(err)
		}
		return rep.Hosts[0].Counts
	}
	run() // the changing run
	if calls != nil {
		calls.Store(0)
	}
	b.ResetTimer()
	for b.Loop() {
		if c := run(); c.Changed != 0 {
			b.Fatalf("a quiet run changed %d operations", c.Changed)
		}
	}
	if calls != nil {
		b.ReportMetric(float64(calls.Load())/float64(b.N), "roundtrips/op")
	}
}
