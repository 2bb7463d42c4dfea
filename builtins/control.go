package builtins

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// Control holds the control arguments every operation accepts. Defaults
// come from CLI flags and host data; a keyword on the call wins.
type Control struct {
	Sudo             bool
	SudoUser         string
	SudoPassword     string // secret: from data sudo_password or --sudo-password, never a keyword
	SuUser           string
	Doas             bool
	DoasUser         string
	Env              map[string]string
	Chdir            string
	ShellExecutable  string
	SuccessExitCodes []int // default [0]
	Timeout          time.Duration
	Stdin            string
	Retries          int
	RetryDelay       time.Duration
	IgnoreErrors     bool
	GetPTY           bool
	MaxOutput        int64 // bytes of each stream kept; 0 means connectors.DefaultMaxOutput
}

// ControlParams documents the control arguments, in the order the docs
// list them. Every operation accepts them as keywords, plus name=.
var ControlParams = []Param{
	{"name", "str", "a summary of the call", "Name shown in output and events."},
	{"sudo", "bool", "False", "Run with `sudo -H -n` (as root, or as sudo_user)."},
	{"sudo_user", "str", "None", "User to become with sudo."},
	{"su_user", "str", "None", "User to become with `su USER -c`."},
	{"doas", "bool", "False", "Run with `doas -n`."},
	{"doas_user", "str", "None", "User to become with doas."},
	{"env", "dict", "{}", "Environment variables exported for the command."},
	{"chdir", "str", "None", "Directory to run the command in."},
	{"shell_executable", "str", "sh", "Shell that runs the command (`bash`, ...)."},
	{"success_exit_codes", "list of int", "[0]", "Exit statuses that count as success."},
	{"timeout", "int or float", "None", "Seconds before the operation is stopped and fails; its command is killed."},
	{"stdin", "str", "None", "Text passed on standard input."},
	{"retries", "int", "0", "How many times to retry a failed operation."},
	{"retry_delay", "int or float", "0", "Seconds between retries."},
	{"ignore_errors", "bool", "False", "A failure returns a result with ok=False instead of stopping the host."},
	{"get_pty", "bool", "False", "Request a pseudo-terminal, where the connector supports it."},
	{"max_output", "int or str", `"16MiB"`, "Bytes of standard output and of standard error each that an operation keeps (`1048576`, `\"64MiB\"`, units are powers of 1024). " +
		"Beyond it the first and the last half are kept and the bytes between them dropped: the result's `.stdout_dropped` and `.stderr_dropped` count them. " +
		"A fact whose output was cut fails; output streamed elsewhere (`get`) is not capped."},
}

// Wrap returns the command wrapping of c.
func (c Control) Wrap() connectors.Wrap {
	return connectors.Wrap{
		Sudo: c.Sudo, SudoUser: c.SudoUser, SuUser: c.SuUser,
		Doas: c.Doas, DoasUser: c.DoasUser,
		Env: c.Env, Chdir: c.Chdir, ShellExecutable: c.ShellExecutable,
	}
}

// privileged reports whether commands run as another user.
func (c Control) privileged() bool { return c.Sudo || c.Doas || c.SuUser != "" }

func (c Control) success(code int) bool {
	if len(c.SuccessExitCodes) == 0 {
		return code == 0
	}
	return slices.Contains(c.SuccessExitCodes, code)
}

// SudoPasswordKey is the host data key of the sudo password (a secret).
const SudoPasswordKey = "sudo_password"

// IsControlKey reports whether key names a control argument (and so, in
// host data, a control default).
func IsControlKey(key string) bool {
	for _, p := range ControlParams {
		if p.Name == key && key != "name" {
			return true
		}
	}
	return false
}

// begin is how an operation's builtin starts: it finds the host bound to
// thread and takes the control keywords (and name=) out of kw.
func begin(thread *starlark.Thread, s *Spec, kw []starlark.Tuple) (*Host, Control, string, []starlark.Tuple, error) {
	h, err := HostFrom(thread, s.Name)
	if err != nil {
		return nil, Control{}, "", nil, err
	}
	ctl, name, kw, err := splitControl(s.Name, h.Defaults, kw)
	return h, ctl, name, kw, err
}

