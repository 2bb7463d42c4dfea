package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// runCLI runs the command line in-process and returns its exit code and
// output.
func runCLI(tb testing.TB, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	var out, errOut bytes.Buffer
	code = run(tb.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeFile writes content to dir/name and returns the path.
func writeFile(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	sshtest.WriteFile(tb, p, content)
	return p
}

// exists reports whether path exists.
func exists(tb testing.TB, path string) bool {
	tb.Helper()
	_, err := os.Stat(path)
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	return err == nil
}

// binary is the star-deploy executable the tests that run the real binary
// share: built once per test process (without -race, as users run it) and
// removed by TestMain.
var binary struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildBinary returns the path of the star-deploy binary, building it on
// first use. Under -short it skips the test instead.
func buildBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	binary.once.Do(func() {
		if binary.dir, binary.err = os.MkdirTemp("", "star-deploy-test-bin-"); binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "star-deploy")
		binary.err = goBuild(binary.path, nil)
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// buildStampedBinary builds star-deploy into a directory of its own with
// version and commit stamped in as make release does, and returns its path.
// Under -short it skips the test instead.
func buildStampedBinary(t testing.TB, version, commit string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	path := filepath.Join(t.TempDir(), "star-deploy")
	if err := goBuild(path, nil, "-trimpath", "-ldflags", "-X main.version="+version+" -X main.commit="+commit); err != nil {
		t.Fatal(err)
	}
	return path
}

// goBuild builds this package to path with the extra go build flags and
// environment variables (KEY=VALUE) added to the test's.
func goBuild(path string, env []string, flags ...string) error {
	args := append(append([]string{"build"}, flags...), "-o", path, ".")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// binaryRun is a started star-deploy process whose output a test reads
// while it runs.
type binaryRun struct {
	cmd            *exec.Cmd
	stdout, stderr conntest.SyncBuffer
	done           chan error // receives the result of cmd.Wait
}

// startBinary starts bin with args. The process is killed when the test
// ends, if it still runs.
func startBinary(t *testing.T, bin string, args ...string) *binaryRun {
	t.Helper()
	r := &binaryRun{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill() })
	go func() { r.done <- r.cmd.Wait() }()
	return r
}

// waitForFile waits until path exists, failing t if the run ends first or
// after 20 s.
func (r *binaryRun) waitForFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !exists(t, path); {
		select {
		case err := <-r.done:
			t.Fatalf("the run ended (%v) before %s existed\nstdout:\n%s\nstderr:\n%s", err, path, r.stdout.String(), r.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script did not start\nstdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signalAndWait sends sig to the run and waits for it to end, failing t
// (after killing it) when it does not within bound. It returns how long it
// took.
func (r *binaryRun) signalAndWait(t *testing.T, sig syscall.Signal, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
		return time.Since(start)
	case <-time.After(bound):
		r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("still running %s after %v\nstdout:\n%s\nstderr:\n%s", bound, sig, r.stdout.String(), r.stderr.String())
		return 0
	}
}
