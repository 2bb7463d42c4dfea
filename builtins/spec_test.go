package builtins_test

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/builtins"
)

// TestDocs keeps the Starlark surface documented: every builtin, parameter,
// control argument and fact has docs, and every Spec lists its effects
// consistently with what it does.
func TestDocs(t *testing.T) {
	for _, s := range builtins.All() {
		if s.Doc == "" || s.Returns == "" || s.Example == "" {
			t.Errorf("%s: Doc, Returns and Example must all be set", s.Name)
		}
		for _, p := range s.Params {
			if p.Doc == "" || p.Type == "" {
				t.Errorf("%s: parameter %s lacks Doc or Type", s.Name, p.Name)
			}
		}
		if s.Control && s.Effects&builtins.EffectReadHost == 0 {
			t.Errorf("%s takes control arguments but does not declare EffectReadHost", s.Name)
		}
	}
	for _, p := range builtins.ControlParams() {
		if p.Doc == "" {
			t.Errorf("control argument %s lacks Doc", p.Name)
		}
	}
	for _, f := range builtins.FactDocs() {
		if f.Doc == "" || f.Example == "" {
			t.Errorf("fact %q lacks Doc or Example", f.Name)
		}
	}
}

func TestPredeclaredByEffect(t *testing.T) {
	pure := builtins.Predeclared(builtins.EffectPure)
	if _, ok := pure["quote"]; !ok {
		t.Error("quote is pure but missing from the pure set")
	}
	for _, name := range []string{"shell", "put", "get", "template", "fact"} {
		if _, ok := pure[name]; ok {
			t.Errorf("%s is in the pure set", name)
		}
	}
	readOnly := builtins.Predeclared(builtins.EffectReadHost)
	if _, ok := readOnly["fact"]; !ok {
		t.Error("fact missing from the read-host set")
	}
	if _, ok := readOnly["shell"]; ok {
		t.Error("shell, which writes, is in the read-host set")
	}
}

// TestUnpackChecksPointerTypes: a pointer whose type cannot hold the
// declared type of its Param is a programmer error that Unpack reports
// at once, not only a wrong number of pointers.
func TestUnpackChecksPointerTypes(t *testing.T) {
	s := &builtins.Spec{Name: "f", Params: []builtins.Param{
		{Name: "n", Type: "int"},
		{Name: "text?", Type: "str"},
	}}
	args := starlark.Tuple{starlark.MakeInt(3)}
	var n int
	var text string
	if err := s.Unpack(args, nil, &n, &text); err != nil || n != 3 {
		t.Fatalf("matching pointers: n = %d, err = %v", n, err)
	}
	var v starlark.Value
	if err := s.Unpack(args, nil, &v, &text); err != nil {
		t.Fatalf("a *starlark.Value takes any declared type: %v", err)
	}
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, `internal error: f: parameter n is declared "int" but unpacked into a *string`) {
			t.Errorf("panic = %q, want one naming the parameter, its type and the pointer", msg)
		}
	}()
	var wrong string
	s.Unpack(args, nil, &wrong, &text)
	t.Error("Unpack took a *string for an int parameter")
}
