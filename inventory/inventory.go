package inventory

import (
	"fmt"
	"strings"
	"unicode"
)

// Entry is one host of an inventory.
type Entry struct {
	// Name is the host name as the user wrote it ("@local", "@ssh/db1",
	// "db1"), without surrounding whitespace.
	Name string
	// Groups are the inventory groups the host belongs to, in order. Hosts
	// named on the command line belong to none.
	Groups []string
	// Data is the host data: string, bool, int64, float64, []any or
	// map[string]any values. It is never nil.
	Data map[string]any
	// Pos is where the host is named ("inventory.star:3"); "" on the
	// command line.
	Pos string
	// DataPos says where each key of Data was set ("group_data/web.star:2").
	DataPos map[string]string
}

// At returns where key of e's data was set, or where e is named, or "" on
// the command line, for error messages.
func (e Entry) At(key string) string {
	if p := e.DataPos[key]; p != "" {
		return p
	}
	return e.Pos
}

// Parse parses an inventory spec: one host name or a comma-separated list
// of them, each trimmed of surrounding whitespace. An empty item, a
// malformed name or a host named twice is an error that names the item.
// Parse does no I/O.
func Parse(spec string) ([]Entry, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("empty inventory: name at least one host, e.g. @local")
	}
	items := strings.Split(spec, ",")
	entries := make([]Entry, 0, len(items))
	seen := map[string]string{} // canonical name -> name as written
	for i, item := range items {
		name := strings.TrimSpace(item)
		if name == "" {
			return nil, fmt.Errorf("inventory %q: item %d is empty", spec, i+1)
		}
		if strings.HasSuffix(name, ".star") {
			return nil, fmt.Errorf("inventory %q: an inventory file must be the whole inventory, not an item of a list", name)
		}
		key, err := canonical(name)
		if err != nil {
			return nil, fmt.Errorf("inventory item %q: %w", name, err)
		}
		if prev, dup := seen[key]; dup {
			if prev == name {
				return nil, fmt.Errorf("inventory item %q: host named twice", name)
			}
			return nil, fmt.Errorf("inventory item %q: host named twice (same as %q)", name, prev)
		}
		seen[key] = name
		entries = append(entries, Entry{Name: name, Data: map[string]any{}})
	}
	return entries, nil
}

// canonical checks the syntax of a host name and returns the form used to
// detect duplicates: a bare name means SSH, so "db1" and "@ssh/db1" are the
// same host.
func canonical(name string) (string, error) {
	if i := strings.IndexFunc(name, unicode.IsSpace); i >= 0 {
		return "", fmt.Errorf("a host name cannot contain whitespace")
	}
	if !strings.HasPrefix(name, "@") {
		if strings.HasPrefix(name, "/") {
			return "", fmt.Errorf("a host name cannot start with /")
		}
		return "@ssh/" + name, nil
	}
	scheme, addr, hasAddr := strings.Cut(name[1:], "/")
	if scheme == "" {
		return "", fmt.Errorf("missing connector after @; write @local, @ssh/HOST or @docker/NAME")
	}
	for _, r := range scheme {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "", fmt.Errorf("connector name %q may contain only lower-case letters, digits, _ and -", scheme)
		}
	}
	if hasAddr && addr == "" {
		return "", fmt.Errorf("missing address after @%s/", scheme)
	}
	return name, nil
}
