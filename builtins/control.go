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
// come from CLI flags and host data; a keyword on the call wins. Each field
// but SudoPassword is one row of controlArgs.
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

// A controlArg is one control argument: its documentation, the field of
// Control it sets and how, how a string of host data or a flag becomes its
// value, and which commands keep it.
type controlArg struct {
	Param
	bind binding
	// fromString parses a string of host data ("true", "30", "0,3") into
	// the value bind.set takes; nil passes the string on as it is.
	fromString func(s string) (starlark.Value, error)
	scope      argScope
}

// argScope says which commands keep a control argument.
type argScope uint8

const (
	// operationOnly: the operation's own command; probes drop it (stdin,
	// success codes, chdir, env, retries, ...).
	operationOnly argScope = iota
	// probed: read-only probes keep it too.
	probed
	// privilege: probes keep it, and it says which user commands run as,
	// so cached facts are kept apart by it.
	privilege
)

// controlArgs is the table of control arguments, in the order the docs list
// them (after name=). Adding a control argument is a field in Control and a
// row here: keywords, host data, --data, the docs, probes and the command
// wrapping all read this table.
var controlArgs = []controlArg{
	{Param: Param{"sudo", "bool", "False", "Run with `sudo -H -n` (as root, or as sudo_user)."}, scope: privilege, fromString: boolString,
		bind: field(asBool, func(c *Control) *bool { return &c.Sudo }, func(w *connectors.Wrap) *bool { return &w.Sudo })},
	{Param: Param{"sudo_user", "str", "None", "User to become with sudo."}, scope: privilege,
		bind: field(asUser, func(c *Control) *string { return &c.SudoUser }, func(w *connectors.Wrap) *string { return &w.SudoUser }).
			then(func(c *Control) { c.Sudo = c.Sudo || c.SudoUser != "" })},
	{Param: Param{"su_user", "str", "None", "User to become with `su USER -c`."}, scope: privilege,
		bind: field(asUser, func(c *Control) *string { return &c.SuUser }, func(w *connectors.Wrap) *string { return &w.SuUser })},
	{Param: Param{"doas", "bool", "False", "Run with `doas -n`."}, scope: privilege, fromString: boolString,
		bind: field(asBool, func(c *Control) *bool { return &c.Doas }, func(w *connectors.Wrap) *bool { return &w.Doas })},
	{Param: Param{"doas_user", "str", "None", "User to become with doas."}, scope: privilege,
		bind: field(asUser, func(c *Control) *string { return &c.DoasUser }, func(w *connectors.Wrap) *string { return &w.DoasUser }).
			then(func(c *Control) { c.Doas = c.Doas || c.DoasUser != "" })},
	{Param: Param{"env", "dict", "{}", "Environment variables exported for the command."}, fromString: envString,
		bind: envBinding()},
	{Param: Param{"chdir", "str", "None", "Directory to run the command in."},
		bind: field(asString, func(c *Control) *string { return &c.Chdir }, func(w *connectors.Wrap) *string { return &w.Chdir })},
	{Param: Param{"shell_executable", "str", "sh", "Shell that runs the command (`bash`, ...)."}, scope: probed,
		bind: field(asString, func(c *Control) *string { return &c.ShellExecutable }, func(w *connectors.Wrap) *string { return &w.ShellExecutable })},
	{Param: Param{"success_exit_codes", "list of int", "[0]", "Exit statuses that count as success."}, fromString: intListString,
		bind: field(asIntList, func(c *Control) *[]int { return &c.SuccessExitCodes }, nil)},
	{Param: Param{"timeout", "int or float", "None", "Seconds before the operation is stopped and fails; its command is killed."}, fromString: floatString,
		bind: field(asSeconds, func(c *Control) *time.Duration { return &c.Timeout }, nil)},
	{Param: Param{"stdin", "str", "None", "Text passed on standard input."},
		bind: field(asString, func(c *Control) *string { return &c.Stdin }, nil)},
	{Param: Param{"retries", "int", "0", "How many times to retry a failed operation."}, fromString: intString,
		bind: field(asCount, func(c *Control) *int { return &c.Retries }, nil)},
	{Param: Param{"retry_delay", "int or float", "0", "Seconds between retries."}, fromString: floatString,
		bind: field(asSeconds, func(c *Control) *time.Duration { return &c.RetryDelay }, nil)},
	{Param: Param{"ignore_errors", "bool", "False", "A failure returns a result with ok=False instead of stopping the host."}, fromString: boolString,
		bind: field(asBool, func(c *Control) *bool { return &c.IgnoreErrors }, nil)},
	{Param: Param{"get_pty", "bool", "False", "Request a pseudo-terminal, where the connector supports it."}, fromString: boolString,
		bind: field(asBool, func(c *Control) *bool { return &c.GetPTY }, nil)},
	{Param: Param{"max_output", "int or str", `"16MiB"`, "Bytes of standard output and of standard error each that an operation keeps (`1048576`, `\"64MiB\"`, units are powers of 1024). " +
		"Beyond it the first and the last half are kept and the bytes between them dropped: the result's `.stdout_dropped` and `.stderr_dropped` count them. " +
		"A fact whose output was cut fails; output streamed elsewhere (`get`) is not capped."}, scope: probed,
		bind: field(asByteSize, func(c *Control) *int64 { return &c.MaxOutput }, nil)},
}

