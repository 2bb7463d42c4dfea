package main

import (
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/internal/gendocs"
	"github.com/star-deploy/star-deploy/internal/spell"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// adhocFilename names the script generated for an ad-hoc operation in
// errors: it is the command line, not a file a user could open.
const adhocFilename = "<command line>"

// opTarget matches MODULE.OP, the TARGET of an ad-hoc operation.
var opTarget = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$`)
})

// identifier matches a Starlark name: a keyword argument or a function.
var identifier = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// isAdhoc reports whether target names an ad-hoc operation rather than a
// script: MODULE.OP without .star, MODULE being a stdlib module, or any
// NAME.NAME that is no file (an unknown module is then reported by
// adhocSource).
func isAdhoc(target string) bool {
	m := opTarget().FindStringSubmatch(target)
	if m == nil || m[2] == "star" {
		return false
	}
	if _, err := fs.Stat(stdlib.FS, m[1]+".star"); err == nil {
		return true
	}
	_, err := os.Stat(target)
	return err != nil
}

// adhocSource generates the script of the ad-hoc operation target
// (MODULE.OP) called with args: ARG is positional, KEY=VALUE a keyword
// argument. Each value is written as it is when it is a Starlark literal
// (True, 8080, ["a", "b"], "quoted"), else as a string. An unknown module or
// operation is a usage error listing the ones that exist.
func adhocSource(target string, args []string) (source, error) {
	m := opTarget().FindStringSubmatch(target)
	module, op := m[1], m[2]
	src, err := fs.ReadFile(stdlib.FS, module+".star")
	if err != nil {
		names, _ := fs.Glob(stdlib.FS, "*.star")
		for i, n := range names {
			names[i] = strings.TrimSuffix(n, ".star")
		}
		names = slices.DeleteFunc(names, func(n string) bool { return n == "ops" })
		return source{}, usagef("%s: no script %s and no stdlib module %s%s; the modules are %s (see star-deploy docs stdlib)", target, target, module, spell.Suffix(module, names), strings.Join(names, ", "))
	}
	mod, err := gendocs.ParseModule(module+".star", src)
	if err != nil {
		return source{}, fmt.Errorf("internal error: stdlib %s: %w", module, err)
	}
	var ops []string
	for _, o := range mod.Ops {
		ops = append(ops, strings.TrimPrefix(o.Name, module+"."))
	}
	if !slices.Contains(ops, op) {
		return source{}, usagef("%s: the stdlib module %s has no operation %s%s; its operations are %s (see star-deploy docs %s)", target, module, op, spell.Suffix(op, ops), strings.Join(ops, ", "), module)
	}
	var call []string
	keyword := ""
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if ok && identifier().MatchString(k) {
			call = append(call, k+" = "+starlarkValue(v))
			keyword = a
			continue
		}
		if keyword != "" {
			return source{}, usagef("%s: the argument %q follows the keyword argument %q; write positional arguments first", target, a, keyword)
		}
		call = append(call, starlarkValue(a))
	}
	// One line, so that an error's position is a column of the call.
	text := fmt.Sprintf("load(%s, %s); %s(%s)\n", syntax.Quote("@stdlib//"+module+".star", false), syntax.Quote(module, false), target, strings.Join(call, ", "))
	return source{filename: adhocFilename, src: []byte(text)}, nil
}

// starlarkValue returns s when it is a Starlark literal on one line, else s
// quoted as a string.
func starlarkValue(s string) string {
	if !strings.ContainsAny(s, "\n\r") {
		if e, err := syntax.ParseExpr("<arg>", s, 0); err == nil && isLiteral(e) {
			return s
		}
	}
	return syntax.Quote(s, false)
}

// isLiteral reports whether e is a constant: a string, bytes or number
// literal (signed), True, False, None, or a list, tuple or dict of them.
func isLiteral(e syntax.Expr) bool {
	switch e := e.(type) {
	case *syntax.Literal:
		return true
	case *syntax.Ident:
		return e.Name == "True" || e.Name == "False" || e.Name == "None"
	case *syntax.ParenExpr:
		return isLiteral(e.X)
	case *syntax.UnaryExpr:
		_, ok := e.X.(*syntax.Literal)
		return ok && (e.Op == syntax.MINUS || e.Op == syntax.PLUS)
	case *syntax.ListExpr:
		return !slices.ContainsFunc(e.List, func(x syntax.Expr) bool { return !isLiteral(x) })
	case *syntax.TupleExpr:
		return !slices.ContainsFunc(e.List, func(x syntax.Expr) bool { return !isLiteral(x) })
	case *syntax.DictExpr:
		return !slices.ContainsFunc(e.List, func(x syntax.Expr) bool {
			d := x.(*syntax.DictEntry)
			return !isLiteral(d.Key) || !isLiteral(d.Value)
		})
	}
	return false
}

// functionSource returns the script FILE:FUNC: the file's source with a
// call of FUNC appended, so that its top level runs first and its line
// numbers stay. ok is false when arg is not of that form (or is a file).
// A FUNC the file does not define is a usage error naming both.
func functionSource(arg string) (s source, ok bool, err error) {
	i := strings.LastIndex(arg, ":")
	if i < 0 || !identifier().MatchString(arg[i+1:]) {
		return source{}, false, nil
	}
	if _, err := os.Stat(arg); err == nil {
		return source{}, false, nil
	}
	path, fn := arg[:i], arg[i+1:]
	src, err := os.ReadFile(path)
	if err != nil {
		return source{}, true, usagef("%s: script %s: %w", arg, path, err)
	}
	if f, err := sdrt.FileOptions().Parse(path, src, 0); err == nil && !slices.Contains(topLevelNames(f), fn) {
		defs := strings.Join(defNames(f), ", ")
		if defs == "" {
			defs = "none"
		}
		return source{}, true, usagef("%s: the script %s defines no function %s; its functions: %s", arg, path, fn, defs)
	}
	// A syntax error is left to Compile, which reports it in full.
	text := string(src)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += fn + "()\n"
	return source{filename: path, src: []byte(text)}, true, nil
}

// topLevelNames lists the names f binds at its top level: functions,
// assignments and loads.
func topLevelNames(f *syntax.File) []string {
	names := defNames(f)
	for _, stmt := range f.Stmts {
		switch s := stmt.(type) {
		case *syntax.AssignStmt:
			if id, ok := s.LHS.(*syntax.Ident); ok {
				names = append(names, id.Name)
			}
		case *syntax.LoadStmt:
			for _, to := range s.To {
				names = append(names, to.Name)
			}
		}
	}
	return names
}

// defNames lists the functions f defines at its top level.
func defNames(f *syntax.File) []string {
	var names []string
	for _, stmt := range f.Stmts {
		if d, ok := stmt.(*syntax.DefStmt); ok {
			names = append(names, d.Name.Name)
		}
	}
	return names
}
