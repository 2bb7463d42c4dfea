package inventory

import (
	"testing"

	"github.com/star-deploy/star-deploy/runtime"
)

// TestDialectIsTheRuntimes checks that inventory.star files are read in
// the dialect of deploy scripts, which runtime defines.
func TestDialectIsTheRuntimes(t *testing.T) {
	if want := *runtime.FileOptions(); fileOptions != want {
		t.Errorf("inventory's dialect %+v differs from runtime.FileOptions() %+v", fileOptions, want)
	}
}
