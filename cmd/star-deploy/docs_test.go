package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/internal/gendocs"
)

func TestDocsPrintsTheReference(t *testing.T) {
	code, stdout, stderr := runCLI(t, "docs")
	if code != exitOK || stderr != "" {
		t.Fatalf("docs: exit %d, stderr %q", code, stderr)
	}
	for _, heading := range []string{"# Builtins\n", "## shell\n", "## Control arguments\n", "# Facts\n", "# files\n", "# Connectors\n", "## @ssh\n"} {
		if !strings.Contains(stdout, heading) {
			t.Errorf("docs output lacks %q", heading)
		}
	}
}

func TestDocsTopic(t *testing.T) {
	code, stdout, _ := runCLI(t, "docs", "facts")
	if code != exitOK || !strings.HasPrefix(stdout, "# Facts\n") || strings.Contains(stdout, "# Builtins") {
		t.Errorf("docs facts: exit %d, output %.60q...; want only the facts", code, stdout)
	}
	code, _, stderr := runCLI(t, "docs", "nope")
	if code != exitUsage || !strings.Contains(stderr, `unknown topic "nope"`) {
		t.Errorf("docs nope: exit %d, stderr %q; want exit 2 naming the topic", code, stderr)
	}
}

func TestDocsDir(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, "docs", "--dir", dir)
	if code != exitOK || stdout != "" || stderr != "" {
		t.Fatalf("docs --dir: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	ref, err := gendocs.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ref.Files() {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s: not written as generated (%v)", f.Path, err)
		}
	}
	if code, _, _ := runCLI(t, "docs", "--dir", dir, "facts"); code != exitUsage {
		t.Errorf("docs --dir DIR facts: exit %d; want 2", code)
	}
}

// TestDocsCLIPageIsCurrent: docs/cli.md is what `docs --dir` writes now,
// and it holds the help of every command in helpPages.
func TestDocsCLIPageIsCurrent(t *testing.T) {
	// As make docs runs it: help at 80 columns, no STAR_DEPLOY_* defaults.
	t.Setenv("COLUMNS", "")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, cliReference()) {
		t.Errorf("docs/cli.md is out of date: run `make docs`")
	}
	for _, want := range []string{"## star-deploy exec --help", "## star-deploy completion --help", "--[no-]dry"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("docs/cli.md lacks %q", want)
		}
	}
}
