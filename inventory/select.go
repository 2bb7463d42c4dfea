package inventory

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Select returns the hosts of inv that limit selects (all of them when
// limit is empty) minus those exclude selects. Each pattern is a group name
// or a glob (path.Match syntax) of host names; a pattern that is neither a
// group nor matches any host is an error, so that a typo in --limit never
// deploys to nothing (or to everything) silently.
func (inv *Inventory) Select(limit, exclude []string) ([]Entry, error) {
	pick := func(flag string, patterns []string) (map[int]bool, error) {
		set := map[int]bool{}
		for _, p := range patterns {
			p = strings.TrimSpace(p)
			if p == "" {
				return nil, fmt.Errorf("--%s: empty pattern", flag)
			}
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("--%s %q: %w", flag, p, err)
			}
			n := 0
			for i, e := range inv.Hosts {
				if inv.matches(e, p) {
					set[i] = true
					n++
				}
			}
			if n == 0 && !inv.hasGroup(p) {
				return nil, fmt.Errorf("--%s %q: no group of that name and no host matches it (groups: %s)", flag, p, strings.Join(inv.groupNames(), ", "))
			}
		}
		return set, nil
	}
	in, err := pick("limit", limit)
	if err != nil {
		return nil, err
	}
	out, err := pick("exclude", exclude)
	if err != nil {
		return nil, err
	}
	var hosts []Entry
	for i, e := range inv.Hosts {
		if (len(limit) == 0 || in[i]) && !out[i] {
			hosts = append(hosts, e)
		}
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("--limit and --exclude leave no host to run on")
	}
	return hosts, nil
}

// matches reports whether pattern (a group name or a host glob) selects e.
func (inv *Inventory) matches(e Entry, pattern string) bool {
	if slices.Contains(e.Groups, pattern) {
		return true
	}
	for _, name := range []string{e.Name, strings.TrimPrefix(e.Name, "@ssh/")} {
		if ok, _ := path.Match(pattern, name); ok {
			return true
		}
	}
	return false
}

func (inv *Inventory) hasGroup(name string) bool {
	for _, g := range inv.Groups {
		if g.Name == name {
			return true
		}
	}
	return false
}

func (inv *Inventory) groupNames() []string {
	if len(inv.Groups) == 0 {
		return []string{"none"}
	}
	var names []string
	for _, g := range inv.Groups {
		names = append(names, g.Name)
	}
	return names
}
