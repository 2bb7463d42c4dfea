package inventory

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Expand replaces each host that stands for many (a Docker filter, a
// Terraform output: see connectors.Expander) by the hosts it stands for.
// fn is asked about every host in order; when ok is true the host is
// replaced by the entries it returns, possibly none, of which only Name,
// Data and Groups are read. Each new host takes the data of the entry
// it comes from laid over its own (the inventory wins, as in pyinfra), the
// entry's groups followed by its own, and the entry's positions. Groups
// new to the inventory are added at the end, in order of appearance, and
// every group's Hosts is recomputed.
//
// A host that two entries produce (a container matched by two filters)
// is kept once, where it first appears, in the groups of both; their
// data must agree. An invalid name, or data that disagrees, is an error
// naming both entries. A name may expand to no host, but an inventory
// left with none is an error naming the names. Expand does no I/O of its
// own.
func (inv *Inventory) Expand(fn func(e Entry) (hosts []Entry, ok bool, err error)) error {
	var out []Entry
	byKey := map[string]int{} // canonical name -> index in out
	from := map[string]string{}
	changed := false
	var empty []string // names that expanded to no host
	for _, e := range inv.Hosts {
		hosts, ok, err := fn(e)
		if err != nil {
			return err
		}
		if !ok {
			hosts = []Entry{e}
		} else {
			changed = true
			if len(hosts) == 0 {
				empty = append(empty, e.Name)
			}
			for i, h := range hosts {
				hosts[i] = expanded(e, h)
			}
		}
		for _, h := range hosts {
			key, err := canonical(h.Name)
			if err != nil {
				return fmt.Errorf("%s%s: expanded to host %q: %w", posPrefix(e.Pos), e.Name, h.Name, err)
			}
			i, dup := byKey[key]
			if !dup {
				byKey[key] = len(out)
				from[key] = e.Name
				out = append(out, h)
				continue
			}
			if err := merge(&out[i], h); err != nil {
				return fmt.Errorf("%shost %s comes from %s and from %s: %w", posPrefix(e.Pos), h.Name, from[key], e.Name, err)
			}
		}
	}
	if !changed {
		return nil
	}
	if len(out) == 0 {
		return fmt.Errorf("no host to run on: %s matched none", strings.Join(empty, " and "))
	}
	inv.Hosts = out
	inv.regroup()
	return nil
}

// expanded is host h of entry e: e's data over h's, e's groups then h's.
func expanded(e, h Entry) Entry {
	data := maps.Clone(h.Data)
	if data == nil {
		data = map[string]any{}
	}
	maps.Copy(data, e.Data)
	groups := slices.Clone(e.Groups)
	for _, g := range h.Groups {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return Entry{Name: h.Name, Groups: groups, Data: data, Pos: e.Pos, DataPos: e.DataPos}
}

// merge adds the groups and data of h, the same host named again, to e.
func merge(e *Entry, h Entry) error {
	for _, k := range slices.Sorted(maps.Keys(h.Data)) {
		if v, ok := e.Data[k]; ok && !reflect.DeepEqual(v, h.Data[k]) {
			return fmt.Errorf("their values of %s differ: give the host its data in one place", k)
		}
	}
	maps.Copy(e.Data, h.Data)
	for _, g := range h.Groups {
		if !slices.Contains(e.Groups, g) {
			e.Groups = append(e.Groups, g)
		}
	}
	return nil
}

// regroup adds the groups that hosts name but inv lacks and recomputes
// each group's hosts from the hosts' groups, in host order.
func (inv *Inventory) regroup() {
	known := map[string]bool{}
	for _, g := range inv.Groups {
		known[g.Name] = true
	}
	for _, e := range inv.Hosts {
		for _, g := range e.Groups {
			if !known[g] {
				known[g] = true
				inv.Groups = append(inv.Groups, Group{Name: g, Pos: e.Pos})
			}
		}
	}
	for i := range inv.Groups {
		var hosts []string
		for _, e := range inv.Hosts {
			if slices.Contains(e.Groups, inv.Groups[i].Name) {
				hosts = append(hosts, e.Name)
			}
		}
		inv.Groups[i].Hosts = hosts
	}
}

func posPrefix(pos string) string {
	if pos == "" {
		return ""
	}
	return strings.TrimSuffix(pos, ": ") + ": "
}
