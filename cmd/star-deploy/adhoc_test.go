package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readText returns the content of path.
func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAdhocOperation runs files.line from the command line on @local: it
// changes the file, a second run changes nothing, --dry changes nothing.
func TestAdhocOperation(t *testing.T) {
	dir := t.TempDir()
	hosts := writeFile(t, dir, "hosts", "a\n")

	code, _, stderr := runCLI(t, "--dry", "@local", "files.line", hosts, "127.0.0.1 x")
	if code != 0 || readText(t, hosts) != "a\n" {
		t.Fatalf("--dry: exit %d, file %q, stderr:\n%s", code, readText(t, hosts), stderr)
	}
	code, stdout, stderr := runCLI(t, "@local", "files.line", hosts, "127.0.0.1 x")
	if code != 0 || readText(t, hosts) != "a\n127.0.0.1 x\n" || !strings.Contains(stdout, "changed") {
		t.Fatalf("exit %d, file %q, stdout:\n%s\nstderr:\n%s", code, readText(t, hosts), stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "--json", "@local", "files.line", hosts, "127.0.0.1 x")
	if code != 0 || strings.Contains(stdout, `"changed":true`) {
		t.Fatalf("second run: exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// present=False is the literal False: the line goes.
	code, _, stderr = runCLI(t, "@local", "files.line", hosts, "127.0.0.1 x", "present=False")
	if code != 0 || readText(t, hosts) != "a\n" {
		t.Fatalf("present=False: exit %d, file %q, stderr:\n%s", code, readText(t, hosts), stderr)
	}
}

// TestAdhocValues checks that literals are passed as Starlark values and
// anything else as a string.
func TestAdhocValues(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"True", "True"},
		{"8080", "8080"},
		{"-1", "-1"},
		{`["a","b"]`, `["a","b"]`},
		{`"quoted"`, `"quoted"`},
		{`{"k": (1, None)}`, `{"k": (1, None)}`},
		{"nginx", `"nginx"`},
		{"/tmp/x", `"/tmp/x"`},
		{"127.0.0.1 x", `"127.0.0.1 x"`},
		{"1+2", `"1+2"`},
		{"[a]", `"[a]"`},
		{`"a" * 9`, `"\"a\" * 9"`},
	} {
		if got := starlarkValue(tc.arg); got != tc.want {
			t.Errorf("starlarkValue(%q) = %s, want %s", tc.arg, got, tc.want)
		}
	}
	// Through the CLI: mode=0o600 is a number, the content a string.
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	code, _, stderr := runCLI(t, "@local", "files.put", p, "content=hello", "mode=0o600")
	if code != 0 || readText(t, p) != "hello" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	// content=8080 is the int 8080, which put refuses: the error points at
	// the command line.
	code, stdout, stderr := runCLI(t, "@local", "files.put", p, "content=8080")
	if code != 1 || !strings.Contains(stdout+stderr, "<command line>:1:") || readText(t, p) != "hello" {
		t.Fatalf("an int as content: exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestAdhocUsageErrors checks that an unknown module or operation exits 2
// before any host runs, naming it and listing what exists.
func TestAdhocUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"filez.line", "/tmp/x", "y"}, []string{"filez (did you mean files?)", "files, flatpak"}},
		{[]string{"files.lien", "/tmp/x", "y"}, []string{"no operation lien", "line, replace"}},
		{[]string{"files.line", "present=False", "/tmp/x"}, []string{`"/tmp/x" follows the keyword argument`}},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"@local"}, tc.args...)...)
		if code != 2 || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", tc.args, code, stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr %q lacks %q", tc.args, stderr, w)
			}
		}
	}
}

// TestScriptFunction runs FILE:FUNC: the top level, then the function.
func TestScriptFunction(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := writeFile(t, dir, "deploy.star", `
load("@stdlib//files.star", "files")
print("top")

def setup_nginx():
    print("setup_nginx")
    files.line(`+"`"+`OUT`+"`"+`, "nginx")

def other():
    fail("other must not run")
`)
	src := strings.Replace(readText(t, script), "`OUT`", `"`+out+`"`, 1)
	writeFile(t, dir, "deploy.star", src)

	code, stdout, stderr := runCLI(t, "@local", script+":setup_nginx")
	if code != 0 || !strings.Contains(stdout, "top") || !strings.Contains(stdout, "setup_nginx") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if i, j := strings.Index(stdout, "top"), strings.Index(stdout, "setup_nginx"); i > j {
		t.Errorf("the function ran before the top level:\n%s", stdout)
	}
	if !exists(t, out) || readText(t, out) != "nginx\n" {
		t.Errorf("the function did not write %s", out)
	}

	code, stdout, stderr = runCLI(t, "@local", script+":setup_apache")
	if code != 2 || stdout != "" || !strings.Contains(stderr, script) || !strings.Contains(stderr, "no function setup_apache") || !strings.Contains(stderr, "setup_nginx, other") {
		t.Errorf("missing function: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}
