package builtins

import (
	"fmt"
	"regexp"
	"sync"

	"go.starlark.net/starlark"
)

// The re module: regular expressions for the stdlib's line and text
// operations. Patterns use Go's RE2 syntax (no backreferences in patterns,
// no lookaround); in a replacement, \1 or ${1} and ${name} insert groups.

var reSearchSpec = &Spec{
	Name:    "re.search",
	Doc:     "Finds the first match of a regular expression (RE2 syntax) in a string.",
	Params:  []Param{{"pattern", "str", "", "The regular expression."}, {"s", "str", "", "The text to search."}},
	Returns: "a list with the whole match and then each group (None for a group that did not take part), or None when nothing matches",
	Example: `m = re.search(r"^version=(\d+)", text)
if m:
    print(m[1])`,
	Effects: EffectPure,
	Fn:      reSearch,
}

var reFindallSpec = &Spec{
	Name:    "re.findall",
	Doc:     "Returns every non-overlapping match of a regular expression in a string.",
	Params:  []Param{{"pattern", "str", "", "The regular expression."}, {"s", "str", "", "The text to search."}},
	Returns: "a list of strings: the whole matches, or the first group's text when the pattern has groups",
	Example: `ports = re.findall(r"listen (\d+)", conf)`,
	Effects: EffectPure,
	Fn:      reFindall,
}

var reSubSpec = &Spec{
	Name: "re.sub",
	Doc:  "Replaces matches of a regular expression in a string. In repl, `\\1` or `${1}` inserts group 1 and `${name}` a named group; `$` alone needs no escaping.",
	Params: []Param{
		{"pattern", "str", "", "The regular expression."},
		{"repl", "str", "", "The replacement."},
		{"s", "str", "", "The text."},
		{"count?", "int", "0", "Replace at most this many matches (0: all)."},
	},
	Returns: "the new string",
	Example: `conf = re.sub(r"(?m)^port = \d+$", "port = 8080", conf)`,
	Effects: EffectPure,
	Fn:      reSub,
}

var reEscapeSpec = &Spec{
	Name:    "re.escape",
	Doc:     "Escapes every regular-expression metacharacter of a string, so that it matches itself.",
	Params:  []Param{{"s", "str", "", "The literal text."}},
	Returns: "the escaped pattern",
	Example: `re.search("^" + re.escape(line) + "$", text)`,
	Effects: EffectPure,
	Fn: func(_ *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		var str string
		if err := s.Unpack(args, kw, &str); err != nil {
			return nil, err
		}
		return starlark.String(regexp.QuoteMeta(str)), nil
	},
}

// regexCache holds compiled patterns: files.line tries one pattern on
// every line of a file. It is bounded, since a process that embeds the
// engine may run scripts with any number of different patterns.
var regexCache = struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}{m: map[string]*regexp.Regexp{}}

const maxCachedRegexps = 512

func compileRegex(fn, pattern string) (*regexp.Regexp, error) {
	regexCache.Lock()
	re, ok := regexCache.m[pattern]
	regexCache.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: bad pattern %q: %w", fn, pattern, err)
	}
	regexCache.Lock()
	if len(regexCache.m) >= maxCachedRegexps {
		clear(regexCache.m)
	}
	regexCache.m[pattern] = re
	regexCache.Unlock()
	return re, nil
}

// unpackRegex unpacks the (pattern, s) arguments of re.search and
// re.findall and compiles the pattern.
func unpackRegex(s *Spec, args starlark.Tuple, kw []starlark.Tuple) (*regexp.Regexp, string, error) {
	var pattern, str string
	if err := s.Unpack(args, kw, &pattern, &str); err != nil {
		return nil, "", err
	}
	re, err := compileRegex(s.Name, pattern)
	return re, str, err
}

func reSearch(_ *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	re, str, err := unpackRegex(s, args, kw)
	if err != nil {
		return nil, err
	}
	idx := re.FindStringSubmatchIndex(str)
	if idx == nil {
		return starlark.None, nil
	}
	out := make([]starlark.Value, len(idx)/2)
	for i := range out {
		if idx[2*i] < 0 {
			out[i] = starlark.None
			continue
		}
		out[i] = starlark.String(str[idx[2*i]:idx[2*i+1]])
	}
	return starlark.NewList(out), nil
}

func reFindall(_ *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	re, str, err := unpackRegex(s, args, kw)
	if err != nil {
		return nil, err
	}
	var out []starlark.Value
	for _, m := range re.FindAllStringSubmatch(str, -1) {
		if len(m) > 1 {
			out = append(out, starlark.String(m[1]))
		} else {
			out = append(out, starlark.String(m[0]))
		}
	}
	return starlark.NewList(out), nil
}

// backref turns Python-style \1 group references into Go's ${1} and
// escapes a $ that does not start a group reference.
var backref = regexp.MustCompile(`\\(\d+)|\$\{[A-Za-z0-9_]+\}|\$`)

func reSub(_ *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var pattern, repl, str string
	count := 0
	if err := s.Unpack(args, kw, &pattern, &repl, &str, &count); err != nil {
		return nil, err
	}
	if count < 0 {
		return nil, fmt.Errorf("%s: count must be 0 or more, got %d", s.Name, count)
	}
	re, err := compileRegex(s.Name, pattern)
	if err != nil {
		return nil, err
	}
	tmpl := backref.ReplaceAllStringFunc(repl, func(m string) string {
		switch {
		case m[0] == '\\':
			return "${" + m[1:] + "}"
		case m == "$":
			return "$$"
		default: // ${group}
			return m
		}
	})
	limit := -1
	if count > 0 {
		limit = count
	}
	var out []byte
	last := 0
	for _, idx := range re.FindAllStringSubmatchIndex(str, limit) {
		out = append(out, str[last:idx[0]]...)
		out = re.ExpandString(out, tmpl, str, idx)
		last = idx[1]
	}
	out = append(out, str[last:]...)
	return starlark.String(out), nil
}
