package stdlib_test

import (
	"os"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// BenchmarkFilesQuietRun times a run of testdata/local/files.star (17
// files operations) on @local when nothing is left to change: the cost of
// the facts that prove it, one round trip per operation.
func BenchmarkFilesQuietRun(b *testing.B) {
	src, err := os.ReadFile("testdata/local/files.star")
	if err != nil {
		b.Fatal(err)
	}
	host, counting := countingLocal(b, map[string]any{"dir": b.TempDir()})
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
	counting.calls.Store(0)
	b.ResetTimer()
	for b.Loop() {
		if c := run(); c.Changed != 0 {
			b.Fatalf("a quiet run changed %d operations", c.Changed)
		}
	}
	b.ReportMetric(float64(counting.calls.Load())/float64(b.N), "roundtrips/op")
}
