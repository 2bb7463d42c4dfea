package inventory

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	inv := &Inventory{
		Hosts: []Entry{
			{Name: "@x/pool", Groups: []string{"app"}, Data: map[string]any{"role": "web"}, Pos: "inv.star:1"},
			{Name: "db1", Groups: []string{"db"}, Data: map[string]any{}},
			{Name: "@x/again", Data: map[string]any{}},
		},
		Groups: []Group{{Name: "app", Hosts: []string{"@x/pool"}}, {Name: "db", Hosts: []string{"db1"}}},
	}
	err := inv.Expand(func(e Entry) ([]Entry, bool, error) {
		switch e.Name {
		case "@x/pool":
			return []Entry{{Name: "@x/a", Data: map[string]any{"role": "db", "n": int64(1)}, Groups: []string{"front"}}, {Name: "@x/b"}}, true, nil
		case "@x/again":
			return []Entry{{Name: "@x/a", Groups: []string{"late"}}}, true, nil
		}
		return nil, false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a := inv.Hosts[0]
	if a.Name != "@x/a" || !reflect.DeepEqual(a.Data, map[string]any{"role": "web", "n": int64(1)}) || !reflect.DeepEqual(a.Groups, []string{"app", "front", "late"}) || a.Pos != "inv.star:1" {
		t.Errorf("a = %+v: want the entry's data over its own, groups app, front, late", a)
	}
	if len(inv.Hosts) != 3 || inv.Hosts[1].Name != "@x/b" || inv.Hosts[2].Name != "db1" {
		t.Errorf("hosts = %+v", inv.Hosts)
	}
	want := []Group{{Name: "app", Hosts: []string{"@x/a", "@x/b"}}, {Name: "db", Hosts: []string{"db1"}},
		{Name: "front", Hosts: []string{"@x/a"}, Pos: "inv.star:1"}, {Name: "late", Hosts: []string{"@x/a"}, Pos: "inv.star:1"}}
	if !reflect.DeepEqual(inv.Groups, want) {
		t.Errorf("groups = %+v, want %+v", inv.Groups, want)
	}
}

func TestExpandErrors(t *testing.T) {
	two := func(d1, d2 any) *Inventory {
		return &Inventory{Hosts: []Entry{{Name: "@x/p", Data: map[string]any{"k": d1}}, {Name: "@x/q", Data: map[string]any{"k": d2}}}}
	}
	same := func(e Entry) ([]Entry, bool, error) { return []Entry{{Name: "@x/h"}}, true, nil }
	if err := two("a", "b").Expand(same); err == nil || !strings.Contains(err.Error(), "host @x/h comes from @x/p and from @x/q: their values of k differ") {
		t.Errorf("conflict: %v", err)
	}
	if err := two("a", "a").Expand(same); err != nil {
		t.Errorf("same data: %v", err)
	}
	none := func(e Entry) ([]Entry, bool, error) { return nil, true, nil }
	if err := two("a", "a").Expand(none); err == nil || err.Error() != "no host to run on: @x/p and @x/q matched none" {
		t.Errorf("none: %v", err)
	}
	bad := func(e Entry) ([]Entry, bool, error) { return []Entry{{Name: "a b"}}, true, nil }
	if err := two("a", "a").Expand(bad); err == nil || !strings.Contains(err.Error(), `@x/p: expanded to host "a b": a host name cannot contain whitespace`) {
		t.Errorf("bad name: %v", err)
	}
}
