package inventory

// This file reads Ansible's INI inventory format.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// iniSection matches a section header: [group], [group:vars],
// [group:children], optionally followed by a comment.
var iniSection = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$`) })

// parseAnsibleINI reads Ansible's INI inventory format.
func parseAnsibleINI(file string, src []byte) (*ansibleInv, error) {
	ai := newAnsibleInv(file)
	cur, kind := ai.groups["ungrouped"], "hosts"
	for i, raw := range strings.Split(string(src), "\n") {
		pos := fmt.Sprintf("%s:%d", file, i+1)
		line := strings.TrimSpace(raw)
		if i == 0 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			m := iniSection().FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s: malformed section header %q: write [GROUP], [GROUP:vars] or [GROUP:children], with no spaces in the group name", pos, line)
			}
			name, k := m[1], m[2]
			switch k {
			case "", "children":
				kind = "hosts"
				if k == "children" {
					kind = "children"
				}
				cur = ai.group(name, pos)
				if !cur.defined {
					cur.defined, cur.pos = true, pos
				}
			case "vars":
				kind = "vars"
				cur = ai.group(name, pos)
				if !cur.defined && cur.usedAt == "" {
					cur.usedAt, cur.usedHow = pos, "vars"
				}
			default:
				return nil, fmt.Errorf("%s: section [%s:%s] has an unknown type %q: write [%s] for hosts, [%s:vars] or [%s:children]", pos, name, k, k, name, name, name)
			}
			continue
		}
		var err error
		switch kind {
		case "hosts":
			err = ai.iniHostLine(cur, line, pos)
		case "vars":
			err = iniVarLine(cur, line, pos)
		case "children":
			fields := strings.Fields(stripComment(line))
			if len(fields) != 1 {
				return nil, fmt.Errorf("%s: [%s:children] lists one group name per line, got %q", pos, cur.name, line)
			}
			child := fields[0]
			if child == "all" || child == cur.name {
				return nil, fmt.Errorf("%s: group %s cannot be a child of %s: remove the line", pos, child, cur.name)
			}
			c := ai.group(child, pos)
			if !c.defined && c.usedAt == "" {
				c.usedAt, c.usedHow = pos, cur.name
			}
			cur.addChild(child, pos)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, name := range ai.groupOrder {
		g := ai.groups[name]
		if g.defined {
			continue
		}
		if g.usedHow == "vars" {
			return nil, fmt.Errorf("%s: [%s:vars] sets variables of group %s, which is not defined: add a [%s] section (it may be empty) or remove these variables", g.usedAt, name, name, name)
		}
		return nil, fmt.Errorf("%s: [%s:children] names group %s, which is not defined: add a [%s] section (it may be empty) or remove the line", g.usedAt, g.usedHow, name, name)
	}
	return ai, nil
}

// iniHostLine reads "PATTERN [key=value ...]" in a hosts section.
func (ai *ansibleInv) iniHostLine(g *ansibleGroup, line, pos string) error {
	toks, err := splitINILine(line)
	if err != nil {
		return fmt.Errorf("%s: %w", pos, err)
	}
	if len(toks) == 0 {
		return nil // only a comment
	}
	names, vars, err := hostPattern(toks[0].text, pos)
	if err != nil {
		return err
	}
	for i, t := range toks[1:] {
		k, v, ok := strings.Cut(t.text, "=")
		if !ok || k == "" {
			what := strconv.Quote(t.text)
			if pk, _, ok := strings.Cut(toks[i].text, "="); i > 0 && ok && isSecretName(pk) {
				what = "the word after " + pk + "=..." // part of a secret, maybe: never quote it
			}
			return fmt.Errorf("%s: host %s: %s is not a variable: write host variables as key=value, with no spaces around = (quote values that contain spaces)", pos, toks[0].text, what)
		}
		vars[k] = ansibleVal{iniValue(v, t.quoted), pos}
	}
	for _, name := range names {
		ai.addHost(g, name, pos, vars)
	}
	return nil
}

// iniVarLine reads "key=value" in a [group:vars] section. The value is the
// rest of the line: quoted, or unquoted up to a " #" comment.
func iniVarLine(g *ansibleGroup, line, pos string) error {
	k, v, ok := strings.Cut(line, "=")
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		what := strconv.Quote(line)
		if f := strings.Fields(k); len(f) > 0 && isSecretName(f[0]) {
			what = "a line starting with " + f[0] // the rest may be a secret: never quote it
		}
		return fmt.Errorf("%s: [%s:vars] holds variables, one key=value per line, got %s: put hosts in a [%s] section", pos, g.name, what, g.name)
	}
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
		toks, err := splitINILine(v)
		if err != nil {
			return fmt.Errorf("%s: variable %s: %w", pos, k, err)
		}
		if len(toks) != 1 {
			return fmt.Errorf("%s: variable %s: text after the closing quote: quote the whole value", pos, k)
		}
		g.vars[k] = ansibleVal{toks[0].text, pos}
		return nil
	}
	g.vars[k] = ansibleVal{iniValue(strings.TrimSpace(stripComment(v)), false), pos}
	return nil
}

// stripComment removes a comment that starts with # after whitespace.
func stripComment(s string) string {
	if strings.HasPrefix(s, "#") {
		return ""
	}
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return s[:i]
		}
	}
	return s
}

var iniInt = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`) })

