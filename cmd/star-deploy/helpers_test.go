package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
		out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}
