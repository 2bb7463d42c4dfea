package builtins

import "testing"

func TestAboutPath(t *testing.T) {
	for _, c := range []struct {
		key, path string
		want      bool
	}{
		{"file\x00/srv/a\x00false", "/srv/a", true},
		{"tree\x00/srv\x00false", "/srv/a", true},
		{"tree\x00/\x00false", "/srv/a", true},
		{"git\x00/srv/app\x00false", "/srv/app/.git/HEAD", true},
		{"content\x00/srv/ab\x00false", "/srv/a", false},  // a longer sibling
		{"tree\x00/srv/a\x00false", "/srv/ab", false},     // a prefix that is not a parent
		{"file\x00/srv/a/b\x00false", "/srv/a", false},    // below the path: not changed by writing it
		{"os\x00false", "/srv", false},                    // no arguments
		{"sysctl\x00net.ipv4\x00false", "net.ipv4", true}, // equal arguments
	} {
		if got := aboutPath(c.key, c.path); got != c.want {
			t.Errorf("aboutPath(%q, %q) = %v", c.key, c.path, got)
		}
	}
}
