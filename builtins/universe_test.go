package builtins_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
)

// eval evaluates expr after setup with predeclared names and returns its
// repr, or its error, and what it printed.
func eval(t *testing.T, predeclared starlark.StringDict, setup, expr string) (string, string) {
	t.Helper()
	var printed strings.Builder
	thread := &starlark.Thread{Print: func(_ *starlark.Thread, msg string) { printed.WriteString(msg + "\n") }}
	builtins.WithContext(thread, t.Context())
	globals, err := starlark.ExecFileOptions(&syntax.FileOptions{Set: true, GlobalReassign: true, TopLevelControl: true}, thread, "setup.star", setup, predeclared)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	env := starlark.StringDict{}
	for k, v := range predeclared {
		env[k] = v
	}
	for k, v := range globals {
		env[k] = v
	}
	v, err := starlark.EvalOptions(&syntax.FileOptions{Set: true}, thread, "expr.star", expr, env)
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return "error: " + ee.Msg, printed.String()
	} else if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v.String(), printed.String()
}

// TestUniverseReplacementsAgree: the replaced builtins give Starlark's own
// results and errors.
func TestUniverseReplacementsAgree(t *testing.T) {
	setup := `
l = [3, 1, "x", None, (1,), (), {"k": [True]}, set([2, 1]), b"\xff", 1.5]
cyc = [1]
cyc.append(cyc)
d = {"a": 1}
d["self"] = d
nested = (cyc, [d, (cyc,)])
words = ["pear", "Apple", "fig", "apple", "Fig"]
def key(s):
    return s.lower()
def bad_key(s):
    return 1 if s == "fig" else "x"
`
	exprs := []string{
		"str(l)", "repr(l)", "str(cyc)", "str(d)", "repr(nested)", "str('s')", `str(b"\xff")`, "repr('s')",
		"str(1, 2)", "str(x = 1)", "repr()", "str(range(5))", "str(set())", "str({})", "str(())",
		"print(l, cyc, 's', b'b')", "print(1, 2, sep = '-')", "print(sep = 1)",
		"sorted(words)", "sorted(words, key = key)", "sorted(words, key = key, reverse = True)", "sorted(words, reverse = True)",
		"sorted([3, 1, 2], None, True)", "sorted([1, 'a'])", "sorted('abc')", "sorted()",
		"sorted(d)", "sorted(set([3, 1]))", "sorted([])", "sorted(range(5), key = lambda x: -x)",
		"list(range(3))", "list()", "list('abc')", "list(d)", "tuple(range(3))", "tuple()", "tuple(1)",
		"enumerate(words, 2)", "enumerate(1)", "reversed(range(4))", "reversed(d)", "reversed(1)",
		"zip(range(3), words)", "zip(range(1 << 62), 'ab'.elems())", "zip()", "zip(1)", "zip(words, 1)",
		"bytes(range(3))", "bytes('é')", "bytes(range(300))", "bytes(1)", "bytes(b'x')",
		"set(words)", "set([[1]])", "set()", "dict([(1, 2)], a = 3)", "dict(d)", "dict([1])", "dict(a = 1)", "dict([(1, 2, 3)])",
		"any([0, 1])", "any([])", "all([1, 0])", "all(1)", "min(words)", "max(words, key = key)", "min(3, 1, 2)",
		"max([])", "min(1)", "max(range(10))",
	}
	ours := builtins.Predeclared(builtins.EffectPure)
	for _, expr := range exprs {
		want, wantOut := eval(t, nil, setup, expr)
		got, gotOut := eval(t, ours, setup, expr)
		if got != want || gotOut != wantOut {
			t.Errorf("%s:\n got %s, printed %q\nwant %s, printed %q", expr, got, gotOut, want, wantOut)
		}
	}
}

// TestReplacementErrors: a range too long to copy is refused, zip copies
// only as much as its shortest argument, and sorted names the first pair
// it could not compare (Starlark's names the last).
func TestReplacementErrors(t *testing.T) {
	ours := builtins.Predeclared(builtins.EffectPure)
	for expr, want := range map[string]string{
		"list(range(1 << 62))":                 "list: range too large: 4611686018427387904 elements, at most 268435456",
		"set(range(1 << 40))":                  "set: range too large: 1099511627776 elements, at most 268435456",
		"zip(range(1 << 62), range(1 << 61))":  "zip: range too large: 2305843009213693952 elements",
		"sorted(range(1 << 62), reverse=True)": "sorted: range too large",
		"zip(range(1 << 62), [1])":             "[(0, 1)]",
		"len(str(range(1 << 62)))":             "26",
		"max(range(1 << 62)[-3:])":             "4611686018427387903",
		"sorted([1, 2, 'x', 3])":               "not implemented",
	} {
		if got, _ := eval(t, ours, "", expr); !strings.Contains(got, want) {
			t.Errorf("%s = %s, want %s", expr, got, want)
		}
	}
}

// TestReplacementsStopWithTheContext: each replaced builtin returns an
// error wrapping the context's cause once the context is done.
func TestReplacementsStopWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ours := builtins.Predeclared(builtins.EffectPure)
	for _, expr := range []string{
		"list(big)", "tuple(big)", "sorted(big)", "enumerate(big)", "reversed(big)", "zip(big, big)", "set(big)",
		"any(falses)", "all(trues)", "min(big)", "max(big)", "str(big)", "repr(big)", "print(big)", "bytes(small)",
		"dict(pairs)", "sorted(big, key = str)", "re.findall('a', s)", "re.sub('a', 'b', s)", "re.search('x|y', s)",
	} {
		thread := &starlark.Thread{Print: func(*starlark.Thread, string) {}}
		builtins.WithContext(thread, ctx)
		env := starlark.StringDict{
			"big":    starlark.NewList(make([]starlark.Value, 1<<12)),
			"small":  starlark.NewList(make([]starlark.Value, 1<<12)),
			"pairs":  starlark.NewList(make([]starlark.Value, 1<<12)),
			"s":      starlark.String(strings.Repeat("ab", 1<<20)),
			"falses": starlark.NewList(make([]starlark.Value, 1<<12)),
			"trues":  starlark.NewList(make([]starlark.Value, 1<<12)),
		}
		for i := range 1 << 12 {
			v := starlark.MakeInt(i)
			env["big"].(*starlark.List).SetIndex(i, v)
			env["small"].(*starlark.List).SetIndex(i, starlark.MakeInt(i%256))
			env["pairs"].(*starlark.List).SetIndex(i, starlark.Tuple{v, v})
			env["falses"].(*starlark.List).SetIndex(i, starlark.False)
			env["trues"].(*starlark.List).SetIndex(i, starlark.True)
		}
		for k, v := range ours {
			env[k] = v
		}
		_, err := starlark.EvalOptions(&syntax.FileOptions{}, thread, "expr.star", expr, env)
		if err == nil || !strings.Contains(err.Error(), "cancelled: context canceled") {
			t.Errorf("%s: err = %v, want cancelled", expr, err)
		}
	}
}
