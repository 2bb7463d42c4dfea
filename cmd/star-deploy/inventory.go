package main

import (
	"bytes"
	"context"
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
			// Not json.Marshal, which writes <redacted> as \u003credacted\u003e.
			var v bytes.Buffer
			enc := json.NewEncoder(&v)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(h.Data[k]); err != nil {
				return err
			}
			fmt.Fprintf(&b, "  %s = %s\n", k, bytes.TrimSuffix(v.Bytes(), []byte("\n")))
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

// expandInventory replaces every host of inv that stands for many (a
// Docker filter, @terraform: connectors.Expander) by the hosts it stands
// for, before --limit selects and before anything connects. The connector
// data the expansion sees is the entry's with --data on top. An error
// names the entry (and its file:line).
func expandInventory(ctx context.Context, reg *connectors.Registry, inv *inventory.Inventory, data map[string]string) error {
	return inv.Expand(func(e inventory.Entry) ([]inventory.Entry, bool, error) {
		if !reg.Expands(e.Name) {
			return nil, false, nil
		}
		scheme, _ := connectors.SplitName(e.Name)
		own := map[string]string{}
		for k, v := range e.Data {
			if !strings.HasPrefix(k, scheme+"_") {
				continue
			}
			switch v := v.(type) {
			case string:
				own[k] = v
			case bool, int64, float64:
				own[k] = fmt.Sprint(v)
			default:
				return nil, true, usagef("%shost %s: data key %s: want a string, number or bool, got %T", posPrefix(e.At(k)), e.Name, k, v)
			}
		}
		for k, v := range data {
			if strings.HasPrefix(k, scheme+"_") {
				own[k] = v
			}
		}
		hosts, _, err := reg.Expand(ctx, e.Name, own)
		if err != nil {
			if ctx.Err() != nil {
				return nil, true, err
			}
			return nil, true, usagef("%s%w", posPrefix(e.Pos), err)
		}
		out := make([]inventory.Entry, len(hosts))
		for i, h := range hosts {
			out[i] = inventory.Entry{Name: h.Name, Data: h.Data, Groups: h.Groups}
		}
		return out, true, nil
	})
}

// posPrefix is "file:line: " for a position, "" for none.
func posPrefix(pos string) string {
	if pos == "" {
		return ""
	}
	return pos + ": "
}
