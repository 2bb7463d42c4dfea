package builtins

import (
	"context"

	"go.starlark.net/starlark"
)

var noopSpec = &Spec{
	Name: "noop",
	Doc: "Reports an operation that has nothing to do, without touching the host: " +
		"it shows in the output and events as ok and returns an unchanged result. " +
		"Operations written in Starlark call it when their facts say the host is already as asked.",
	Params: []Param{
		{"reason?", "str", "None", "Why nothing is done, shown in verbose output and events."},
	},
	Control: true,
	Returns: "a result with `.changed == False` and `.ok == True`",
	Example: `if "nginx" in fact("packages"):
    noop(name = "apt nginx", reason = "installed")`,
	Effects: EffectReadHost,
	Fn:      noopFn,
}

func noopFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	var reason string
	if err := s.Unpack(args, kw, &reason); err != nil {
		return nil, err
	}
	if name == "" {
		name = "noop"
	}
	ctl.Retries, ctl.Timeout = 0, 0
	return h.operation(thread, s.Name, name, ctl, func(context.Context) (outcome, error) {
		return outcome{status: StatusOK, message: reason}, nil
	})
}

var currentHostSpec = &Spec{
	Name: "current_host",
	Doc: "Returns the host the script is running on: the same value as the global `host` of a " +
		"deploy script, for module functions, which do not see that global.",
	Returns: "the host: `.name`, `.data`, `.groups`, `.connector`, `.dry`",
	Example: `def banner():
    h = current_host()
    return "%s (%s)" % (h.name, h.data.get("role", "none"))`,
	Effects: EffectPure,
	Fn: func(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		if err := s.Unpack(args, kw); err != nil {
			return nil, err
		}
		h, err := HostFrom(thread, s.Name)
		if err != nil {
			return nil, err
		}
		return h.Value(), nil
	},
}
