package stdlib_test

import (
	"os/exec"
	"testing"

	"github.com/star-deploy/star-deploy/internal/startest"
)

// TestStarlarkRsync runs the files.rsync tests that use the rsync program
// on both ends (this machine and @local), which CI installs.
func TestStarlarkRsync(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		startest.Skip(t, "needs rsync (apt-get install rsync)")
	}
	startest.Run(t, "testdata/rsync/*.star")
}
