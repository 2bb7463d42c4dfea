package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadStar(t *testing.T) {
	inv, err := Load(t.Context(), "testdata/star/inventory.star")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	if want := []string{"web1", "web2", "@docker/app", "@ssh/db1"}; !reflect.DeepEqual(names, want) {
		t.Errorf("hosts %v, want %v", names, want)
	}
	byName := map[string]Entry{}
	for _, h := range inv.Hosts {
		byName[h.Name] = h
	}
	for _, c := range []struct {
		host   string
		groups []string
		data   map[string]any
	}{
		// all < groups (the first group wins) < the host's own data.
		{"web1", []string{"web"}, map[string]any{"role": "web", "stage": "prod", "port": int64(8080), "sudo": true, "ssh_user": "deploy"}},
		{"web2", []string{"web", "canary"}, map[string]any{"role": "canary", "stage": "canary", "port": int64(8080), "sudo": true, "ssh_port": int64(2222), "ssh_user": "deploy"}},
		{"@docker/app", []string{"web"}, map[string]any{"role": "web", "stage": "prod", "port": int64(8080), "sudo": true, "ssh_user": "deploy"}},
		{"@ssh/db1", []string{"db", "canary"}, map[string]any{"role": "primary", "stage": "canary", "port": int64(9090), "tags": []any{"a", "b"}, "ssh_user": "deploy"}},
	} {
		h := byName[c.host]
		if !reflect.DeepEqual(h.Groups, c.groups) {
			t.Errorf("%s: groups %v, want %v", c.host, h.Groups, c.groups)
		}
		if !reflect.DeepEqual(h.Data, c.data) {
			t.Errorf("%s: data %v, want %v", c.host, h.Data, c.data)
		}
	}
	web2 := byName["web2"]
	if got := web2.At("ssh_port"); got != "testdata/star/inventory.star:6" {
		t.Errorf("web2 ssh_port set at %q", got)
	}
	if got := web2.At("stage"); got != "testdata/star/group_data/canary.star:2" {
		t.Errorf("web2 stage set at %q", got)
	}
	if got := byName["web1"].Pos; got != "testdata/star/inventory.star:5" {
		t.Errorf("web1 at %q", got)
	}
}

func TestLoadStarErrors(t *testing.T) {
	for _, c := range []struct {
		name, inv string
		groupData map[string]string
		want      []string
	}{
		{"not a list", "web = \"web1\"\n", nil, []string{"inventory.star:1", "web is a string", "a list of hosts"}},
		{"bad item", "web = [\"a\",\n  42]\n", nil, []string{"inventory.star:2", "group web, item 2", "got int"}},
		{"bad pair", "web = [(\"a\", \"b\")]\n", nil, []string{"inventory.star:1", "its data must be a dict"}},
		{"twice in group", "web = [\"a\", \"@ssh/a\"]\n", nil, []string{"inventory.star:1", `"@ssh/a" is named twice in group web`}},
		{"conflicting data", "a = [(\"h\", {\"k\": 1})]\nb = [(\"h\", {\"k\": 2})]\n", nil, []string{"inventory.star:2", "data key k is also set, differently, at", "inventory.star:1"}},
		{"syntax", "web = [\n", nil, []string{"inventory.star:2"}},
		{"runtime error", "web = [1 // 0]\n", nil, []string{"inventory.star:1", "division by zero"}},
		{"load", "load(\"x.star\", \"y\")\n", nil, []string{"cannot load modules"}},
		{"bad host name", "web = [\"a b\"]\n", nil, []string{"inventory.star:1", "whitespace"}},
		{"unknown group data", "web = [\"a\"]\n", map[string]string{"wbe.star": "x = 1\n"}, []string{"group_data/wbe.star", "no group wbe", "groups: web"}},
		{"bad group data", "web = [\"a\"]\n", map[string]string{"web.star": "x = 1\ny = set([1])\n"}, []string{"group_data/web.star:2", "got set"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(p, s string) {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(filepath.Join(dir, "inventory.star"), c.inv)
			for name, src := range c.groupData {
				write(filepath.Join(dir, "group_data", name), src)
			}
			_, err := Load(t.Context(), filepath.Join(dir, "inventory.star"))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