// splitControl takes the control keywords (and name=) out of kw, applies
// them on top of base, and returns the remaining keywords.
func splitControl(fn string, base Control, kw []starlark.Tuple) (Control, string, []starlark.Tuple, error) {
	c := base
	if c.Env != nil {
		c.Env = maps.Clone(c.Env)
	}
	var name string
	var rest []starlark.Tuple
	for _, pair := range kw {
		key := string(pair[0].(starlark.String))
		v := pair[1]
		var err error
		switch key {
		case "name":
			name, err = asString(v)
		default:
			if !IsControlKey(key) {
				rest = append(rest, pair)
				continue
			}
			err = c.set(key, v)
		}
		if err != nil {
			return c, "", nil, fmt.Errorf("%s: %s: %w", fn, key, err)
		}
	}
	return c, name, rest, nil
}

// set assigns one control argument from a Starlark value.
func (c *Control) set(key string, v starlark.Value) error {
	var err error
	switch key {
	case "sudo":
		c.Sudo, err = asBool(v)
	case "sudo_user":
		c.SudoUser, err = asString(v)
		if c.SudoUser != "" {
			c.Sudo = true
		}
	case "su_user":
		c.SuUser, err = asString(v)
	case "doas":
		c.Doas, err = asBool(v)
	case "doas_user":
		c.DoasUser, err = asString(v)
		if c.DoasUser != "" {
			c.Doas = true
		}
	case "env":
		var m map[string]string
		m, err = asStringMap(v)
		if err == nil {
			if c.Env == nil {
				c.Env = map[string]string{}
			}
			maps.Copy(c.Env, m)
		}
	case "chdir":
		c.Chdir, err = asString(v)
	case "shell_executable":
		c.ShellExecutable, err = asString(v)
	case "success_exit_codes":
		c.SuccessExitCodes, err = asIntList(v)
	case "timeout":
		c.Timeout, err = asSeconds(v)
	case "stdin":
		c.Stdin, err = asString(v)
	case "retries":
		var n int
		n, err = asInt(v)
		if err == nil && n < 0 {
			err = fmt.Errorf("must not be negative, got %d", n)
		}
		c.Retries = n
	case "retry_delay":
		c.RetryDelay, err = asSeconds(v)
	case "ignore_errors":
		c.IgnoreErrors, err = asBool(v)
	case "get_pty":
		c.GetPTY, err = asBool(v)
	case "max_output":
		c.MaxOutput, err = asByteSize(v)
	default:
		panic("internal error: unknown control key " + key)
	}
	if err == nil && (key == "sudo_user" || key == "su_user" || key == "doas_user") {
		if u, _ := asString(v); strings.HasPrefix(u, "-") {
			// su would take it for an option: "-" alone is a root login.
			err = fmt.Errorf("%q: a user name cannot start with -", u)
		}
	}
	return err
}

// ControlFromData applies the control keys of host data (e.g. "sudo":
// "true" from --data, or True from an inventory) on top of base. Other keys
// are ignored. Strings are parsed as the CLI would: "true", "30", "a,b".
func ControlFromData(base Control, data map[string]any) (Control, error) {
	c := base
	keys := make([]string, 0, len(data))
	if pw, ok := data[SudoPasswordKey].(string); ok {
		c.SudoPassword = pw
	}
	for k := range data {
		if IsControlKey(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := dataValue(k, data[k])
		if err == nil {
			err = c.set(k, v)
		}
		if err != nil {
			return base, fmt.Errorf("data %s: %w", k, err)
		}
	}
	return c, nil
}

// dataValue converts a host data value to the Starlark value of control key
// k, parsing strings.
func dataValue(k string, v any) (starlark.Value, error) {
	s, isString := v.(string)
	if !isString {
		return ToStarlark(v)
	}
	switch k {
	case "sudo", "doas", "ignore_errors", "get_pty":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %q", s)
		}
		return starlark.Bool(b), nil
	case "retries":
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("want a whole number, got %q", s)
		}
		return starlark.MakeInt(n), nil
	case "timeout", "retry_delay":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("want a number, got %q", s)
		}
		return starlark.Float(f), nil
	case "success_exit_codes":
		var l []starlark.Value
		for _, p := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return nil, fmt.Errorf("want comma-separated integers, got %q", s)
			}
			l = append(l, starlark.MakeInt(n))
		}
		return starlark.NewList(l), nil
	case "env":
		return nil, fmt.Errorf("env cannot be given as a string")
	}
	return starlark.String(s), nil
}
