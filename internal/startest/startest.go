// Package startest runs Starlark test files (testdata/*.star) through the
// production engine (runtime.Runner: Compile, then Run) on a real host: the
// local connector, with a fresh temporary directory per test. So a test
// file goes through the real loader, its load-time errors and the
// builtins the engine predeclares. Its callers are external test packages
// (package builtins_test), since it imports the packages under test.
//
// Each file runs as a subtest. If it defines test_* functions, each runs as
// its own subtest, on a fresh runner and host: the file's top level runs
// again, then the function (the harness appends the call to the source, so
// positions in the file do not move). Otherwise the top-level code is the
// test. Files see what deploy scripts see (the builtins, `host`, `json`,
// `struct`, load("@stdlib//NAME.star", ...)), load("assert.star",
// "assert") (go.starlark.net/starlarktest's module, served as an
// Options.Modules entry), and these helpers (Options.Builtins):
//
//	tmp                      a temporary directory of the test (absolute path)
//	read(path)               a local file's content, or None when missing
//	write(path, content)     write a local file (and its directories); drops cached facts
//	config(dry=, diff=)      switch the host's dry-run and diff modes
//	events()                 op_end and print events so far, as structs
//	fake(responses)          from now on, run on an in-memory host (connectors/fake)
//	                         instead: responses maps a command prefix to its stdout,
//	                         or to (stdout, exit_code); other commands exit 0 silently
//	commands()               the commands the fake host has run, in order
//
// fake() is how operations' decisions are tested on output captured from
// systems the test machine is not (systemd, rpm, apk): a test asserts which
// commands an operation chose.
package startest

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// Run runs every file matching glob as a subtest.
func Run(t *testing.T, glob string) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files match %s", glob)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			runFile(t, f)
		})
	}
}

func runFile(t *testing.T, file string) {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !runScript(t, file, src) {
		return
	}
	for _, name := range testNames(t, file, src) {
		t.Run(name, func(t *testing.T) {
			// The whole file runs again for each test, so that its
			// globals (tmp) are the test's own.
			call := append(append(append([]byte{}, src...), '\n'), name+"()\n"...)
			runScript(t, file, call)
		})
	}
}

// testNames returns the test_* functions that file defines at its top
// level, sorted.
func testNames(t *testing.T, file string, src []byte) []string {
	f, err := runtime.FileOptions().Parse(file, src, 0)
	if err != nil {
		t.Fatal(err) // the engine ran it: it parses
	}
	var names []string
	for _, stmt := range f.Stmts {
		if def, ok := stmt.(*syntax.DefStmt); ok && strings.HasPrefix(def.Name.Name, "test_") {
			names = append(names, def.Name.Name)
		}
	}
	sort.Strings(names)
	return names
}

// runScript compiles src as file on a new runner with the test's helpers
// and runs it on a new @local host. It reports failures on t and returns
// false when the script failed with an error (a failed assert is
// reported, and the script carries on).
func runScript(t testing.TB, file string, src []byte) bool {
	e := newEnv(t)
	r := runtime.New(runtime.Options{
		Connectors: connectors.NewRegistry(local.NewFactory()),
		Stdlib:     stdlib.FS,
		Builtins:   e.helpers(),
		Modules:    e.modules(),
		OnEvent:    e.record,
	})
	prog, err := r.Compile(t.Context(), file, src)
	if err != nil {
		t.Error(err)
		return false
	}
	host, err := r.Host("@local", map[string]any{"role": "test", "sudo_password": "canary-pw"})
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Run(t.Context(), []*runtime.Program{prog}, []runtime.Host{host})
	if err := rep.Hosts[0].Err; err != nil {
		var se *runtime.ScriptError
		if errors.As(err, &se) && se.Backtrace != "" {
			t.Error(se.Backtrace)
		} else {
			t.Error(err)
		}
		return false
	}
	return true
}

// Skip skips t with reason, except under CI=true, where a skipped test is a
// failure: CI installs everything the tests need.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot skip under CI=true: %s", reason)
	}
	t.Skip(reason)
}
