// Package jsondata holds what the readers of host data in JSON share: the
// Terraform connector, inventory scripts and the isolated run's child all
// decode with json.Decoder.UseNumber and turn the numbers into the int64 and
// float64 that host data holds, and they name what they got in their errors
// the same way.
//
// It is a leaf that imports only the standard library, so that connectors
// (which never import Starlark) and inventory can both use it
// (internal/archtest checks this).
package jsondata

import (
	"encoding/json"
	"fmt"
)

// Numbers turns the json.Numbers in v, decoded with json.Decoder.UseNumber,
// into int64 when integral and in range, else float64. Maps and slices are
// changed in place. The error names the first number out of the range of a
// float64; all of v is converted even then, such a number to ±Inf.
func Numbers(v any) (any, error) {
	var first error
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case json.Number:
			if n, err := v.Int64(); err == nil {
				return n
			}
			f, err := v.Float64()
			if err != nil && first == nil {
				first = fmt.Errorf("number %s is out of range", v)
			}
			return f
		case map[string]any:
			for k, x := range v {
				v[k] = walk(x)
			}
		case []any:
			for i, x := range v {
				v[i] = walk(x)
			}
		}
		return v
	}
	v = walk(v)
	return v, first
}

// Kind names the kind of a decoded JSON value for an error message ("an
// object", "a list", "a number", ...); numbers count whether or not Numbers
// has converted them.
func Kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number, int64, float64:
		return "a number"
	case bool:
		return "a bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
