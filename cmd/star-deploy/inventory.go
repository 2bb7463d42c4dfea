package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/inventory"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// redacted replaces the value of a secret data key in printed inventories.
const redacted = "<redacted>"

// printInventory prints the hosts that would run, their groups and merged
// data (secrets redacted: reg.IsSecretKey), and the groups, without
// connecting to anything.
func printInventory(w io.Writer, reg *connectors.Registry, inv *inventory.Inventory, hosts []sdrt.Host, asJSON bool) error {
	type hostOut struct {
		Name   string         `json:"name"`
		Groups []string       `json:"groups"`
		Data   map[string]any `json:"data"`
	}
	out := struct {
		Hosts  []hostOut           `json:"hosts"`
		Groups map[string][]string `json:"groups"`
	}{Groups: map[string][]string{}}
	running := map[string]bool{}
	for _, h := range hosts {
		data := map[string]any{}
		for k, v := range h.Data {
			if reg.IsSecretKey(k) {
				v = redacted
			}
			data[k] = v
		}
		groups := h.Groups
		if groups == nil {
			groups = []string{}
		}
		out.Hosts = append(out.Hosts, hostOut{h.Name, groups, data})
		running[h.Name] = true
	}
	for _, g := range inv.Groups {
		members := []string{}
		for _, name := range g.Hosts {
			if running[name] {
				members = append(members, name)
			}
		}
		out.Groups[g.Name] = members
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	var b strings.Builder
	for _, h := range out.Hosts {
		fmt.Fprintf(&b, "%s\n", h.Name)
		if len(h.Groups) > 0 {
			fmt.Fprintf(&b, "  groups: %s\n", strings.Join(h.Groups, ", "))
		}
		for _, k := range slices.Sorted(maps.Keys(h.Data)) {
			v, err := json.Marshal(h.Data[k])
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "  %s = %s\n", k, v)
		}
	}
	if len(inv.Groups) > 0 {
		b.WriteString("\ngroups:\n")
		for _, g := range inv.Groups {
			fmt.Fprintf(&b, "  %s: %s\n", g.Name, strings.Join(out.Groups[g.Name], ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
