package gendocs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/internal/gendocs"
)

// docsDir is the checked-in reference, relative to this package.
const docsDir = "../../docs"

// TestDocsInSync compares the generated reference with docs/, byte for byte.
func TestDocsInSync(t *testing.T) {
	ref := load(t)
	generated := map[string]bool{}
	for _, f := range ref.Files() {
		generated[f.Path] = true
		got, err := os.ReadFile(filepath.Join(docsDir, filepath.FromSlash(f.Path)))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("docs/%s is out of date: run `make docs`", f.Path)
		}
	}
	err := filepath.WalkDir(docsDir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && d.IsDir() && filepath.Base(p) == "guide" {
			return filepath.SkipDir // handwritten pages (make docs leaves them alone)
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".md") {
			return err
		}
		rel, _ := filepath.Rel(docsDir, p)
		if filepath.ToSlash(rel) == "cli.md" {
			return nil // the CLI writes it (cmd/star-deploy TestDocsCLIPageIsCurrent)
		}
		if !generated[filepath.ToSlash(rel)] {
			t.Errorf("docs/%s is no longer generated: run `make docs`", filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Errorf("docs/: %v", err)
	}
}

// TestEveryEntryDocumented fails for each builtin, fact, stdlib operation,
// connector or data key that lacks a description or an example.
func TestEveryEntryDocumented(t *testing.T) {
	for _, p := range load(t).Problems() {
		t.Error(p)
	}
}

func TestMarkdownTopics(t *testing.T) {
	ref := load(t)
	all, err := ref.Markdown("")
	if err != nil {
		t.Fatal(err)
	}
	for _, heading := range []string{"# Builtins\n", "## Control arguments\n", "# Facts\n", "# files\n", "## files.directory\n", "# Connectors\n", "## @ssh\n"} {
		if !bytes.Contains(all, []byte(heading)) {
			t.Errorf("the whole reference lacks %q", heading)
		}
	}
	for topic, first := range map[string]string{"builtins": "# Builtins\n", "facts": "# Facts\n", "stdlib": "# ", "files": "# files\n", "connectors": "# Connectors\n"} {
		md, err := ref.Markdown(topic)
		if err != nil || !bytes.HasPrefix(md, []byte(first)) {
			t.Errorf("Markdown(%q) = %.40q, %v; want it to start with %q", topic, md, err, first)
		}
	}
	if _, err := ref.Markdown("nope"); err == nil || !strings.Contains(err.Error(), "builtins, facts, stdlib, connectors") {
		t.Errorf("Markdown(nope): %v; want an error listing the topics", err)
	}
}

func load(t *testing.T) *gendocs.Reference {
	t.Helper()
	ref, err := gendocs.Load()
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestParseModule(t *testing.T) {
	const src = `"""Things to do.

More about them.
"""

def _full(path, mode = None, opts = {"a": [1, -2]}, *args, **control):
    """Does the full thing,
    on two lines.

    A second paragraph.

    Args:
      path: the path,
        continued deeper.
      mode: the mode.
      opts: options.
      *args: more.

    Returns: a result
      with .changed.

    Example:
      m.full("/srv")

      m.full("/etc", mode = "0644")
    """
    pass

def _inline(x, *, flag = "ü b"):
    """Does it inline.
    Example: m.inline(1)
    """

def _bare(x):
    pass

m = struct(full = _full, inline = _inline, bare = _bare, other = print)
`
	m, err := gendocs.ParseModule("m.star", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "m" || m.Doc != "Things to do.\n\nMore about them." {
		t.Errorf("module = %q, %q", m.Name, m.Doc)
	}
	want := []gendocs.Op{
		{
			Name: "m.full",
			Params: []gendocs.OpParam{
				{Name: "path", Doc: "the path, continued deeper."},
				{Name: "mode", Default: "None", Doc: "the mode."},
				{Name: "opts", Default: `{"a": [1, -2]}`, Doc: "options."},
				{Name: "*args", Doc: "more."},
				{Name: "**control"},
			},
			Summary: "Does the full thing, on two lines.",
			Body:    "A second paragraph.",
			Returns: "a result with .changed.",
			Example: "m.full(\"/srv\")\n\nm.full(\"/etc\", mode = \"0644\")",
		},
		{
			Name: "m.inline",
			Params: []gendocs.OpParam{
				{Name: "x"}, {Name: "*"}, {Name: "flag", Default: `"ü b"`},
			},
			Summary: "Does it inline.",
			Example: "m.inline(1)",
		},
		{Name: "m.bare", Params: []gendocs.OpParam{{Name: "x"}}},
		{Name: "m.other"},
	}
	if !reflect.DeepEqual(m.Ops, want) {
		t.Errorf("ops:\n got %+v\nwant %+v", m.Ops, want)
	}
	wantProblems := []string{
		"m.inline: parameter x is not described under Args",
		"m.inline: parameter flag is not described under Args",
		"m.bare: no docstring",
		"m.other: not a function defined in m.star",
	}
	if !reflect.DeepEqual(m.Problems, wantProblems) {
		t.Errorf("problems:\n got %q\nwant %q", m.Problems, wantProblems)
	}
}

func TestParseModuleProblems(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"no module docstring", `m = struct()`, "m.star: no module docstring"},
		{"no exported struct", `"""Doc."""
def _a():
    """A."""
`, "m.star: no top-level `m = struct(...)` exporting its operations"},
		{"no summary", `"""Doc."""
def _a():
    """
    Example: m.a()
    """
m = struct(a = _a)
`, "m.a: no summary"},
		{"no example", `"""Doc."""
def _a():
    """Does a."""
m = struct(a = _a)
`, "m.a: no Example"},
		{"unknown arg", `"""Doc."""
def _a(x):
    """Does a.

    Args:
      x: an x.
      y: a y.

    Example: m.a(1)
    """
m = struct(a = _a)
`, "m.a: Args describes y, which is not a parameter"},
		{"positional struct argument", `"""Doc."""
m = struct(_a)
`, "m.star: struct argument at line 2 is not name = function"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := gendocs.ParseModule("m.star", []byte(c.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Problems) != 1 || m.Problems[0] != c.want {
				t.Errorf("problems = %q; want [%q]", m.Problems, c.want)
			}
		})
	}
	if _, err := gendocs.ParseModule("m.star", []byte("def (")); err == nil {
		t.Error("a syntax error was not reported")
	}
}
