package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A plugin on PATH serves its hosts though the scan of PATH waits until
// a name needs it (connectors.Registry.Defer).
func TestPluginOnPathRuns(t *testing.T) {
	broken := brokenPlugin(t)
	t.Setenv("PATH", filepath.Dir(broken)+string(filepath.ListSeparator)+os.Getenv("PATH"))
	code, stdout, stderr := runCLI(t, "@local,@broken/x", "exec", "--", "echo crash")
	if out := stdout + stderr; code != 1 || !strings.Contains(out, "[@local] crash") || !strings.Contains(out, `plugin "broken" (`+broken+`) exited unexpectedly`) {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
