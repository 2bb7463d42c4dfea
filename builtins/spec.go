package builtins

import (
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Effect classifies what a builtin may do, so that an embedder can allow
// builtins by effect (for example "pure + read-host only").
type Effect uint8

// Effects a builtin may have. They combine as bit flags.
const (
	EffectPure      Effect = 0         // computes a value, touches nothing
	EffectReadHost  Effect = 1 << iota // runs read-only probes on the host
	EffectWriteHost                    // may change the host
	EffectLocalFS                      // reads or writes files on the machine running star-deploy
	EffectNetwork                      // opens network connections of its own
	EffectLocalExec                    // runs a program on the machine running star-deploy
)

func (e Effect) String() string {
	if e == EffectPure {
		return "pure"
	}
	var parts []string
	for _, p := range []struct {
		e    Effect
		name string
	}{{EffectReadHost, "read-host"}, {EffectWriteHost, "write-host"}, {EffectLocalFS, "local-fs"}, {EffectNetwork, "network"}, {EffectLocalExec, "local-exec"}} {
		if e&p.e != 0 {
			parts = append(parts, p.name)
		}
	}
	return strings.Join(parts, "+")
}

// Param documents one parameter. Name uses starlark.UnpackArgs syntax: a
// trailing "?" marks an optional parameter, which is passed by keyword.
type Param struct {
	Name    string
	Type    string
	Default string
	Doc     string
}

// Spec declares one builtin: its Starlark name, documentation, parameters,
// effects and implementation. The same Params feed argument unpacking and
// the generated docs, so the two cannot drift apart.
type Spec struct {
	Name    string // Starlark name
	Doc     string // Markdown; the first sentence is the summary
	Params  []Param
	Control bool   // accepts the control arguments (sudo=, timeout=, ..., name=)
	Returns string // what the call returns
	Example string // a short Starlark example for the docs
	Effects Effect
	// Optional says the stdlib can do without it: where a sandbox
	// withholds it, stdlib modules see a false value in its place (the
	// stdlib tests `if rsync:` and falls back), so that they still load.
	// Scripts do not: for them a withheld builtin is undefined.
	Optional bool
	Fn       func(t *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error)
}

// Builtin returns the Starlark value of s.
func (s *Spec) Builtin() *starlark.Builtin {
	return starlark.NewBuiltin(s.Name, func(t *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		v, err := s.Fn(t, s, args, kw)
		if err == nil && v == nil {
			panic("internal error: builtin " + s.Name + " returned nil")
		}
		return v, err
	})
}

// Unpack unpacks args and kw into ptrs, pairing Params[i].Name with ptrs[i].
// It panics when the pointers do not match the Params, in number or in
// type: a *string for a Param declared "int" is a bug, not a user error.
func (s *Spec) Unpack(args starlark.Tuple, kw []starlark.Tuple, ptrs ...any) error {
	if len(ptrs) != len(s.Params) {
		panic(fmt.Sprintf("internal error: %s: %d params but %d pointers", s.Name, len(s.Params), len(ptrs)))
	}
	pairs := make([]any, 0, 2*len(ptrs))
	optional := map[string]bool{}
	for i, p := range s.Params {
		if !fits(ptrs[i], p.Type) {
			panic(fmt.Sprintf("internal error: %s: parameter %s is declared %q but unpacked into a %T", s.Name, p.Name, p.Type, ptrs[i]))
		}
		pairs = append(pairs, p.Name, ptrs[i])
		if name, ok := strings.CutSuffix(p.Name, "?"); ok {
			optional[name] = true
		}
	}
	// None passed for an optional parameter means its default, so that
	// wrappers (the stdlib) can pass their own None defaults on.
	var given []starlark.Tuple
	for _, pair := range kw {
		if pair[1] == starlark.None && optional[string(pair[0].(starlark.String))] {
			continue
		}
		given = append(given, pair)
	}
	return starlark.UnpackArgs(s.Name, args, given, pairs...)
}

// fits reports whether ptr, which starlark.UnpackArgs fills, takes the
// values of typ, the Starlark type that a Param declares: "str", "bool",
// "int", "float", "dict", "list of ...", "tuple", "function". A
// *starlark.Value or an Unpacker takes any type, an "or" of types included;
// the builtin then checks the value itself.
func fits(ptr any, typ string) bool {
	switch ptr.(type) {
	case *starlark.Value, starlark.Unpacker:
		return true
	case *string, *starlark.String:
		return typ == "str"
	case *bool, *starlark.Bool:
		return typ == "bool"
	case *int, *int64, *uint, *uint64, *starlark.Int:
		return typ == "int"
	case *float64, *starlark.Float:
		return typ == "float"
	case **starlark.Dict:
		return typ == "dict"
	case **starlark.List:
		return typ == "list" || strings.HasPrefix(typ, "list of ")
	case *starlark.Tuple:
		return typ == "tuple"
	case *starlark.Callable:
		return typ == "function"
	}
	return false
}

// All returns every builtin spec, sorted by name.
func All() []*Spec {
	specs := []*Spec{shellSpec, putSpec, getSpec, templateSpec, factSpec, quoteSpec, noopSpec, localTreeSpec, currentHostSpec, runOnceSpec, reconnectSpec, rsyncSpec,
		reSearchSpec, reFindallSpec, reSubSpec, reEscapeSpec, secretSpec, tempFileSpec}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}

// Predeclared returns the builtins as a Starlark dictionary of globals,
// restricted to those whose effects are within allow (pass ^Effect(0) for
// all). A dotted name ("re.sub") is a member of a module value ("re").
// The per-host value "host" is not included: the runtime adds it for each
// host from Host.Value. Starlark's own builtins that walk or copy whole
// values (sorted, str, list, ...) are replaced by versions that stop when
// the context bound by WithHost is done; see MaxElements.
func Predeclared(allow Effect) starlark.StringDict {
	d := universe()
	modules := map[string]starlark.StringDict{}
	for _, s := range All() {
		if s.Effects&^allow != 0 {
			continue
		}
		if mod, member, ok := strings.Cut(s.Name, "."); ok {
			if modules[mod] == nil {
				modules[mod] = starlark.StringDict{}
			}
			modules[mod][member] = s.Builtin()
			continue
		}
		d[s.Name] = s.Builtin()
	}
	for name, members := range modules {
		d[name] = &starlarkstruct.Module{Name: name, Members: members}
	}
	return d
}
