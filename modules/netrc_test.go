package modules

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNetrc: a machine's first entry wins, default serves other hosts,
// quoted tokens keep blanks and escapes, macdef bodies and account are
// skipped, and a missing or unparsable file gives no credentials.
func TestNetrc(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "netrc")
	os.WriteFile(p, []byte("machine a.example login u1 password p1 account acct\n"+
		"macdef init\nmachine evil login x password y\n\n"+
		"machine a.example login u2 password p2\n"+
		"machine b.example login \"with space\" password \"q\\\"uote\"\n"+
		"default login anon password guest\n"), 0o600)
	for host, want := range map[string][3]string{
		"a.example": {"u1", "p1", "ok"},
		"b.example": {"with space", `q"uote`, "ok"},
		"evil":      {"anon", "guest", "ok"},
		"other":     {"anon", "guest", "ok"},
	} {
		u, pw, ok := Netrc(p)(host)
		if u != want[0] || pw != want[1] || !ok {
			t.Errorf("%s: %q %q %v, want %q", host, u, pw, ok, want)
		}
	}
	for _, content := range []string{"", "machine a.example login u password \"unterminated\n"} {
		os.WriteFile(p, []byte(content), 0o600)
		if u, pw, ok := Netrc(p)("a.example"); ok {
			t.Errorf("netrc %q gave %q %q", content, u, pw)
		}
	}
	if _, _, ok := Netrc(filepath.Join(dir, "missing"))("a.example"); ok {
		t.Error("a missing netrc gave credentials")
	}
}
