package builtins

import (
	"reflect"
	"testing"

	"go.starlark.net/starlark"
)

// TestControlTableCoversControl keeps controlArgs and Control in step: set
// from its row, each control argument fills a field of Control, every field
// but the secret one is filled by a row, and Wrap and probeControl carry
// what the rows say.
func TestControlTableCoversControl(t *testing.T) {
	env := starlark.NewDict(1)
	env.SetKey(starlark.String("A"), starlark.String("1"))
	sample := map[string]starlark.Value{
		"bool": starlark.True, "str": starlark.String("x"), "dict": env,
		"list of int":  starlark.NewList([]starlark.Value{starlark.MakeInt(3)}),
		"int or float": starlark.Float(1.5), "int": starlark.MakeInt(2), "int or str": starlark.String("1KiB"),
	}
	var c Control
	for _, a := range controlArgs {
		v, ok := sample[a.Type]
		if !ok {
			t.Fatalf("%s: no sample value of type %q", a.Name, a.Type)
		}
		before := c
		if err := a.bind.set(&c, v); err != nil {
			t.Fatalf("%s=%s: %v", a.Name, v, err)
		}
		if reflect.DeepEqual(before, c) {
			t.Errorf("%s=%s changed no field of Control", a.Name, v)
		}
	}
	ct := reflect.ValueOf(c)
	for i := range ct.NumField() {
		if name := ct.Type().Field(i).Name; name != "SudoPassword" && ct.Field(i).IsZero() {
			t.Errorf("Control.%s is set by no row of controlArgs", name)
		}
	}
	w := reflect.ValueOf(c.Wrap())
	for i := range w.NumField() {
		if name := w.Type().Field(i).Name; name != "SudoPrompt" && w.Field(i).IsZero() {
			t.Errorf("Wrap().%s is filled by no row of controlArgs", name)
		}
	}
	c.SudoPassword = "pw"
	p := probeControl(c)
	if !p.Sudo || p.SudoUser != "x" || p.SudoPassword != "pw" || p.SuUser != "x" || !p.Doas || p.DoasUser != "x" || p.ShellExecutable != "x" || p.MaxOutput != 1024 {
		t.Errorf("probeControl dropped a privilege, the shell or the output cap: %+v", p)
	}
	if p.Env != nil || p.Chdir != "" || p.Stdin != "" || p.SuccessExitCodes != nil || p.Timeout != 0 || p.Retries != 0 || p.RetryDelay != 0 || p.IgnoreErrors || p.GetPTY {
		t.Errorf("probeControl kept what a probe must drop: %+v", p)
	}
}

// TestControlEnvDoesNotChangeDefaults: env= from a keyword or host data adds
// to a copy of the defaults' variables, never to the map the defaults share
// with other hosts and calls.
func TestControlEnvDoesNotChangeDefaults(t *testing.T) {
	base := Control{Env: map[string]string{"A": "1"}}
	c, err := ControlFromData(base, map[string]any{"env": map[string]any{"B": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Env) != 2 || len(base.Env) != 1 {
		t.Errorf("env from data: got %v, defaults became %v", c.Env, base.Env)
	}
	env := starlark.NewDict(1)
	env.SetKey(starlark.String("C"), starlark.String("3"))
	c, _, _, err = splitControl("shell", base, []starlark.Tuple{{starlark.String("env"), env}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Env) != 2 || len(base.Env) != 1 {
		t.Errorf("env= keyword: got %v, defaults became %v", c.Env, base.Env)
	}
}
