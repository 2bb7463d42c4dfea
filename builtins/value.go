package builtins

import (
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/internal/starvalue"
)

func asString(v starlark.Value) (string, error) {
	switch v := v.(type) {
	case starlark.String:
		return string(v), nil
	case starlark.NoneType:
		return "", nil
	}
	return "", fmt.Errorf("want a string, got %s", v.Type())
}

func asBool(v starlark.Value) (bool, error) {
	if b, ok := v.(starlark.Bool); ok {
		return bool(b), nil
	}
	return false, fmt.Errorf("want True or False, got %s", v.Type())
}

func asInt(v starlark.Value) (int, error) {
	var n int
	if err := starlark.AsInt(v, &n); err != nil {
		return 0, fmt.Errorf("want an int, got %s", v.Type())
	}
	return n, nil
}

func asIntList(v starlark.Value) ([]int, error) {
	return asList(v, "int", func(x starlark.Value) (int, bool) {
		n, err := asInt(x)
		return n, err == nil
	})
}

// stringList accepts a list, a tuple or another iterable of strings.
func stringList(v starlark.Value) ([]string, error) {
	return asList(v, "strings", isString)
}

func isString(x starlark.Value) (string, bool) {
	s, ok := x.(starlark.String)
	return string(s), ok
}

// asList reads any iterable but a string (a list, a tuple, ...) whose
// elements elem converts; what names the element type in errors.
func asList[T any](v starlark.Value, what string, elem func(starlark.Value) (T, bool)) ([]T, error) {
	it, ok := v.(starlark.Iterable)
	if !ok || v.Type() == "string" {
		return nil, fmt.Errorf("want a list of %s, got %s", what, v.Type())
	}
	return elems(it, what, elem)
}

// elems converts the elements of it with elem.
func elems[T any](it starlark.Iterable, what string, elem func(starlark.Value) (T, bool)) ([]T, error) {
	var out []T
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		e, ok := elem(x)
		if !ok {
			return nil, fmt.Errorf("want a list of %s, got an element of type %s", what, x.Type())
		}
		out = append(out, e)
	}
	return out, nil
}

func asSeconds(v starlark.Value) (time.Duration, error) {
	if _, ok := v.(starlark.NoneType); ok {
		return 0, nil
	}
	f, ok := starlark.AsFloat(v)
	if !ok {
		return 0, fmt.Errorf("want seconds as an int or float, got %s", v.Type())
	}
	if f < 0 || math.IsNaN(f) || f > 365*24*3600 {
		return 0, fmt.Errorf("want between 0 and one year of seconds, got %v", f)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// asByteSize reads a positive number of bytes: an int, or a string of
// digits with an optional binary unit ("65536", "64KiB", "16M", "1GiB").
func asByteSize(v starlark.Value) (int64, error) {
	var n int64
	switch v := v.(type) {
	case starlark.Int:
		if err := starlark.AsInt(v, &n); err != nil {
			return 0, fmt.Errorf("want a number of bytes, got %s", v)
		}
	case starlark.String:
		var err error
		if n, err = parseByteSize(string(v)); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("want a number of bytes as an int or a string (\"64MiB\"), got %s", v.Type())
	}
	if n <= 0 {
		return 0, fmt.Errorf("want a positive number of bytes, got %d", n)
	}
	return n, nil
}

// parseByteSize parses digits with an optional unit: B, or K, M, G
// (also KiB, KB, k, ...), which are powers of 1024.
func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	shift := 0
	for i, unit := range []string{"K", "M", "G"} {
		for _, suffix := range []string{unit + "iB", unit + "B", unit, strings.ToLower(unit)} {
			if strings.HasSuffix(t, suffix) {
				t, shift = strings.TrimSpace(strings.TrimSuffix(t, suffix)), 10*(i+1)
				break
			}
		}
		if shift != 0 {
			break
		}
	}
	if shift == 0 {
		t = strings.TrimSpace(strings.TrimSuffix(t, "B"))
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("want a number of bytes such as 1048576, \"64KiB\" or \"16MiB\", got %q", s)
	}
	return n << shift, nil
}

func asStringMap(v starlark.Value) (map[string]string, error) {
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("want a dict of str to str, got %s", v.Type())
	}
	out := make(map[string]string, d.Len())
	for _, item := range d.Items() {
		k, ok1 := item[0].(starlark.String)
		val, ok2 := item[1].(starlark.String)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("want a dict of str to str, got an entry %s: %s", item[0].Type(), item[1].Type())
		}
		out[string(k)] = string(val)
	}
	return out, nil
}

// parseMode accepts an octal string ("0644", "644") or an int (0o644).
// None yields ok == false.
func parseMode(v starlark.Value) (fs.FileMode, bool, error) {
	switch v := v.(type) {
	case nil, starlark.NoneType:
		return 0, false, nil
	case starlark.String:
		n, err := strconv.ParseUint(string(v), 8, 32)
		if err != nil || n > 0o7777 {
			return 0, false, fmt.Errorf("mode %q is not an octal mode like \"0644\"", string(v))
		}
		return fs.FileMode(n), true, nil
	case starlark.Int:
		n, ok := v.Uint64()
		if !ok || n > 0o7777 {
			return 0, false, fmt.Errorf("mode %s is out of range (0 to 0o7777)", v)
		}
		return fs.FileMode(n), true, nil
	}
	return 0, false, fmt.Errorf("mode must be an octal string like \"0644\" or an int like 0o644, got %s", v.Type())
}

// formatMode renders permission bits as four octal digits, "0644".
func formatMode(m fs.FileMode) string { return fmt.Sprintf("%04o", uint32(m)) }

// ToStarlark converts host data (string, bool, ints, float64, []any,
// map[string]any, nil) to a frozen Starlark value; see
// starvalue.ToStarlark.
func ToStarlark(v any) (starlark.Value, error) { return starvalue.ToStarlark(v) }

// fromStarlark converts a Starlark value into plain Go values for
// text/template: strings, bools, int64, float64, []any, map[string]any.
func fromStarlark(v starlark.Value) (any, error) {
	return starvalue.FromStarlark(v, starvalue.Template)
}
