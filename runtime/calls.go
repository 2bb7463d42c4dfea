package runtime

import (
	"fmt"
	"slices"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/internal/spell"
)

// checkKeywords reports the keyword arguments that a call cannot take,
// where the callee is known before the script runs: a predeclared builtin
// called by its name (put, re.sub) or a function of a loaded module
// (files.put, or a function loaded by name). Without it, put(contents=...)
// fails at run time, on every host. bound gives the value of an
// identifier where it is known, else nil: for a script or module
// (Runner.scriptBound) the predeclared names and what load() bound, for a
// session's chunk what every host holds alike (Session.checkKeywords). A
// stdlib operation takes its parameters and, through **control, the
// control arguments; any other function with **kwargs takes anything and
// is not checked. Stdlib modules pass their operations private keywords
// through **control too (_manager: yum.* runs dnf's with "yum"), which
// only they may.
func checkKeywords(f *syntax.File, bound func(*syntax.Ident) starlark.Value) error {
	private := strings.HasPrefix(f.Path, stdlibPrefix)
	var errs []string
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok {
			return true
		}
		what, allowed, ok := callee(call.Fn, bound)
		if !ok {
			return true
		}
		for _, arg := range call.Args {
			kw, ok := arg.(*syntax.BinaryExpr)
			if !ok || kw.Op != syntax.EQ {
				continue
			}
			name := kw.X.(*syntax.Ident).Name
			if !slices.Contains(allowed, name) && !(private && strings.HasPrefix(name, "_")) {
				errs = append(errs, fmt.Sprintf("%s: %s: unexpected keyword argument %q%s", kw.X.(*syntax.Ident).NamePos, what, name, spell.Suffix(name, allowed)))
			}
		}
		return true
	})
	if errs != nil {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// callee returns the name and the keyword arguments of the function that
// fn denotes, when that is known statically.
func callee(fn syntax.Expr, bound func(*syntax.Ident) starlark.Value) (string, []string, bool) {
	var v starlark.Value
	var what string
	switch e := fn.(type) {
	case *syntax.Ident:
		v, what = bound(e), e.Name
	case *syntax.DotExpr:
		x, ok := e.X.(*syntax.Ident)
		if !ok {
			return "", nil, false
		}
		mod, ok := bound(x).(starlark.HasAttrs)
		if !ok {
			return "", nil, false
		}
		attr, err := mod.Attr(e.Name.Name)
		if err != nil || attr == nil {
			return "", nil, false
		}
		v, what = attr, x.Name+"."+e.Name.Name
	}
	switch f := v.(type) {
	case *starlark.Builtin:
		kws, ok := builtins.Keywords(f.Name())
		return what, kws, ok
	case *starlark.Function:
		kws, ok := functionKeywords(f)
		return what, kws, ok
	}
	return "", nil, false
}

// scriptBound returns checkKeywords' bound of a script or module: the
// value of an identifier that is predeclared, or that load() bound (loaded
// maps the load statements' identifiers to their values). Inside a
// function a loaded name has a binding of its own (a free variable), whose
// First is still the load statement's identifier.
func (r *Runner) scriptBound(loaded map[*syntax.Ident]starlark.Value) func(*syntax.Ident) starlark.Value {
	return func(id *syntax.Ident) starlark.Value {
		b, ok := id.Binding.(*resolve.Binding)
		if !ok {
			return nil
		}
		switch b.Scope {
		case resolve.Predeclared, resolve.Universal:
			return r.globals[id.Name]
		}
		if b.First == nil {
			return nil
		}
		return loaded[b.First]
	}
}

// functionKeywords returns the keyword arguments of a Starlark function: its
// named parameters, plus the control arguments when it is a stdlib
// operation, whose **control carries those by convention. Other **kwargs
// take any keyword.
func functionKeywords(f *starlark.Function) ([]string, bool) {
	n := f.NumParams()
	var kws []string
	if f.HasKwargs() {
		name, _ := f.Param(n - 1)
		if name != "control" || !strings.HasPrefix(f.Position().Filename(), stdlibPrefix) {
			return nil, false
		}
		kws = builtins.ControlNames()
		n--
	}
	if f.HasVarargs() {
		n--
	}
	for i := range n {
		name, _ := f.Param(i)
		kws = append(kws, name)
	}
	return kws, true
}
