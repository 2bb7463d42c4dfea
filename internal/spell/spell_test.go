package spell

import "testing"

func TestNearest(t *testing.T) {
	for _, c := range []struct {
		name string
		from []string
		want string
	}{
		{"shel", []string{"put", "shell", "sha256"}, "shell"},
		{"fiels", []string{"files", "fail"}, "files"}, // a swap is one edit
		{"exce", []string{"exec", "fact", "repl"}, "exec"},
		{"conectors", []string{"connectors", "docs"}, "connectors"},
		{"oss", []string{"os", "users"}, "os"},
		{"Shell", []string{"shell"}, "shell"},
		{"put", []string{"put", "pat"}, "pat"}, // the name itself is no suggestion
		{"xyz", []string{"shell", "put"}, ""},
		{"ab", []string{"abcd"}, ""}, // two edits is too far for a short name
		{"", []string{"a"}, ""},      // nothing to correct
	} {
		if got := Nearest(c.name, c.from); got != c.want {
			t.Errorf("Nearest(%q, %q) = %q, want %q", c.name, c.from, got, c.want)
		}
	}
	if got := Suffix("shel", []string{"shell"}); got != " (did you mean shell?)" {
		t.Errorf("Suffix = %q", got)
	}
	if got := Suffix("zzzz", []string{"shell"}); got != "" {
		t.Errorf("Suffix = %q, want none", got)
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"ab", "ba", 1}, {"héllo", "hello", 1},
	} {
		if got := distance(c.a, c.b); got != c.want {
			t.Errorf("distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
