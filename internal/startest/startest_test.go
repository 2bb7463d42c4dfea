package startest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps the errors reported to it instead of
// failing the test, so that the harness's own failures can be checked.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }

// TestFailuresReachTheTest runs scripts that fail in each way a .star test
// can, through the engine, and checks what the harness reports.
func TestFailuresReachTheTest(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lib.star"), []byte("x = shell('true')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, src string
		ok        bool     // runScript's result
		want      []string // in the one error reported
	}{
		{"pass", "load('assert.star', 'assert')\nassert.eq(shell('echo hi').stdout, 'hi\\n')\n", true, nil},
		{"failed assert", "load('assert.star', 'assert')\nassert.eq(1, 2)\n", true, []string{"t.star:2:", "1 != 2"}},
		{"script error", "x = 1\nshell('exit 3')\n", false, []string{"t.star:2:", "status 3"}},
		{"missing stdlib module", "load('@stdlib//nope.star', 'x')\n", false, []string{"t.star:1:", "nope.star"}},
		{"undefined name", "no_such_name()\n", false, []string{"t.star:1:", "undefined: no_such_name"}},
		{"builtin at load time", "load('lib.star', 'x')\n", false, []string{"shell() called at load time"}},
		{"helpers", "load('assert.star', 'assert')\nwrite(tmp + '/a', 'A')\nassert.eq(read(tmp + '/a'), 'A')\nassert.eq(read(tmp + '/b'), None)\n", true, nil},
		{"fake host", "load('assert.star', 'assert')\nfake({'id': 'x'})\nassert.eq(shell('id -u').stdout, 'x')\nassert.eq(commands(), ['id -u'])\n", true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{TB: t}
			ok := runScript(r, filepath.Join(dir, "t.star"), []byte(c.src))
			if ok != c.ok {
				t.Errorf("runScript returned %v, want %v (errors: %q)", ok, c.ok, r.errs)
			}
			if c.want == nil {
				if len(r.errs) > 0 {
					t.Errorf("errors reported: %q", r.errs)
				}
				return
			}
			if len(r.errs) != 1 {
				t.Fatalf("%d errors reported, want 1: %q", len(r.errs), r.errs)
			}
			for _, w := range c.want {
				if !strings.Contains(r.errs[0], w) {
					t.Errorf("error %q does not contain %q", r.errs[0], w)
				}
			}
		})
	}
}

func TestTestNames(t *testing.T) {
	src := []byte("def test_b():\n    pass\n\ndef helper():\n    pass\n\ndef test_a():\n    pass\n\nif True:\n    pass\n")
	got := strings.Join(testNames(t, "x.star", src), " ")
	if got != "test_a test_b" {
		t.Errorf("testNames = %q, want test_a test_b", got)
	}
}
