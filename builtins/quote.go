package builtins

import (
	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

var quoteSpec = &Spec{
	Name: "quote",
	Doc: "Quotes a string as one POSIX shell word, so that any text (quotes, `$`, newlines) " +
		"reaches a command unchanged.",
	Params:  []Param{{"s", "str", "", "The text to quote."}},
	Returns: "the quoted string",
	Example: `shell("grep -qxF " + quote(line) + " /etc/hosts")`,
	Effects: EffectPure,
	Fn:      stringFn(connectors.Quote),
}

// stringFn is the Fn of a pure builtin that maps its one string argument
// to a string with f.
func stringFn(f func(string) string) func(*starlark.Thread, *Spec, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		var str string
		if err := s.Unpack(args, kw, &str); err != nil {
			return nil, err
		}
		return starlark.String(f(str)), nil
	}
}
