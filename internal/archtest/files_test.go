package archtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxTracked is the largest file the repository may track outside a
// testdata/ directory: anything bigger is a build output or a fixture that
// belongs under testdata/.
const maxTracked = 1 << 20

// TestNoLargeTrackedFiles fails on a tracked file over 1 MiB that is not
// under a testdata/ directory (a binary committed by accident).
func TestNoLargeTrackedFiles(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git rev-parse: %v (CI runs on a git checkout)", err)
		}
		t.Skipf("not a git checkout: %v", err)
	}
	root := strings.TrimSpace(string(top))
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0}) {
		rel := string(name)
		if rel == "" || strings.HasPrefix(rel, "testdata/") || strings.Contains(rel, "/testdata/") {
			continue
		}
		fi, err := os.Lstat(filepath.Join(root, rel))
		if err != nil {
			continue // deleted in the work tree
		}
		if fi.Mode().IsRegular() && fi.Size() > maxTracked {
			t.Errorf("%s is tracked and %d bytes (over 1 MiB): remove it (git rm --cached %s) or move a fixture under testdata/", rel, fi.Size(), rel)
		}
	}
}