// nameParam documents name=, which every operation takes beside the control
// arguments.
var nameParam = Param{"name", "str", "a summary of the call", "Name shown in output and events."}

// ControlParams documents name= and the control arguments, in the order the
// docs list them. Every operation accepts them as keywords.
func ControlParams() []Param {
	params := []Param{nameParam}
	for _, a := range controlArgs {
		params = append(params, a.Param)
	}
	return params
}

// binding ties a control argument to its field of Control and, when it is
// rendered into the command, to its field of connectors.Wrap.
type binding struct {
	set  func(c *Control, v starlark.Value) error
	copy func(dst, src *Control)
	wrap func(w *connectors.Wrap, c *Control) // nil: not part of the command's wrapping
	show func(c *Control) string              // the value, quoted, for cache keys
}

// field binds the field that f points to, parsed from a Starlark value with
// parse, and copied to the field of connectors.Wrap that wf points to
// (wf may be nil).
func field[T any](parse func(starlark.Value) (T, error), f func(*Control) *T, wf func(*connectors.Wrap) *T) binding {
	b := binding{
		set: func(c *Control, v starlark.Value) error {
			x, err := parse(v)
			if err == nil {
				*f(c) = x
			}
			return err
		},
		copy: func(dst, src *Control) { *f(dst) = *f(src) },
		show: func(c *Control) string { return strconv.Quote(fmt.Sprint(*f(c))) },
	}
	if wf != nil {
		b.wrap = func(w *connectors.Wrap, c *Control) { *wf(w) = *f(c) }
	}
	return b
}

// then returns b with after run on the Control each time a value is set.
func (b binding) then(after func(c *Control)) binding {
	set := b.set
	b.set = func(c *Control, v starlark.Value) error {
		err := set(c, v)
		if err == nil {
			after(c)
		}
		return err
	}
	return b
}

// envBinding binds env=, whose variables add to those set before (by the
// defaults) instead of replacing them.
func envBinding() binding {
	b := field(asStringMap, func(c *Control) *map[string]string { return &c.Env }, func(w *connectors.Wrap) *map[string]string { return &w.Env })
	b.set = func(c *Control, v starlark.Value) error {
		m, err := asStringMap(v)
		if err == nil {
			c.Env = maps.Clone(c.Env)
			if c.Env == nil {
				c.Env = map[string]string{}
			}
			maps.Copy(c.Env, m)
		}
		return err
	}
	return b
}

// controlArgNamed returns the row of the control argument key, or nil.
func controlArgNamed(key string) *controlArg {
	for i := range controlArgs {
		if controlArgs[i].Name == key {
			return &controlArgs[i]
		}
	}
	return nil
}

// IsControlKey reports whether key names a control argument (and so, in
// host data, a control default).
func IsControlKey(key string) bool { return controlArgNamed(key) != nil }

