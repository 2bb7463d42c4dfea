package main

import (
	"fmt"
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

// TestCompileCacheInUserCache: a run keeps the stdlib modules it compiled
// in star-deploy/compiled of the user's cache directory, and the next run,
// served from there, gives the same result.
func TestCompileCacheInUserCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	dir := t.TempDir()
	script := writeFile(t, dir, "d.star", fmt.Sprintf("load('@stdlib//files.star', 'files')\nfiles.line(%q, 'x')\n", filepath.Join(dir, "f")))
	for run, want := range []string{": changed", ": ok"} {
		code, stdout, stderr := runCLI(t, "@local", script)
		if code != 0 || !strings.Contains(stdout, "line in "+filepath.Join(dir, "f")+want) {
			t.Fatalf("run %d: exit %d, want %q\n%s\n%s", run+1, code, want, stdout, stderr)
		}
	}
	for _, module := range []string{"files", "ops"} {
		if m, _ := filepath.Glob(filepath.Join(cache, "star-deploy", "compiled", "stdlib-"+module+".star-*")); len(m) != 1 {
			t.Errorf("entries of %s.star: %q", module, m)
		}
	}
}
