package inventory

import (
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzLoadStar feeds arbitrary inventory.star and group data sources to the
// reader: it must return an inventory or an error, never panic or hang,
// and every host it returns has a valid name and non-nil data.
func FuzzLoadStar(f *testing.F) {
	f.Add("web = [\"web1\", (\"web2\", {\"port\": 2222})]\ndb = [\"@ssh/db1\"]\n", "port = 1\n")
	f.Add("a = [(\"h\", {\"k\": [1, 2, {\"x\": None}]})]\n", "")
	f.Add("_x = 1\nall_hosts = [\"@local\"]\n", "role = 'x'\n")
	f.Add("web = \"no\"\n", "")
	f.Add("web = [1 // 0]\n", "x = set()\n")
	f.Fuzz(func(t *testing.T, inv, all string) {
		fsys := fstest.MapFS{"inventory.star": {Data: []byte(inv)}}
		if all != "" {
			fsys["group_data/all.star"] = &fstest.MapFile{Data: []byte(all)}
		}
		got, err := loadStar(fsys, "inventory.star", "inventory.star")
		if err != nil {
			return
		}
		for _, h := range got.Hosts {
			if _, err := canonical(h.Name); err != nil {
				t.Errorf("host %q accepted: %v", h.Name, err)
			}
			if h.Data == nil {
				t.Errorf("host %q has nil data", h.Name)
			}
		}
	})
}

// FuzzParse: host lists either parse into valid, distinct names or fail.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"@local", "a,b, c", "@ssh/db1,db1", "@docker/x,@", " , ", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		entries, err := Parse(spec)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			key, err := canonical(e.Name)
			if err != nil || seen[key] || strings.TrimSpace(e.Name) != e.Name {
				t.Errorf("Parse(%q) gave %q (%v)", spec, e.Name, err)
			}
			seen[key] = true
		}
	})
}
