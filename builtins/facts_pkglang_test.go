package builtins

import (
	"maps"
	"testing"
)

func TestParsePipList(t *testing.T) {
	got, err := parsePipList(captureText(t, "pip-list.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"odd-tool-pkg": "2.0", "pip": "23.0.1", "setuptools": "66.1.1"}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parsePipList("ERROR: not json"); err == nil {
		t.Error("no error for output that is no JSON")
	}
}

func TestParseNpmLs(t *testing.T) {
	for _, c := range []struct {
		capture string
		want    map[string]string
	}{
		{"npm-ls-global.json", map[string]string{"@star/scoped": "0.2.0-beta.1", "hello-star": "1.0.0"}},
		// extraneous (installed, not in package.json): in; npm ls exits 1.
		{"npm-ls-directory.json", map[string]string{"extra-star": "3.0.0", "hello-star": "1.0.0"}},
		// in package.json, not installed: out.
		{"npm-ls-missing.json", map[string]string{}},
	} {
		got, err := parseNpmLs(captureText(t, c.capture))
		if err != nil {
			t.Fatalf("%s: %v", c.capture, err)
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.capture, got, c.want)
		}
	}
	if got, err := parseNpmLs(""); err != nil || len(got) != 0 {
		t.Errorf("empty output: %v, %v", got, err)
	}
	if _, err := parseNpmLs(`{"error": {"code": "ENOENT", "summary": "no such file"}}`); err == nil {
		t.Error("no error for npm's ENOENT")
	}
}

func TestParseGemList(t *testing.T) {
	got := parseGemList(captureText(t, "gem-list-local.txt"))
	for name, want := range map[string][]string{
		"hello-star": {"1.1.0", "1.0.0"},
		"abbrev":     {"0.1.0"},  // (default: 0.1.0)
		"plat-star":  {"2.0.0"},  // (2.0.0 x86_64-linux)
		"rake":       {"13.0.6"}, // from Debian
	} {
		if g := got[name]; len(g) != len(want) || (len(g) > 0 && (g[0] != want[0] || g[len(g)-1] != want[len(want)-1])) {
			t.Errorf("%s: got %q, want %q", name, g, want)
		}
	}
	if len(got) < 80 {
		t.Errorf("only %d gems parsed", len(got))
	}
}

func TestParsePipxList(t *testing.T) {
	got, err := parsePipxList(captureText(t, "pipx-list.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"odd-tool-pkg": "2.0", "tool-star": "1.0"}; !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := parsePipxList(`{"pipx_spec_version": "0.1", "venvs": {}}`); err != nil || len(got) != 0 {
		t.Errorf("no venvs: %v, %v", got, err)
	}
}

func TestParseSnapList(t *testing.T) {
	got := parseSnapList(captureText(t, "snap-list.txt"))
	if len(got) != 5 {
		t.Fatalf("got %d snaps, want 5: %+v", len(got), got)
	}
	want := snap{Name: "lxd", Version: "4.0.9-8e2046b", Revision: "22753", Tracking: "4.0/stable/…", Publisher: "canonical✓", Notes: "-"}
	if got[3] != want {
		t.Errorf("got %+v, want %+v", got[3], want)
	}
	if got := parseSnapList(""); len(got) != 0 {
		t.Errorf("no snaps: %+v", got)
	}
}

func TestParseFlatpakList(t *testing.T) {
	got := parseFlatpakList(captureText(t, "flatpak-list.txt"))
	if len(got) != 2 {
		t.Fatalf("got %d IDs, want 2: %+v", len(got), got)
	}
	h := got["org.star.Hello"]
	if len(h.branches) != 2 || h.branches[0] != "beta" || h.branches[1] != "stable" || len(h.origins) != 1 || h.origins[0] != "star-test" {
		t.Errorf("org.star.Hello: %+v", h)
	}
	// A terminal's layout, as flatpak prints it there.
	tty := parseFlatpakList("Application ID      Branch  Origin\norg.videolan.VLC    stable  flathub\n")
	if r, ok := tty["org.videolan.VLC"]; !ok || len(tty) != 1 || r.origins[0] != "flathub" {
		t.Errorf("terminal layout: %+v", tty)
	}
}
