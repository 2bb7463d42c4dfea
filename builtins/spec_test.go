package builtins_test

import (
	"testing"

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