// iniValue types an INI value: unquoted true/false (any case) is a bool,
// an unquoted decimal integer without leading zeros an int64, anything
// else (quoted values included) a string.
func iniValue(s string, quoted bool) any {
	if quoted {
		return s
	}
	switch {
	case strings.EqualFold(s, "true"):
		return true
	case strings.EqualFold(s, "false"):
		return false
	case iniInt().MatchString(s):
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return s
}

type iniToken struct {
	text   string
	quoted bool // part of the text after its first = was quoted
}

// splitINILine splits a host line into words as a POSIX shell would
// (Ansible uses shlex): whitespace separates words, '...' and "..." quote,
// a backslash escapes the next character outside single quotes, and a #
// at the start of a word starts a comment.
func splitINILine(line string) ([]iniToken, error) {
	var toks []iniToken
	var b strings.Builder
	in, eq, quoted := false, false, false
	flush := func() {
		if in {
			toks = append(toks, iniToken{b.String(), quoted})
		}
		b.Reset()
		in, eq, quoted = false, false, false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		case c == '#' && !in:
			return toks, nil
		case c == '\'' || c == '"':
			in, quoted = true, quoted || eq
			end := i + 1
			for ; end < len(line) && line[end] != c; end++ {
				if c == '"' && line[end] == '\\' && end+1 < len(line) && strings.IndexByte(`"\$`+"`", line[end+1]) >= 0 {
					end++
				}
				b.WriteByte(line[end])
			}
			if end == len(line) {
				return nil, fmt.Errorf("unterminated %c quote: close it on the same line", c)
			}
			i = end
		case c == '\\' && i+1 < len(line):
			in = true
			i++
			b.WriteByte(line[i])
		default:
			in = true
			if c == '=' {
				eq = true
			}
			b.WriteByte(c)
		}
	}
	flush()
	return toks, nil
}

// hostPattern expands a host pattern written at pos into its host names
// and the variables it sets: ansible_port for a pattern ending in :PORT.
func hostPattern(pattern, pos string) ([]string, map[string]ansibleVal, error) {
	names, port, err := expandHostPattern(pattern)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", pos, err)
	}
	vars := map[string]ansibleVal{}
	if port != "" {
		n, _ := strconv.ParseInt(port, 10, 64)
		vars["ansible_port"] = ansibleVal{n, pos}
	}
	return names, vars, nil
}

// expandHostPattern expands Ansible's host ranges (web[01:03], db-[a:c],
// [1:9:2] with a step) and splits off a ":PORT" suffix.
func expandHostPattern(pattern string) (names []string, port string, err error) {
	host := pattern
	if i := strings.LastIndexByte(pattern, ':'); i > 0 && i < len(pattern)-1 {
		p := pattern[i+1:]
		if strings.Trim(p, "0123456789") == "" && !hasColonOutsideBrackets(pattern[:i]) {
			host, port = pattern[:i], p
		}
	}
	names, err = expandRanges(host)
	if err != nil {
		return nil, "", fmt.Errorf("host pattern %q: %w", pattern, err)
	}
	return names, port, nil
}

func hasColonOutsideBrackets(s string) bool {
	depth := 0
	for _, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				return true
			}
		}
	}
	return false
}

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandRanges expands the first [BEGIN:END(:STEP)] of s, then the rest,
// as Ansible's expand_hostname_range does.
func expandRanges(s string) ([]string, error) {
	open := strings.IndexByte(s, '[')
	if open < 0 {
		if strings.IndexByte(s, ']') >= 0 {
			return nil, fmt.Errorf("] without [: a range is [BEGIN:END], e.g. web[01:20]")
		}
		return []string{s}, nil
	}
	end := strings.IndexByte(s[open:], ']')
	if end < 0 {
		return nil, fmt.Errorf("[ without ]: a range is [BEGIN:END], e.g. web[01:20]")
	}
	head, spec, tail := s[:open], s[open+1:open+end], s[open+end+1:]
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("range [%s]: write [BEGIN:END] or [BEGIN:END:STEP], e.g. web[01:20] or db-[a:f]", spec)
	}
	beg, last, step := parts[0], parts[1], 1
	if beg == "" {
		beg = "0"
	}
	if last == "" {
		return nil, fmt.Errorf("range [%s] has no end: write [BEGIN:END]", spec)
	}
	if len(parts) == 3 {
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("range [%s]: the step must be a positive integer", spec)
		}
		step = n
	}
	var seq []string
	ib, ie := strings.Index(asciiLetters, beg), strings.Index(asciiLetters, last)
	if len(beg) == 1 && len(last) == 1 && ib >= 0 && ie >= 0 {
		if ib > ie {
			return nil, fmt.Errorf("range [%s]: the beginning comes after the end", spec)
		}
		for i := ib; i <= ie; i += step {
			seq = append(seq, asciiLetters[i:i+1])
		}
	} else {
		b, err1 := strconv.Atoi(beg)
		e, err2 := strconv.Atoi(last)
		if err1 != nil || err2 != nil || b < 0 || e < 0 {
			return nil, fmt.Errorf("range [%s]: the bounds must be two numbers or two single letters", spec)
		}
		width := 0
		if len(beg) > 1 && beg[0] == '0' {
			if len(beg) != len(last) {
				return nil, fmt.Errorf("range [%s]: a zero-padded range needs bounds of the same width, e.g. [01:20]", spec)
			}
			width = len(beg)
		}
		if b > e {
			return nil, fmt.Errorf("range [%s]: the beginning comes after the end", spec)
		}
		if (e-b)/step >= 100_000 {
			return nil, fmt.Errorf("range [%s] has more than 100000 hosts", spec)
		}
		for i := b; i <= e; i += step {
			seq = append(seq, fmt.Sprintf("%0*d", width, i))
		}
	}
	rest, err := expandRanges(tail)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, x := range seq {
		for _, r := range rest {
			out = append(out, head+x+r)
		}
	}
	return out, nil
}
