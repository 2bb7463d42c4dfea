package jsondata

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

func decode(t *testing.T, src string) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(src)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNumbers(t *testing.T) {
	v := decode(t, `{"n": 3, "f": 1.5, "big": 1e30, "l": [1, {"m": 2}], "s": "4"}`)
	want := map[string]any{"n": int64(3), "f": 1.5, "big": 1e30, "l": []any{int64(1), map[string]any{"m": int64(2)}}, "s": "4"}
	got, err := Numbers(v)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Numbers = %#v, %v; want %#v", got, err, want)
	}
}

func TestNumbersOutOfRange(t *testing.T) {
	got, err := Numbers(decode(t, `[1e999, 2]`))
	if err == nil || err.Error() != "number 1e999 is out of range" {
		t.Errorf("error = %v, want number 1e999 is out of range", err)
	}
	l := got.([]any)
	if !math.IsInf(l[0].(float64), 1) || l[1] != int64(2) {
		t.Errorf("Numbers = %#v, want [+Inf 2]", got)
	}
}

func TestKind(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{map[string]any{}, "an object"}, {[]any{}, "a list"}, {"x", "a string"},
		{json.Number("1"), "a number"}, {int64(1), "a number"}, {1.5, "a number"},
		{true, "a bool"}, {nil, "null"}, {int32(1), "int32"},
	} {
		if got := Kind(c.v); got != c.want {
			t.Errorf("Kind(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}
