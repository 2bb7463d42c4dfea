package inventory

import (
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	inv, err := Load(t.Context(), "testdata/star/inventory.star")
	if err != nil {
		t.Fatal(err)
	}
	sel := func(limit, exclude []string) string {
		hs, err := inv.Select(limit, exclude)
		if err != nil {
			return "error: " + err.Error()
		}
		var names []string
		for _, h := range hs {
			names = append(names, h.Name)
		}
		return strings.Join(names, ",")
	}
	for _, c := range []struct {
		limit, exclude []string
		want           string
	}{
		{nil, nil, "web1,web2,@docker/app,@ssh/db1"},
		{[]string{"canary"}, nil, "web2,@ssh/db1"},
		{[]string{"web"}, []string{"canary"}, "web1,@docker/app"},
		{[]string{"web*"}, nil, "web1,web2"},
		{[]string{"db1"}, nil, "@ssh/db1"}, // a bare name means @ssh/
		{[]string{"@docker/*"}, nil, "@docker/app"},
		{nil, []string{"web", "db"}, "error: --limit and --exclude leave no host to run on"},
		{[]string{"wbe"}, nil, `error: --limit "wbe": no group of that name and no host matches it (groups: web, db, canary)`},
		{nil, []string{"[x"}, `error: --exclude "[x": syntax error in pattern`},
	} {
		if got := sel(c.limit, c.exclude); got != c.want {
			t.Errorf("Select(%q, %q) = %s, want %s", c.limit, c.exclude, got, c.want)
		}
	}
}
