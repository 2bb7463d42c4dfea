package connectors_test

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

func TestTempName(t *testing.T) {
	run := connectors.NewRun()
	ctx := connectors.WithRun(t.Context(), run)
	long := strings.Repeat("é", 200) // 400 bytes
	for _, dst := range []string{"/etc/motd", "/motd", "/srv/" + long, "/srv/it's a file"} {
		for _, name := range []string{connectors.TempName(ctx, dst), connectors.TempTemplate(ctx, dst)} {
			base := path.Base(name)
			if path.Dir(name) != path.Dir(dst) {
				t.Errorf("%s: temporary file %s is not in the destination's directory", dst, name)
			}
			if !strings.HasPrefix(base, ".star-deploy-"+run.ID+"-") || !connectors.IsTempName(base) {
				t.Errorf("%s: temporary name %q lacks the run's prefix", dst, base)
			}
			if len(base) > 255 || !utf8.ValidString(base) {
				t.Errorf("%s: temporary name of %d bytes (valid UTF-8: %v)", dst, len(base), utf8.ValidString(base))
			}
		}
		if tmpl := connectors.TempTemplate(ctx, dst); !strings.HasSuffix(tmpl, "XXXXXX") {
			t.Errorf("mktemp template %q does not end in XXXXXX", tmpl)
		}
	}
	if a, b := connectors.TempName(ctx, "/x"), connectors.TempName(ctx, "/x"); a == b {
		t.Errorf("two temporary names are the same: %s", a)
	}
	// Outside a run a name still has a valid prefix, of a run of its own.
	if base := path.Base(connectors.TempName(context.Background(), "/etc/motd")); !connectors.IsTempName(base) || strings.Contains(base, run.ID) {
		t.Errorf("outside a run: %q", base)
	}
	for _, name := range []string{".star-deploy-download.Ab12Cd", ".star-deploy-ABCDEF012345-x", ".motd.star-deploy-0123456789ab", ".star-deploy-0123456789a-x"} {
		if connectors.IsTempName(name) {
			t.Errorf("IsTempName(%q) = true", name)
		}
	}
}

// TestSweepScript runs the sweep with the system's sh and userland, and
// with busybox's, on a directory holding our leftovers and look-alikes.
func TestSweepScript(t *testing.T) {
	shells := map[string]func(t *testing.T) []string{
		"sh": func(t *testing.T) []string { return []string{"sh", "-c"} },
		"busybox": func(t *testing.T) []string {
			bb, err := exec.LookPath("busybox")
			if err != nil {
				sshtest.Skip(t, "busybox is not installed (apt-get install busybox-static)")
			}
			bin := t.TempDir()
			for _, applet := range []string{"sh", "date", "stat", "rm", "[", "test"} {
				if err := os.Symlink(bb, filepath.Join(bin, applet)); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", bin)
			return []string{filepath.Join(bin, "sh"), "-c"}
		},
	}
	for name, shell := range shells {
		t.Run(name, func(t *testing.T) {
			sh := shell(t)
			run := connectors.Run{ID: "0123456789ab", Start: time.Now().Add(-10 * time.Minute)}
			dir := filepath.Join(t.TempDir(), "it's a dir")
			old, young := time.Now().Add(-time.Hour), time.Now().Add(-5*time.Minute)
			files := map[string]time.Time{
				".star-deploy-aaaaaaaaaaaa-motd.0a1b2c3d4e5f":  old, // removed
				".star-deploy-dddddddddddd-it's a file.XyZ123": old, // removed
				".star-deploy-0123456789ab-motd.aaaaaaaaaaaa":  old, // this run's
				".star-deploy-bbbbbbbbbbbb-young.aaaaaaaaaaaa": young,
				".star-deploy-download.Ab12Cd":                 old, // not ours
				".star-deploy-ABCDEF012345-x":                  old,
				"motd":                                         old,
			}
			if err := os.MkdirAll(filepath.Join(dir, ".star-deploy-cccccccccccc-dir.1"), 0o755); err != nil {
				t.Fatal(err)
			}
			for f, mt := range files {
				p := filepath.Join(dir, f)
				if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, mt, mt); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("motd", filepath.Join(dir, ".star-deploy-eeeeeeeeeeee-link.1")); err != nil {
				t.Fatal(err)
			}
			script := "set -e\n" + connectors.SweepScript(dir, run) + "echo done"
			out, err := exec.Command(sh[0], sh[1], script).CombinedOutput()
			if err != nil || string(out) != "done\n" {
				t.Fatalf("sweep: %v: %q", err, out)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, e := range entries {
				left = append(left, e.Name())
			}
			want := []string{
				".star-deploy-0123456789ab-motd.aaaaaaaaaaaa",
				".star-deploy-ABCDEF012345-x",
				".star-deploy-bbbbbbbbbbbb-young.aaaaaaaaaaaa",
				".star-deploy-cccccccccccc-dir.1",
				".star-deploy-download.Ab12Cd",
				".star-deploy-eeeeeeeeeeee-link.1",
				"motd",
			}
			if !slices.Equal(left, want) {
				t.Errorf("after the sweep the directory holds\n%q\nwant\n%q", left, want)
			}
		})
	}
	// A missing directory is no error.
	out, err := exec.Command("sh", "-c", "set -e\n"+connectors.SweepScript("/nonexistent/dir", connectors.NewRun())+"echo done").CombinedOutput()
	if err != nil || string(out) != "done\n" {
		t.Errorf("sweep of a missing directory: %v: %q", err, out)
	}
}
