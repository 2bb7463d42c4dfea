package builtins

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/connectors/local"
)

// A privileged upload stopped halfway (Ctrl-C, timeout=) leaves the old file
// and no temporary file behind.
func TestPrivilegedPutCancelledLeavesNoTempFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to sudo without a password")
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sudo is not installed")
		}
		t.Skip("needs sudo")
	}
	conn, err := local.NewFactory().Open(t.Context(), connectors.Target{Scheme: "local", Name: "@local"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := &Host{Name: "@local", Conn: conn}
	dir := t.TempDir()
	dest := filepath.Join(dir, "conf")
	os.WriteFile(dest, []byte("old\n"), 0o644)

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	w := fileWant{dest: dest, size: 1 << 10, open: func() (io.ReadCloser, error) { return io.NopCloser(conntest.CutReader(ctx)), nil }}
	err = h.putPrivileged(ctx, Control{Sudo: true}, w, 0o644, "", "")
	if err == nil {
		t.Fatal("a cancelled privileged put succeeded")
	}
	if b, _ := os.ReadFile(dest); string(b) != "old\n" {
		t.Errorf("dest holds %q after the cancelled put, want the old content", b)
	}
	// The temporary file is removed by the script's trap, which runs as the
	// killed shell exits; give it a moment.
	for i := 0; ; i++ {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) == 1 {
			break
		}
		if i == 50 {
			t.Fatalf("files left in the directory: %s", strings.Join(names, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
