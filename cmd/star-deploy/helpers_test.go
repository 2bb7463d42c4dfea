package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
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

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
		binary.err = goBuild(binary.path)
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
	if err := goBuild(path, "-trimpath", "-ldflags", "-X main.version="+version+" -X main.commit="+commit); err != nil {
		t.Fatal(err)
	}
	return path
}

// goBuild builds this package to path with the extra go build flags.
func goBuild(path string, flags ...string) error {
	args := append(append([]string{"build"}, flags...), "-o", path, ".")
	out, err := exec.Command("go", args...).CombinedOutput()
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
