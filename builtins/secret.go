package builtins

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

var secretSpec = &Spec{
	Name: "secret",
	Doc: "Returns the value of a secret host data key (`db_password`, any key whose name holds " +
		"`password` or `passphrase`, or a connector's secret field), which `host.data` leaves out " +
		"so that printing it shows no secret. The value still never reaches the host's command " +
		"lines when passed to an operation that takes a secret (`mysql.user(password=...)`). " +
		"Wherever else it goes (a `shell()` command line, its output, a file's content, `print()`, " +
		"`fail()`), star-deploy shows it as `[secret]`: in operation names, output, `--diff`, " +
		"`-vv` commands, events and errors. A key that is not secret is an " +
		"error (read it from `host.data`), and so is a missing key without a default.",
	Params: []Param{
		{"key", "str", "", "The host data key, e.g. `db_password`."},
		{"default?", "any", "None", "What to return when the host has no such data; left out, a missing key is an error that says how to pass it."},
	},
	Returns: "the value, as the inventory or `--data` set it (a string from `--data`)",
	Example: `mysql.user("app", password = secret("db_password"))`,
	Effects: EffectPure,
	Fn:      secretFn,
}

func secretFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var key string
	var def starlark.Value
	if err := s.Unpack(args, kw, &key, &def); err != nil {
		return nil, err
	}
	h, err := HostFrom(thread, s.Name)
	if err != nil {
		return nil, err
	}
	isSecret := h.Secret
	if isSecret == nil {
		isSecret = connectors.IsSecretKey
	}
	if !isSecret(key) {
		return nil, fmt.Errorf("%s: %q is not a secret data key; read it with host.data[%q] (secret keys have password or passphrase in their name)", s.Name, key, key)
	}
	v, ok := h.Data[key]
	if !ok {
		if hasDefault(args, kw) {
			if def == nil {
				def = starlark.None
			}
			return def, nil
		}
		return nil, fmt.Errorf("%s: host %s has no data %s: pass it with --data %s=... or set it in the inventory's host or group data", s.Name, h.Name, key, key)
	}
	return ToStarlark(v)
}

// hasDefault reports whether the call passed default, None included.
func hasDefault(args starlark.Tuple, kw []starlark.Tuple) bool {
	if len(args) > 1 {
		return true
	}
	for _, p := range kw {
		if k, ok := p[0].(starlark.String); ok && string(k) == "default" {
			return true
		}
	}
	return false
}
