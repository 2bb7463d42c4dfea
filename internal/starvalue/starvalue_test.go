package starvalue

import (
	"reflect"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// eval evaluates a Starlark expression, with struct() predeclared.
func eval(t *testing.T, expr string) starlark.Value {
	t.Helper()
	v, err := starlark.EvalOptions(&syntax.FileOptions{Set: true}, &starlark.Thread{}, "expr", expr,
		starlark.StringDict{"struct": starlark.NewBuiltin("struct", starlarkstruct.Make)})
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func TestToStarlark(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{nil, "None"},
		{"s", `"s"`},
		{true, "True"},
		{7, "7"},
		{int64(1) << 40, "1099511627776"},
		{1.5, "1.5"},
		{[]string{"a", "b"}, `["a", "b"]`},
		{[]any{"a", int64(1), nil}, `["a", 1, None]`},
		{map[string]any{"b": []any{}, "a": map[string]any{"x": false}}, `{"a": {"x": False}, "b": []}`},
		{starlark.String("already"), `"already"`},
	} {
		v, err := ToStarlark(c.in)
		if err != nil {
			t.Fatalf("ToStarlark(%#v): %v", c.in, err)
		}
		if v.String() != c.want {
			t.Errorf("ToStarlark(%#v) = %s, want %s", c.in, v, c.want)
		}
		if l, ok := v.(*starlark.List); ok {
			if err := l.Append(starlark.None); err == nil {
				t.Errorf("ToStarlark(%#v) is not frozen", c.in)
			}
		}
	}
	if _, err := ToStarlark(map[string]any{"k": struct{}{}}); err == nil || !strings.Contains(err.Error(), "cannot use a value of Go type struct {} as host data") {
		t.Errorf("ToStarlark(struct{}): err %v", err)
	}
}

func TestFromStarlark(t *testing.T) {
	for _, c := range []struct {
		expr     string
		data     any    // want in Data mode
		dataErr  string // or this error
		template any    // want in Template mode
		tmplErr  string
	}{
		{expr: "None", data: nil, template: nil},
		{expr: `"s"`, data: "s", template: "s"},
		{expr: "True", data: true, template: true},
		{expr: "-3", data: int64(-3), template: int64(-3)},
		{expr: "1 << 70", dataErr: "integer 1180591620717411303424 is too large", template: "1180591620717411303424"},
		{expr: "0.25", data: 0.25, template: 0.25},
		{expr: "[]", data: []any{}, template: []any{}},
		{expr: `[1, ("a", None)]`, data: []any{int64(1), []any{"a", nil}}, template: []any{int64(1), []any{"a", nil}}},
		{expr: `{"a": {"b": [True]}}`, data: map[string]any{"a": map[string]any{"b": []any{true}}}, template: map[string]any{"a": map[string]any{"b": []any{true}}}},
		{expr: `{1: "x"}`, dataErr: "data keys must be strings, got int", tmplErr: "dict keys must be strings, got int"},
		{expr: `{"k": 1 << 70}`, dataErr: "k: integer 1180591620717411303424 is too large", template: map[string]any{"k": "1180591620717411303424"}},
		{expr: `{"k": {2: 1}}`, dataErr: "k: data keys must be strings, got int", tmplErr: "dict keys must be strings, got int"},
		{expr: `struct(a = 1, b = "x")`, dataErr: "data values are None, strings, bools, numbers, lists and dicts; got struct", template: map[string]any{"a": int64(1), "b": "x"}},
		{expr: `set([1])`, dataErr: "got set", template: []any{int64(1)}},
		{expr: `len`, dataErr: "got builtin_function_or_method", tmplErr: "cannot pass a value of type builtin_function_or_method to a template"},
	} {
		v := eval(t, c.expr)
		for _, m := range []struct {
			mode       Mode
			want       any
			wantErr    string
			modeString string
		}{{Data, c.data, c.dataErr, "Data"}, {Template, c.template, c.tmplErr, "Template"}} {
			got, err := FromStarlark(v, m.mode)
			switch {
			case m.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), m.wantErr) {
					t.Errorf("FromStarlark(%s, %s): %#v, err %v; want an error with %q", c.expr, m.modeString, got, err, m.wantErr)
				}
			case err != nil:
				t.Errorf("FromStarlark(%s, %s): %v", c.expr, m.modeString, err)
			case !reflect.DeepEqual(got, m.want):
				t.Errorf("FromStarlark(%s, %s) = %#v, want %#v", c.expr, m.modeString, got, m.want)
			}
		}
	}
}

// TestRoundTrip converts host data to Starlark and back.
func TestRoundTrip(t *testing.T) {
	in := map[string]any{"s": "x", "n": int64(3), "f": 0.5, "b": false, "none": nil,
		"list": []any{"a", []any{}}, "map": map[string]any{"k": int64(-1)}}
	v, err := ToStarlark(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := FromStarlark(v, Data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip: got %#v, want %#v", out, in)
	}
}
