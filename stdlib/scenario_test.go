package stdlib_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
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
			f := local.NewFactory()
			target, err := f.Parse("", nil)
			if err != nil {
				t.Fatal(err)
			}
			host := sdrt.Host{Name: "@local", Factory: f, Target: target, Data: map[string]any{"dir": t.TempDir()}}
			scenario(t, host, script, builtins.Control{}, nil)
		})
	}
}
