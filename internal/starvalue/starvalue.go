// Package starvalue is the one conversion between Starlark values and the
// plain Go values of host data: nil, string, bool, int64, float64, []any
// and map[string]any. Inventory files, host data, template variables and
// the data an isolated run sends its child all go through it.
//
// It is a leaf: it imports only go.starlark.net and the standard library,
// so that inventory can use it without builtins (internal/archtest checks
// this).
package starvalue

import (
	"fmt"
	"sort"

	"go.starlark.net/starlark"
)

// ToStarlark converts host data (string, bool, int, int64, float64,
// []string, []any, map[string]any, nil, or a starlark.Value) to a frozen
// Starlark value. Dict keys are inserted in sorted order.
func ToStarlark(v any) (starlark.Value, error) {
	var out starlark.Value
	switch v := v.(type) {
	case nil:
		out = starlark.None
	case starlark.Value:
		out = v
	case string:
		out = starlark.String(v)
	case bool:
		out = starlark.Bool(v)
	case int:
		out = starlark.MakeInt(v)
	case int64:
		out = starlark.MakeInt64(v)
	case float64:
		out = starlark.Float(v)
	case []string:
		l := make([]starlark.Value, len(v))
		for i, s := range v {
			l[i] = starlark.String(s)
		}
		out = starlark.NewList(l)
	case []any:
		l := make([]starlark.Value, len(v))
		for i, x := range v {
			sv, err := ToStarlark(x)
			if err != nil {
				return nil, err
			}
			l[i] = sv
		}
		out = starlark.NewList(l)
	case map[string]any:
		d, err := toDict(v)
		if err != nil {
			return nil, err
		}
		out = d
	default:
		return nil, fmt.Errorf("cannot use a value of Go type %T as host data", v)
	}
	out.Freeze()
	return out, nil
}

func toDict(m map[string]any) (*starlark.Dict, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := starlark.NewDict(len(m))
	for _, k := range keys {
		sv, err := ToStarlark(m[k])
		if err != nil {
			return nil, err
		}
		if err := d.SetKey(starlark.String(k), sv); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Mode says which Starlark values FromStarlark accepts.
type Mode int

const (
	// Data accepts what host data holds: None, strings, bools, ints that
	// fit in an int64, floats, lists, tuples and dicts with string keys.
	Data Mode = iota
	// Template accepts what a text/template may read: Data, and also ints
	// beyond int64 (as decimal strings), values with attributes such as
	// structs (as maps of their attributes) and any iterable (as a list).
	Template
)

// FromStarlark converts v to Go values (nil, string, bool, int64, float64,
// []any, map[string]any), accepting what mode says.
func FromStarlark(v starlark.Value, mode Mode) (any, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.String:
		return string(v), nil
	case starlark.Bool:
		return bool(v), nil
	case starlark.Int:
		if n, ok := v.Int64(); ok {
			return n, nil
		}
		if mode == Template {
			return v.String(), nil
		}
		return nil, fmt.Errorf("integer %s is too large", v)
	case starlark.Float:
		return float64(v), nil
	case *starlark.Dict:
		return fromDict(v, mode)
	}
	if mode == Data {
		switch v.(type) {
		case *starlark.List, starlark.Tuple:
			return fromIterable(v.(starlark.Iterable), mode)
		}
		return nil, fmt.Errorf("data values are None, strings, bools, numbers, lists and dicts; got %s", v.Type())
	}
	it, iterable := v.(starlark.Iterable)
	if a, ok := v.(starlark.HasAttrs); ok && !iterable {
		return fromAttrs(a, mode)
	}
	if iterable {
		return fromIterable(it, mode)
	}
	return nil, fmt.Errorf("cannot pass a value of type %s to a template", v.Type())
}

// fromDict converts a dict with string keys. In Data mode an error in a
// value names its key.
func fromDict(d *starlark.Dict, mode Mode) (map[string]any, error) {
	out := make(map[string]any, d.Len())
	for _, kv := range d.Items() {
		k, ok := kv[0].(starlark.String)
		if !ok {
			if mode == Data {
				return nil, fmt.Errorf("data keys must be strings, got %s", kv[0].Type())
			}
			return nil, fmt.Errorf("dict keys must be strings, got %s", kv[0].Type())
		}
		x, err := FromStarlark(kv[1], mode)
		if err != nil {
			if mode == Data {
				return nil, fmt.Errorf("%s: %w", string(k), err)
			}
			return nil, err
		}
		out[string(k)] = x
	}
	return out, nil
}

// fromAttrs converts a value's attributes, skipping those that fail.
func fromAttrs(v starlark.HasAttrs, mode Mode) (map[string]any, error) {
	out := map[string]any{}
	for _, name := range v.AttrNames() {
		a, err := v.Attr(name)
		if err != nil || a == nil {
			continue
		}
		x, err := FromStarlark(a, mode)
		if err != nil {
			return nil, err
		}
		out[name] = x
	}
	return out, nil
}

func fromIterable(v starlark.Iterable, mode Mode) ([]any, error) {
	out := []any{}
	iter := v.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		g, err := FromStarlark(x, mode)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}
