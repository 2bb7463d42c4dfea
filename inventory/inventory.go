package inventory

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// Inventory is a parsed inventory: its hosts, in the order they first
// appear, and its groups.
type Inventory struct {
	// File is the inventory file, or "" for hosts named on the command line.
	File   string
	Hosts  []Entry
	Groups []Group
}

// Group is one group of an inventory.
type Group struct {
	Name  string
	Hosts []string // host names, in order
	Pos   string   // where the group is defined, "file:line"
}

// Load reads the inventory that spec names: an inventory.star file (any
// name ending in .star), an Ansible dynamic inventory script (an
// executable file: see isScript and LoadAnsibleScript; it runs until ctx
// ends), an Ansible inventory (a file ending in .ini, .yml or .yaml, or
// any other existing file; see LoadAnsible), or else a host name or
// comma-separated list of them (see Parse).
func Load(ctx context.Context, spec string) (*Inventory, error) {
	switch {
	case strings.HasSuffix(spec, ".star"):
		return LoadStar(spec)
	case isScript(spec):
		return LoadAnsibleScript(ctx, spec)
	case isAnsibleName(spec):
		return LoadAnsible(spec)
	}
	entries, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	return &Inventory{Hosts: entries}, nil
}

// isAnsibleName reports whether spec names an Ansible inventory file.
func isAnsibleName(spec string) bool {
	switch strings.ToLower(filepath.Ext(spec)) {
	case ".ini", ".yml", ".yaml", ".cfg":
		return true
	}
	if strings.ContainsAny(spec, ",@") {
		return false
	}
	fi, err := os.Stat(spec)
	return err == nil && fi.Mode().IsRegular()
}

// unwrapPathError replaces the path in a *fs.PathError with display.
func unwrapPathError(err error, display string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", display, pe.Err)
	}
	return err
}
