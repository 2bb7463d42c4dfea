package builtins

import (
	"context"
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

var shellSpec = &Spec{
	Name: "shell",
	Doc: "Runs a shell command (or a list of commands, in order) on the host. " +
		"It counts as changed whenever it runs; `creates=` and `unless=` make it idempotent. " +
		"A command whose exit status is not in `success_exit_codes` fails the operation.",
	Params: []Param{
		{"cmd", "str or list of str", "", "The command, run with `sh -c`; a list runs each command in turn and stops at the first failure."},
		{"creates?", "str", "None", "Skip the command when this path exists on the host."},
		{"unless?", "str", "None", "Skip the command when this command exits 0 on the host."},
	},
	Control: true,
	Returns: "a result with `.changed`, `.ok`, `.skipped`, `.stdout`, `.stderr` and `.exit_code` (of the last command run), " +
		"and `.stdout_dropped`, `.stderr_dropped` (bytes not kept, see `max_output`) and `.max_output` (the cap that applied)",
	Example: `r = shell("useradd -m app", unless="id app")
if r.changed:
    print("created app")`,
	Effects: EffectReadHost | EffectWriteHost,
	Fn:      shellFn,
}

func shellFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	var cmdV starlark.Value
	var creates, unless string
	if err := s.Unpack(args, kw, &cmdV, &creates, &unless); err != nil {
		return nil, err
	}
	cmds, err := commandList(cmdV)
	if err != nil {
		return nil, fmt.Errorf("shell: cmd: %w", err)
	}
	if name == "" {
		name = short(strings.Join(cmds, "; "))
	}
	return h.operation(thread, s.Name, name, ctl, func(ctx context.Context) (outcome, error) {
		exists, native := false, false
		if creates != "" {
			exists, native = h.nativeExists(ctx, ctl, creates)
		}
		if native && exists {
			return outcome{status: StatusSkipped, message: creates + " exists"}, nil
		}
		if creates != "" && !native {
			res, err := h.run(ctx, "test -e "+connectors.Quote(creates), ctl, "")
			if err != nil {
				return outcome{}, fmt.Errorf("shell: creates=: %w", err)
			}
			if res.ExitCode == 0 {
				return outcome{status: StatusSkipped, message: creates + " exists"}, nil
			}
		}
		if unless != "" {
			res, err := h.run(ctx, unless, ctl, "")
			if err != nil {
				return outcome{}, fmt.Errorf("shell: unless=: %w", err)
			}
			if res.ExitCode == 0 {
				return outcome{status: StatusSkipped, message: "unless= command succeeded"}, nil
			}
		}
		if h.Dry {
			return outcome{status: StatusChanged, message: "would run: " + strings.Join(cmds, "; "), shell: true}, nil
		}
		defer h.forget("") // a command may change anything a fact describes
		out := outcome{status: StatusChanged, shell: true}
		for _, c := range cmds {
			res, err := h.check(ctx, c, ctl, ctl.Stdin)
			out.add(res)
			if err != nil {
				return out, err
			}
		}
		return out, nil
	})
}

// commandList accepts a string or a list/tuple of strings.
func commandList(v starlark.Value) ([]string, error) {
	if s, ok := v.(starlark.String); ok {
		if strings.TrimSpace(string(s)) == "" {
			return nil, fmt.Errorf("the command is empty")
		}
		return []string{string(s)}, nil
	}
	var seq starlark.Iterable
	switch v := v.(type) {
	case *starlark.List:
		seq = v
	case starlark.Tuple:
		seq = v
	default:
		return nil, fmt.Errorf("want a string or a list of strings, got %s", v.Type())
	}
	out, err := elems(seq, "strings", isString)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the list of commands is empty")
	}
	return out, nil
}
