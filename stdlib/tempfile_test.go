package stdlib_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/all"
	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// tempHost is a host to run a deploy script on: @local, or a loopback sshd
// of this machine (so that the test sees the host's files).
type tempHost struct {
	reg    *connectors.Registry
	target connectors.Target
}

func tempHosts(t *testing.T) map[string]func(t *testing.T) tempHost {
	return map[string]func(t *testing.T) tempHost{
		"local": func(t *testing.T) tempHost {
			reg := all.Registry(all.Options{})
			target, err := reg.Target("@local", nil)
			if err != nil {
				t.Fatal(err)
			}
			return tempHost{reg, target}
		},
		"ssh": func(t *testing.T) tempHost {
			srv := sshtest.Start(t, sshtest.Options{})
			known := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(known, []byte(srv.KnownHostsLine("")), 0o600); err != nil {
				t.Fatal(err)
			}
			reg := all.Registry(all.Options{})
			target, err := reg.Target("@ssh/"+srv.Addr, map[string]string{
				"ssh_user": srv.User, "ssh_key": srv.ClientKeyPath,
				"ssh_known_hosts_file": known, "ssh_allow_agent": "false",
			})
			if err != nil {
				t.Fatal(err)
			}
			return tempHost{reg, target}
		},
	}
}

// runIn runs the deploy script src once on h, in ctx (which carries the
// run), and returns the host's error and the failed operations' errors.
func runIn(t *testing.T, ctx context.Context, h tempHost, src string) (error, []string) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "s.star")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var failed []string
	r := sdrt.New(sdrt.Options{
		Connectors: h.reg,
		Stdlib:     stdlib.FS,
		OnEvent: func(e sdrt.Event) {
			if e.Kind == builtins.KindOpEnd && e.Status == builtins.StatusFailed {
				failed = append(failed, fmt.Sprintf("%s %s: %s %s", e.Op, e.Name, e.Error, e.Stderr))
			}
		},
	})
	prog, err := r.Compile(ctx, script, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Run(ctx, []*sdrt.Program{prog}, []sdrt.Host{{Name: "h", Target: h.target}})
	return rep.Hosts[0].Err, failed
}

var q = strconv.Quote

const load = `load("@stdlib//files.star", "files")` + "\n"

// ourTemps lists the names in dir that connectors.IsTempName takes for
// temporary files of a run.
func ourTemps(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if connectors.IsTempName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestKilledStdlibTempRemovedNextRun: a files.download killed mid-transfer
// (the run interrupted: its commands get SIGTERM, which skips the shell's
// EXIT trap, as a lost connection or a kill would), and a shell() using
// temp_file that is killed, leave temporary files named for their run
// (connectors.IsTempName, the run's id, mode 0600); the next run's
// files.download or files.copy into that directory removes them, and only
// them: not a file of the same naming that is a directory, not a file
// whose name is not of a run, not a file of its own run. On @local and
// over a real sshd on loopback (whose cancel stops the remote process
// group with SIGTERM, connectors.KillScript).
func TestKilledStdlibTempRemovedNextRun(t *testing.T) {
	release := make(chan struct{})
	requested := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.Header().Set("Content-Length", "1000000")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			select {
			case requested <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Write([]byte("payload\n"))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		if _, err := os.Stat("/usr/bin/wget"); err != nil {
			t.Skip("neither curl nor wget is installed")
		}
	}

	for hostName, mkHost := range tempHosts(t) {
		for _, next := range []string{"download", "copy"} {
			t.Run(hostName+"/"+next, func(t *testing.T) { killedTempRemoved(t, mkHost(t), srv.URL, requested, next) })
		}
	}
}

func killedTempRemoved(t *testing.T, h tempHost, url string, requested <-chan struct{}, next string) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.bin")

	// A download interrupted while the body comes.
	first := connectors.NewRun()
	ctx, cancel := context.WithCancel(connectors.WithRun(t.Context(), first))
	go func() {
		select {
		case <-requested:
			// curl has the temporary file open (it made it before asking).
			for range 500 {
				if len(ourTemps(t, dir)) > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		case <-time.After(60 * time.Second): // hang guard
		}
		cancel()
	}()
	err, _ := runIn(t, ctx, h, load+`files.download(`+q(url+"/slow")+`, `+q(dest)+`)`)
	cancel()
	if err == nil {
		t.Fatal("the interrupted download did not fail")
	}
	// A shell() with temp_file, killed after making its file.
	ctxK := connectors.WithRun(t.Context(), first)
	if err, _ := runIn(t, ctxK, h, `shell(temp_file(`+q(dest)+`) + "kill -KILL $$")`); err == nil {
		t.Fatal("the killed shell did not fail")
	}
	left := ourTemps(t, dir)
	if len(left) != 2 {
		t.Fatalf("after the killed runs: %q in %s, want 2 temporary files", left, dir)
	}
	for _, n := range left {
		if !strings.HasPrefix(n, ".star-deploy-"+first.ID+"-app.bin.") {
			t.Errorf("leftover %q is not named for the run %s", n, first.ID)
		}
		fi, err := os.Lstat(filepath.Join(dir, n))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("leftover %s: %v %v, want a regular file, mode 0600", n, fi.Mode(), err)
		}
	}
	if _, err := os.Stat(dest); err == nil {
		t.Errorf("the interrupted download made %s", dest)
	}
	// Files the sweep must keep.
	keep := []string{".star-deploy-download.Ab12Cd", ".star-deploy-0123456789ab-dir"}
	if err := os.WriteFile(filepath.Join(dir, keep[0]), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, keep[1]), 0o755); err != nil {
		t.Fatal(err)
	}
	// The sweep removes files last changed before the run started,
	// on the host's clock in whole seconds: age them.
	old := time.Now().Add(-time.Hour)
	for _, n := range append(left, keep...) {
		if err := os.Chtimes(filepath.Join(dir, n), old, old); err != nil {
			t.Fatal(err)
		}
	}

	second := connectors.NewRun()
	own := filepath.Join(dir, ".star-deploy-"+second.ID+"-other.Ab12Cd") // the running run's own
	if err := os.WriteFile(own, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(own, old, old); err != nil {
		t.Fatal(err)
	}
	src := load + `files.download(` + q(url+"/ok") + `, ` + q(dest) + `)`
	if next == "copy" {
		from := filepath.Join(t.TempDir(), "from")
		if err := os.WriteFile(from, []byte("payload\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		src = load + `files.copy(` + q(from) + `, ` + q(dest) + `)`
	}
	if err, failed := runIn(t, connectors.WithRun(t.Context(), second), h, src); err != nil {
		t.Fatalf("the next run: %v\n%s", err, strings.Join(failed, "\n"))
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "payload\n" {
		t.Errorf("%s after the next run: %q %v", dest, b, err)
	}
	got := ourTemps(t, dir)
	want := []string{".star-deploy-0123456789ab-dir", filepath.Base(own)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after the next run: %q, want only %q (the leftovers removed, the rest kept)", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, keep[0])); err != nil {
		t.Errorf("the sweep removed %s, not a run's name: %v", keep[0], err)
	}
}

// TestTempFileArgs: temp_file with a relative dest fails, naming itself.
func TestTempFileArgs(t *testing.T) {
	err, _ := runIn(t, t.Context(), tempHosts(t)["local"](t), `temp_file("relative")`)
	if err == nil || !strings.Contains(err.Error(), "temp_file: dest must be an absolute path") {
		t.Errorf("temp_file(\"relative\"): %v", err)
	}
}
