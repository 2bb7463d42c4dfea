package stdlib_test

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/builtins"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// TestPutAfterFactSweepsInItsWrite checks that a put whose file fact was
// cached (so its probe did not sweep the directory) removes the leftovers
// of earlier runs in the command that writes the file, not in a round trip
// of its own: a chmod costs one round trip, a validated write two (the
// upload and the rename); a plain upload runs no script of ours, so its
// sweep stays a round trip of its own. Each sweeps the leftover.
func TestPutAfterFactSweepsInItsWrite(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, put string
		want      int64
	}{
		{"chmod", `put(f, content = "x\n", mode = "0600")`, 1},
		{"write with validate=", `put(f, content = "new\n", validate = "test -f %s")`, 2},
		{"plain write", `put(f, content = "new\n", user = ` + strconv.Quote(me.Username) + `)`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "f")
			if err := os.WriteFile(dest, []byte("x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			left := filepath.Join(dir, ".star-deploy-0123456789ab-f.Ab12Cd") // an earlier run's
			if err := os.WriteFile(left, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(left, old, old); err != nil {
				t.Fatal(err)
			}
			script := filepath.Join(t.TempDir(), "s.star")
			src := "f = " + strconv.Quote(dest) + "\nfact(\"file\", f)\nprint(\"probed\")\n" + tc.put + "\n"
			if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			host, counting := countingLocal(t, nil)
			var before int64 = -1
			runScriptWith(t, host, script, builtins.Control{}, false, func(e sdrt.Event) {
				if e.Message == "probed" && before < 0 {
					before = counting.calls.Load()
				}
			})
			if got := counting.calls.Load() - before; before < 0 || got != tc.want {
				t.Errorf("the put made %d round trips (from %d), want %d", got, before, tc.want)
			}
			if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the leftover of an earlier run is still there (%v)", err)
			}
		})
	}
}
