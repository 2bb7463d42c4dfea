package builtins_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/star-deploy/star-deploy/internal/startest"
)

// TestStarlarkPrivileged runs the sudo/su/chown tests, which need root and
// sudo (CI runs as root with sudo installed).
func TestStarlarkPrivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		startest.Skip(t, "needs root to chown and to sudo without a password")
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		startest.Skip(t, "needs sudo (apt-get install sudo)")
	}
	startest.Run(t, "testdata/privileged/*.star")
}