// Wrap returns the command wrapping of c.
func (c Control) Wrap() connectors.Wrap {
	var w connectors.Wrap
	for _, a := range controlArgs {
		if a.bind.wrap != nil {
			a.bind.wrap(&w, &c)
		}
	}
	return w
}

// probeControl keeps the settings of ctl that a read-only probe needs (who
// runs it, its shell, its output cap) and drops the rest (stdin, success
// codes, chdir, env, ...).
func probeControl(ctl Control) Control {
	p := Control{SudoPassword: ctl.SudoPassword} // the secret goes with the privilege
	for _, a := range controlArgs {
		if a.scope >= probed {
			a.bind.copy(&p, &ctl)
		}
	}
	return p
}

// privilegeKey tells apart the users that commands run as under c, for the
// keys of cached facts and of sweeps.
func (c Control) privilegeKey() string {
	var parts []string
	for _, a := range controlArgs {
		if a.scope == privilege {
			parts = append(parts, a.bind.show(&c))
		}
	}
	return strings.Join(parts, " ")
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
	var name string
	var rest []starlark.Tuple
	for _, pair := range kw {
		key := string(pair[0].(starlark.String))
		var err error
		if key == nameParam.Name {
			name, err = asString(pair[1])
		} else if a := controlArgNamed(key); a != nil {
			err = a.bind.set(&c, pair[1])
		} else {
			rest = append(rest, pair)
			continue
		}
		if err != nil {
			return c, "", nil, fmt.Errorf("%s: %s: %w", fn, key, err)
		}
	}
	return c, name, rest, nil
}

// ControlFromData applies the control keys of host data (e.g. "sudo":
// "true" from --data, or True from an inventory) on top of base. Other keys
// are ignored. Strings are parsed as the CLI would: "true", "30", "a,b".
func ControlFromData(base Control, data map[string]any) (Control, error) {
	c := base
	if pw, ok := data[SudoPasswordKey].(string); ok {
		c.SudoPassword = pw
	}
	keys := slices.Sorted(maps.Keys(data))
	for _, k := range keys {
		a := controlArgNamed(k)
		if a == nil {
			continue
		}
		v, err := a.dataValue(data[k])
		if err == nil {
			err = a.bind.set(&c, v)
		}
		if err != nil {
			return base, fmt.Errorf("data %s: %w", k, err)
		}
	}
	return c, nil
}

// dataValue converts a host data value to the Starlark value that a.bind.set
// takes, parsing strings.
func (a *controlArg) dataValue(v any) (starlark.Value, error) {
	s, isString := v.(string)
	switch {
	case !isString:
		return ToStarlark(v)
	case a.fromString == nil:
		return starlark.String(s), nil
	}
	return a.fromString(s)
}

// asUser reads a user name: a string that does not start with "-", which
// su would take for an option ("-" alone is a root login).
func asUser(v starlark.Value) (string, error) {
	u, err := asString(v)
	if err == nil && strings.HasPrefix(u, "-") {
		err = fmt.Errorf("%q: a user name cannot start with -", u)
	}
	return u, err
}

// asCount reads a number that must not be negative.
func asCount(v starlark.Value) (int, error) {
	n, err := asInt(v)
	if err == nil && n < 0 {
		err = fmt.Errorf("must not be negative, got %d", n)
	}
	return n, err
}

func boolString(s string) (starlark.Value, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return nil, fmt.Errorf("want true or false, got %q", s)
	}
	return starlark.Bool(b), nil
}

func intString(s string) (starlark.Value, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("want a whole number, got %q", s)
	}
	return starlark.MakeInt(n), nil
}

func floatString(s string) (starlark.Value, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("want a number, got %q", s)
	}
	return starlark.Float(f), nil
}

func intListString(s string) (starlark.Value, error) {
	var l []starlark.Value
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("want comma-separated integers, got %q", s)
		}
		l = append(l, starlark.MakeInt(n))
	}
	return starlark.NewList(l), nil
}

func envString(string) (starlark.Value, error) {
	return nil, fmt.Errorf("env cannot be given as a string")
}
