// Package examples_test runs every examples/*.star on the local connector,
// twice, with its files redirected into a temporary directory: the first run
// must succeed, the second must change nothing (except shell commands that
// run every time by design, which the examples avoid).
package examples_test

import (
	"path/filepath"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// runsEveryTime counts the shell() steps of each example that run on every
// run on purpose (read-only commands), so the second run's changed count is
// exactly this.
var runsEveryTime = map[string]int{
	"webapp.star": 1, // count config lines
}

func TestExamples(t *testing.T) {
	files, err := filepath.Glob("*.star")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			f := local.NewFactory()
			target, err := f.Parse("", nil)
			if err != nil {
				t.Fatal(err)
			}
			host := sdrt.Host{Name: "@local", Target: target, Data: map[string]any{"dir": t.TempDir()}}
			r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(f), Stdlib: stdlib.FS})
			p, err := r.Compile(t.Context(), file, nil)
			if err != nil {
				t.Fatal(err)
			}
			first := r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{host})
			if err := first.Hosts[0].Err; err != nil {
				t.Fatalf("first run: %v", err)
			}
			second := r.Run(t.Context(), []*sdrt.Program{p}, []sdrt.Host{host})
			if err := second.Hosts[0].Err; err != nil {
				t.Fatalf("second run: %v", err)
			}
			if got, want := second.Hosts[0].Counts.Changed, runsEveryTime[file]; got != want {
				t.Errorf("second run changed %d operations, want %d", got, want)
			}
			t.Logf("first run %+v, second run %+v", first.Hosts[0].Counts, second.Hosts[0].Counts)
		})
	}
}
