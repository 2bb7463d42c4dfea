package builtins

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

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
	Fn:      stringFn(regexp.QuoteMeta),
}

// regexCache holds compiled patterns: files.line tries one pattern on
// every line of a file. It is bounded, since a process that embeds the
// engine may run scripts with any number of different patterns.
var regexCache = struct {
	sync.Mutex
	m map[string]*pattern
}{m: map[string]*pattern{}}

const maxCachedRegexps = 512

// pattern is a compiled regular expression with what searching a long
// string needs.
//
// Go's regexp cannot be stopped in a search, and one search of 100 MB
// takes seconds, so a string longer than directScan is searched one match
// at a time through an io.RuneReader that polls the thread's context. A
// search from an offset must see the rune before it, which ^ and \b look
// at: it runs `after`, the pattern behind one rune of context, from that
// rune on.
type pattern struct {
	re     *regexp.Regexp
	prefix string // what every match starts with, or ""

	once     sync.Once
	after    *regexp.Regexp // (?s:.)(re)
	afterErr error
}

// directScan is the longest string searched in one go; a search of it
// takes at most tens of milliseconds.
const directScan = 256 << 10

func compileRegex(fn, expr string) (*pattern, error) {
	regexCache.Lock()
	p, ok := regexCache.m[expr]
	regexCache.Unlock()
	if ok {
		return p, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%s: bad pattern %q: %w", fn, expr, err)
	}
	p = &pattern{re: re}
	p.prefix, _ = re.LiteralPrefix()
	regexCache.Lock()
	if len(regexCache.m) >= maxCachedRegexps {
		clear(regexCache.m)
	}
	regexCache.m[expr] = p
	regexCache.Unlock()
	return p, nil
}

func (p *pattern) afterRegexp() (*regexp.Regexp, error) {
	p.once.Do(func() {
		p.after, p.afterErr = regexp.Compile(`(?s:.)(` + p.re.String() + `)`)
	})
	return p.after, p.afterErr
}

// find returns the submatch indexes of the first match of p in s at or
// after pos, as the search of regexp's FindAll does from there, or nil.
// What is left of s after pos is searched in one go when it is at most
// direct bytes long (directScan but in tests).
func (p *pattern) find(poll *poll, s string, pos, direct int) ([]int, error) {
	if p.prefix != "" {
		// A match starts at the next copy of the prefix, which
		// strings.Index finds faster than a search reading runes.
		i := strings.Index(s[pos:], p.prefix)
		if i < 0 {
			return nil, nil
		}
		pos += i
	}
	re, from, skip := p.re, pos, 0
	if pos > 0 {
		after, err := p.afterRegexp()
		if err != nil {
			return nil, fmt.Errorf("%s: pattern too complex for a string of %d bytes: %w", poll.name, len(s), err)
		}
		_, w := utf8.DecodeLastRuneInString(s[:pos])
		re, from, skip = after, pos-w, 2
	}
	var m []int
	if len(s)-from <= direct {
		m = re.FindStringSubmatchIndex(s[from:])
	} else {
		m = re.FindReaderSubmatchIndex(&pollReader{s: s[from:], p: poll})
	}
	if poll.err != nil {
		return nil, poll.err
	}
	if m == nil {
		return nil, nil
	}
	m = m[skip:]
	for i := range m {
		if m[i] >= 0 {
			m[i] += from
		}
	}
	return m, nil
}

// each calls fn with the submatch indexes of each successive
// non-overlapping match of p in s, at most n of them (n < 0: all), as
// regexp's FindAllStringSubmatchIndex does, and stops with poll.
func (p *pattern) each(poll *poll, s string, n, direct int, fn func(m []int)) error {
	if len(s) <= direct {
		for _, m := range p.re.FindAllStringSubmatchIndex(s, n) {
			fn(m)
		}
		return nil
	}
	prevEnd := -1
	for pos, i := 0, 0; (n < 0 || i < n) && pos <= len(s); {
		if poll.stop() {
			return poll.err
		}
		m, err := p.find(poll, s, pos, direct)
		if err != nil || m == nil {
			return err
		}
		accept := true
		if m[1] == pos {
			// An empty match: not right after the previous match; the
			// next search starts one rune on.
			accept = m[0] != prevEnd
			if _, w := utf8.DecodeRuneInString(s[pos:]); w > 0 {
				pos += w
			} else {
				pos++
			}
		} else {
			pos = m[1]
		}
		prevEnd = m[1]
		if accept {
			fn(m)
			i++
		}
	}
	return nil
}

// pollReader reads s rune by rune, as strings.Reader does, and ends early
// when its poll stops.
type pollReader struct {
	s string
	i int
	p *poll
}

func (r *pollReader) ReadRune() (rune, int, error) {
	if r.i >= len(r.s) || r.p.stop() {
		return 0, 0, io.EOF
	}
	if c := r.s[r.i]; c < utf8.RuneSelf {
		r.i++
		return rune(c), 1, nil
	}
	c, w := utf8.DecodeRuneInString(r.s[r.i:])
	r.i += w
	return c, w, nil
}

// unpackRegex unpacks the (pattern, s) arguments of re.search and
// re.findall and compiles the pattern.
func unpackRegex(s *Spec, args starlark.Tuple, kw []starlark.Tuple) (*pattern, string, error) {
	var expr, str string
	if err := s.Unpack(args, kw, &expr, &str); err != nil {
		return nil, "", err
	}
	p, err := compileRegex(s.Name, expr)
	return p, str, err
}

func reSearch(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	p, str, err := unpackRegex(s, args, kw)
	if err != nil {
		return nil, err
	}
	idx, err := p.find(newPoll(thread, s.Name), str, 0, directScan)
	if err != nil || idx == nil {
		return starlark.None, err
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

func reFindall(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	p, str, err := unpackRegex(s, args, kw)
	if err != nil {
		return nil, err
	}
	var out []starlark.Value
	err = p.each(newPoll(thread, s.Name), str, -1, directScan, func(m []int) {
		if len(m) > 2 {
			m = m[2:] // the first group
		}
		if m[0] < 0 {
			out = append(out, starlark.String(""))
			return
		}
		out = append(out, starlark.String(str[m[0]:m[1]]))
	})
	if err != nil {
		return nil, err
	}
	return starlark.NewList(out), nil
}

// backref turns Python-style \1 group references into Go's ${1} and
// escapes a $ that does not start a group reference.
var backref = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\\(\d+)|\$\{[A-Za-z0-9_]+\}|\$`) })

func reSub(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var expr, repl, str string
	count := 0
	if err := s.Unpack(args, kw, &expr, &repl, &str, &count); err != nil {
		return nil, err
	}
	if count < 0 {
		return nil, fmt.Errorf("%s: count must be 0 or more, got %d", s.Name, count)
	}
	p, err := compileRegex(s.Name, expr)
	if err != nil {
		return nil, err
	}
	tmpl := backref().ReplaceAllStringFunc(repl, func(m string) string {
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
	err = p.each(newPoll(thread, s.Name), str, limit, directScan, func(idx []int) {
		out = append(out, str[last:idx[0]]...)
		out = p.re.ExpandString(out, tmpl, str, idx)
		last = idx[1]
	})
	if err != nil {
		return nil, err
	}
	out = append(out, str[last:]...)
	return starlark.String(out), nil
}
