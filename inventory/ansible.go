package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadAnsible reads an Ansible inventory file, INI or YAML, with the
// host_vars/ and group_vars/ directories beside it, and maps Ansible's
// connection variables to star-deploy's names and data keys. The package
// documentation lists what is read, how, and what is left out.
//
// A file ending in .yml, .yaml or .json is YAML, one ending in .ini or
// .cfg is INI; any other file is YAML when it parses as a YAML mapping,
// else INI (Ansible tries its yaml plugin before its ini plugin too).
func LoadAnsible(path string) (*Inventory, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", unwrapPathError(err, path))
	}
	if filepath.Base(path) == "ansible.cfg" {
		return nil, fmt.Errorf("%s: this is Ansible's configuration, not an inventory: name the inventory file its inventory= setting points to", path)
	}
	if isVault(src) {
		return nil, vaultError(path)
	}
	var ai *ansibleInv
	if isYAMLInventory(path, src) {
		ai, err = parseAnsibleYAML(path, src)
	} else {
		ai, err = parseAnsibleINI(path, src)
	}
	if err != nil {
		return nil, err
	}
	return ai.resolve(filepath.Dir(path))
}

// isYAMLInventory decides between Ansible's YAML and INI formats.
func isYAMLInventory(path string, src []byte) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yml", ".yaml", ".json":
		return true
	case ".ini", ".cfg":
		return false
	}
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 {
		return false
	}
	return deref(doc.Content[0]).Kind == yaml.MappingNode
}

func isVault(src []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(src), []byte("$ANSIBLE_VAULT;"))
}

func vaultError(at string) error {
	return fmt.Errorf("%s: encrypted with ansible-vault, which star-deploy cannot decrypt: decrypt it (ansible-vault decrypt) into a file kept out of version control, or pass the secret another way (--sudo-password, --password)", at)
}

// ansibleInv is an Ansible inventory as written: groups, hosts and the
// variables set in the inventory file itself, before children expansion,
// vars files and precedence.
type ansibleInv struct {
	file       string
	groups     map[string]*ansibleGroup
	groupOrder []string // order of first appearance
	hosts      map[string]*ansibleHost
	hostOrder  []string // order of first appearance
}

type ansibleGroup struct {
	name     string
	pos      string // where defined, or first named
	defined  bool   // INI: has a [name] or [name:children] section
	usedAt   string // INI: first [name:vars] section or children line, for the error when undefined
	usedHow  string // INI: "vars" or the parent's name
	vars     map[string]ansibleVal
	children []ansibleChild
	hosts    []string // Ansible host names, direct members only
}

type ansibleChild struct{ name, pos string }

type ansibleHost struct {
	name string // the Ansible inventory name
	pos  string
	vars map[string]ansibleVal
}

// ansibleVal is a variable's value and where it was set.
type ansibleVal struct {
	v   any
	pos string
}

func newAnsibleInv(file string) *ansibleInv {
	ai := &ansibleInv{file: file, groups: map[string]*ansibleGroup{}, hosts: map[string]*ansibleHost{}}
	for _, g := range []string{"all", "ungrouped"} {
		ai.group(g, "").defined = true
	}
	return ai
}

// group returns the group name, creating it (first named at pos) if needed.
func (ai *ansibleInv) group(name, pos string) *ansibleGroup {
	g, ok := ai.groups[name]
	if !ok {
		g = &ansibleGroup{name: name, pos: pos, vars: map[string]ansibleVal{}}
		ai.groups[name] = g
		ai.groupOrder = append(ai.groupOrder, name)
	}
	return g
}

// addHost adds host name to group g with vars; a host named again keeps
// its first position and takes the later values, as in Ansible.
func (ai *ansibleInv) addHost(g *ansibleGroup, name, pos string, vars map[string]ansibleVal) {
	h, ok := ai.hosts[name]
	if !ok {
		h = &ansibleHost{name: name, pos: pos, vars: map[string]ansibleVal{}}
		ai.hosts[name] = h
		ai.hostOrder = append(ai.hostOrder, name)
	}
	for k, v := range vars {
		h.vars[k] = v
	}
	if !slices.Contains(g.hosts, name) {
		g.hosts = append(g.hosts, name)
	}
}

func (g *ansibleGroup) addChild(child, pos string) {
	for _, c := range g.children {
		if c.name == child {
			return
		}
	}
	g.children = append(g.children, ansibleChild{child, pos})
}

// ---- INI ----

// iniSection matches a section header: [group], [group:vars],
// [group:children], optionally followed by a comment.
var iniSection = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$`)

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
			m := iniSection.FindStringSubmatch(line)
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
	names, port, err := expandHostPattern(toks[0].text)
	if err != nil {
		return fmt.Errorf("%s: %w", pos, err)
	}
	vars := map[string]ansibleVal{}
	if port != "" {
		n, _ := strconv.ParseInt(port, 10, 64)
		vars["ansible_port"] = ansibleVal{n, pos}
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

var iniInt = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)

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
	case iniInt.MatchString(s):
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

// ---- YAML ----

// parseAnsibleYAML reads Ansible's YAML inventory format: a mapping of
// groups, each with optional hosts:, children: and vars:.
func parseAnsibleYAML(file string, src []byte) (*ansibleInv, error) {
	ai := newAnsibleInv(file)
	root, err := parseYAMLDoc(file, src)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return ai, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: an Ansible YAML inventory is a mapping of groups (all:, with hosts:, children: and vars:), got %s", file, root.Line, yamlKind(root))
	}
	ps, err := yamlPairs(file, root)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if err := ai.yamlGroup(p.key, p.val, nil); err != nil {
			return nil, err
		}
	}
	return ai, nil
}

// parseYAMLDoc parses one YAML document and returns its root node, or nil
// for an empty document. Errors name file:line.
func parseYAMLDoc(file string, src []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("%s:%s: invalid YAML: %s", file, m[1], m[2])
		}
		return nil, fmt.Errorf("%s: invalid YAML: %s", file, msg)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

var yamlLineErr = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlGroup reads one group; path holds the names of its ancestors in the
// document, to refuse a group nested in itself.
func (ai *ansibleInv) yamlGroup(key, body *yaml.Node, path []string) error {
	file := ai.file
	at := fmt.Sprintf("%s:%d", file, key.Line)
	if key.Kind != yaml.ScalarNode || key.Value == "" {
		return fmt.Errorf("%s: a group name must be a non-empty string", at)
	}
	name := key.Value
	if slices.Contains(path, name) {
		return fmt.Errorf("%s: group %s is nested in itself (%s > %s): remove it from children:", at, name, strings.Join(path, " > "), name)
	}
	g := ai.group(name, at)
	if g.pos == "" {
		g.pos = at // all and ungrouped
	}
	g.defined = true
	if isNull(body) {
		return nil
	}
	if body.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: group %s must be a mapping with hosts:, children: and vars: (or empty), got %s", file, body.Line, name, yamlKind(body))
	}
	ps, err := yamlPairs(file, body)
	if err != nil {
		return err
	}
	for _, p := range ps {
		sec := p.val
		secAt := fmt.Sprintf("%s:%d", file, p.key.Line)
		if isNull(sec) {
			continue
		}
		switch p.key.Value {
		case "hosts":
			if sec.Kind == yaml.ScalarNode { // hosts: web1, as Ansible allows
				sec = &yaml.Node{Kind: yaml.MappingNode, Line: sec.Line, Content: []*yaml.Node{sec, {Kind: yaml.ScalarNode, Tag: "!!null"}}}
			}
			if sec.Kind != yaml.MappingNode {
				return fmt.Errorf("%s: hosts: of group %s must be a mapping, got %s: write each host as `web1:` on its own line, its variables indented under it", secAt, name, yamlKind(sec))
			}
			hosts, err := yamlPairs(file, sec)
			if err != nil {
				return err
			}
			for _, h := range hosts {
				if err := ai.yamlHost(g, h.key, h.val); err != nil {
					return err
				}
			}
		case "children":
			if sec.Kind == yaml.ScalarNode {
				sec = &yaml.Node{Kind: yaml.MappingNode, Line: sec.Line, Content: []*yaml.Node{sec, {Kind: yaml.ScalarNode, Tag: "!!null"}}}
			}
			if sec.Kind != yaml.MappingNode {
				return fmt.Errorf("%s: children: of group %s must be a mapping of groups, got %s: write each child as `name:` on its own line", secAt, name, yamlKind(sec))
			}
			kids, err := yamlPairs(file, sec)
			if err != nil {
				return err
			}
			for _, c := range kids {
				if c.key.Value == "all" {
					return fmt.Errorf("%s:%d: group all cannot be a child of %s: remove it", file, c.key.Line, name)
				}
				if err := ai.yamlGroup(c.key, c.val, append(path, name)); err != nil {
					return err
				}
				g.addChild(c.key.Value, fmt.Sprintf("%s:%d", file, c.key.Line))
			}
		case "vars":
			vars, err := yamlVars(file, sec, "group "+name)
			if err != nil {
				return err
			}
			for k, v := range vars {
				g.vars[k] = v
			}
		default:
			return fmt.Errorf("%s: unknown key %q in group %s: a group has only hosts:, children: and vars: (put a subgroup under children:, variables under vars:)", secAt, p.key.Value, name)
		}
	}
	return nil
}

// yamlHost reads one entry of hosts: (a pattern and its variables).
func (ai *ansibleInv) yamlHost(g *ansibleGroup, key, val *yaml.Node) error {
	at := fmt.Sprintf("%s:%d", ai.file, key.Line)
	if key.Kind != yaml.ScalarNode || key.Value == "" {
		return fmt.Errorf("%s: a host name must be a non-empty string", at)
	}
	names, port, err := expandHostPattern(key.Value)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	vars := map[string]ansibleVal{}
	if port != "" {
		n, _ := strconv.ParseInt(port, 10, 64)
		vars["ansible_port"] = ansibleVal{n, at}
	}
	if !isNull(val) {
		hv, err := yamlVars(ai.file, val, "host "+key.Value)
		if err != nil {
			return err
		}
		for k, v := range hv {
			vars[k] = v
		}
	}
	for _, n := range names {
		ai.addHost(g, n, at, vars)
	}
	return nil
}

// yamlVars reads a mapping of variables; what names it in errors.
func yamlVars(file string, n *yaml.Node, what string) (map[string]ansibleVal, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the variables of %s must be a mapping of names to values, got %s", file, n.Line, what, yamlKind(n))
	}
	ps, err := yamlPairs(file, n)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ansibleVal, len(ps))
	for _, p := range ps {
		at := fmt.Sprintf("%s:%d", file, p.key.Line)
		if p.key.Kind != yaml.ScalarNode || p.key.Value == "" {
			return nil, fmt.Errorf("%s: a variable name must be a non-empty string", at)
		}
		v, err := yamlValue(file, p.val)
		if err != nil {
			return nil, fmt.Errorf("%s: variable %s: %w", at, p.key.Value, err)
		}
		out[p.key.Value] = ansibleVal{v, at}
	}
	return out, nil
}

type yamlPair struct{ key, val *yaml.Node }

// yamlPairs returns the pairs of mapping n, with merge keys (<<: *anchor)
// expanded: merged pairs come first, so the mapping's own keys win.
func yamlPairs(file string, n *yaml.Node) ([]yamlPair, error) {
	var merged, own []yamlPair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.ShortTag() != "!!merge" {
			own = append(own, yamlPair{k, v})
			continue
		}
		srcs := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			srcs = nil
			for j := len(v.Content) - 1; j >= 0; j-- { // the first source wins
				srcs = append(srcs, deref(v.Content[j]))
			}
		}
		for _, s := range srcs {
			if s.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%s:%d: a merge key (<<) takes a mapping or a list of mappings, got %s", file, k.Line, yamlKind(s))
			}
			ps, err := yamlPairs(file, s)
			if err != nil {
				return nil, err
			}
			merged = append(merged, ps...)
		}
	}
	return append(merged, own...), nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return "a string"
		}
		return "a scalar (" + strings.TrimPrefix(n.ShortTag(), "!!") + ")"
	}
	return "a document"
}

// yamlValue converts a YAML value to inventory data. Like Ansible (which
// reads YAML 1.1), unquoted yes/no/on/off are booleans.
func yamlValue(file string, n *yaml.Node) (any, error) {
	n = deref(n)
	switch n.Kind {
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("integer %s is too large", n.Value)
			}
			return i, nil
		case "!!float":
			var f float64
			err := n.Decode(&f)
			return f, err
		case "!!str":
			if n.Style == 0 {
				switch n.Value {
				case "yes", "Yes", "YES", "on", "On", "ON":
					return true, nil
				case "no", "No", "NO", "off", "Off", "OFF":
					return false, nil
				}
			}
			return n.Value, nil
		case "!!timestamp", "!!binary", "!unsafe":
			return n.Value, nil
		case "!vault":
			return nil, fmt.Errorf("encrypted with ansible-vault (!vault), which star-deploy cannot decrypt: store it decrypted in a file kept out of version control, or pass it another way (--sudo-password, --password)")
		default:
			return nil, fmt.Errorf("unsupported YAML tag %s", tag)
		}
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := yamlValue(file, c)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yaml.MappingNode:
		ps, err := yamlPairs(file, n)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(ps))
		for _, p := range ps {
			if p.key.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping keys must be strings or numbers, got %s", p.key.Line, yamlKind(p.key))
			}
			v, err := yamlValue(file, p.val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.key.Value, err)
			}
			out[p.key.Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported YAML node")
}

// ---- vars files ----

// varsFiles finds the vars files of name in dir as Ansible's host_group_vars
// plugin does: the first of NAME, NAME.yml, NAME.yaml, NAME.json that
// exists; when it is a directory, every file in it (recursively, sorted,
// skipping hidden files and other extensions).
func varsFiles(dir, name string) ([]string, error) {
	for _, ext := range []string{"", ".yml", ".yaml", ".json"} {
		p := filepath.Join(dir, name+ext)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		if !fi.IsDir() {
			return []string{p}, nil
		}
		var out []string
		err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			base := d.Name()
			if f != p && strings.HasPrefix(base, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || strings.HasSuffix(base, "~") {
				return nil
			}
			switch filepath.Ext(base) {
			case "", ".yml", ".yaml", ".json":
				out = append(out, f)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		return out, nil
	}
	return nil, nil
}

// readVarsFile reads one host_vars or group_vars file: a YAML mapping.
func readVarsFile(path string) (map[string]ansibleVal, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", unwrapPathError(err, path))
	}
	if isVault(src) {
		return nil, vaultError(path)
	}
	root, err := parseYAMLDoc(path, src)
	if err != nil || root == nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: a vars file is a mapping of variable names to values, got %s", path, root.Line, yamlKind(root))
	}
	return yamlVars(path, root, filepath.Base(path))
}

// varsLoader reads and caches the vars of one directory (host_vars or
// group_vars) by host or group name.
type varsLoader struct {
	dir   string
	cache map[string]map[string]ansibleVal
}

func (l *varsLoader) vars(name string) (map[string]ansibleVal, error) {
	if v, ok := l.cache[name]; ok {
		return v, nil
	}
	files, err := varsFiles(l.dir, name)
	if err != nil {
		return nil, err
	}
	out := map[string]ansibleVal{}
	for _, f := range files {
		v, err := readVarsFile(f)
		if err != nil {
			return nil, err
		}
		for k, x := range v {
			out[k] = x
		}
	}
	l.cache[name] = out
	return out, nil
}

// ---- resolution ----

// rankedVal is a merged variable: its value, where it was set and the
// precedence of the layer that set it.
type rankedVal struct {
	ansibleVal
	rank int
}

// resolve expands children, merges variables by Ansible's precedence and
// maps each host to an Entry. dir holds host_vars/ and group_vars/.
func (ai *ansibleInv) resolve(dir string) (*Inventory, error) {
	if len(ai.hostOrder) == 0 {
		return nil, fmt.Errorf("%s: the inventory has no hosts", ai.file)
	}
	parents := map[string][]string{}
	for _, name := range ai.groupOrder {
		for _, c := range ai.groups[name].children {
			parents[c.name] = append(parents[c.name], name)
		}
	}
	if err := ai.checkCycles(); err != nil {
		return nil, err
	}
	depth := map[string]int{"all": 0}
	var depthOf func(string) int
	depthOf = func(g string) int {
		if d, ok := depth[g]; ok {
			return d
		}
		d := 1
		for _, p := range parents[g] {
			d = max(d, depthOf(p)+1)
		}
		depth[g] = d
		return d
	}
	priority := map[string]int64{}
	for _, name := range ai.groupOrder {
		priority[name] = 1
		if v, ok := ai.groups[name].vars["ansible_group_priority"]; ok {
			n, ok := intValue(v.v)
			if !ok {
				return nil, fmt.Errorf("%s: ansible_group_priority of group %s must be an integer", v.pos, name)
			}
			priority[name] = n
		}
	}
	// Each group's hosts, including those of its descendants.
	member := map[string]map[string]bool{}
	var membersOf func(string) map[string]bool
	membersOf = func(g string) map[string]bool {
		if m, ok := member[g]; ok {
			return m
		}
		m := map[string]bool{}
		for _, h := range ai.groups[g].hosts {
			m[h] = true
		}
		for _, c := range ai.groups[g].children {
			for h := range membersOf(c.name) {
				m[h] = true
			}
		}
		member[g] = m
		return m
	}

	groupVars := &varsLoader{dir: filepath.Join(dir, "group_vars"), cache: map[string]map[string]ansibleVal{}}
	hostVars := &varsLoader{dir: filepath.Join(dir, "host_vars"), cache: map[string]map[string]ansibleVal{}}
	inv := &Inventory{File: ai.file}
	byKey := map[string]int{} // canonical star-deploy name -> index in inv.Hosts
	hostGroups := map[string][]string{}
	for _, hname := range ai.hostOrder {
		h := ai.hosts[hname]
		var groups []string // Entry.Groups, in group order
		for _, g := range ai.groupOrder {
			if g != "all" && g != "ungrouped" && membersOf(g)[hname] {
				groups = append(groups, g)
			}
		}
		prec := slices.Clone(groups)
		if len(prec) == 0 {
			prec = []string{"ungrouped"}
		}
		sort.Slice(prec, func(i, j int) bool {
			a, b := prec[i], prec[j]
			if depthOf(a) != depthOf(b) {
				return depthOf(a) < depthOf(b)
			}
			if priority[a] != priority[b] {
				return priority[a] < priority[b]
			}
			return a < b
		})
		// Ansible's order, weakest first: the inventory's all vars and group
		// vars, group_vars/all, group_vars/GROUP, the inventory's host vars,
		// host_vars/HOST.
		var layers []map[string]ansibleVal
		layers = append(layers, ai.groups["all"].vars)
		for _, g := range prec {
			layers = append(layers, ai.groups[g].vars)
		}
		for _, g := range append([]string{"all"}, prec...) {
			v, err := groupVars.vars(g)
			if err != nil {
				return nil, err
			}
			layers = append(layers, v)
		}
		v, err := hostVars.vars(hname)
		if err != nil {
			return nil, err
		}
		layers = append(layers, h.vars, v)
		merged := map[string]rankedVal{}
		for rank, l := range layers {
			for k, x := range l {
				merged[k] = rankedVal{x, rank}
			}
		}
		e, err := ansibleEntry(h, merged, len(layers))
		if err != nil {
			return nil, err
		}
		e.Groups = groups
		key, err := canonical(e.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: host %s: %w", h.pos, hname, err)
		}
		if i, dup := byKey[key]; dup {
			prev := inv.Hosts[i]
			return nil, fmt.Errorf("%s: host %s runs on %s, as host %s at %s does: give each host its own ansible_host, or keep one of them", h.pos, hname, e.Name, prev.Data["inventory_hostname"], prev.Pos)
		}
		byKey[key] = len(inv.Hosts)
		inv.Hosts = append(inv.Hosts, e)
		hostGroups[hname] = groups
	}
	for _, g := range ai.groupOrder {
		if g == "all" || g == "ungrouped" {
			continue
		}
		grp := Group{Name: g, Pos: ai.groups[g].pos, Hosts: []string{}}
		for i, hname := range ai.hostOrder {
			if slices.Contains(hostGroups[hname], g) {
				grp.Hosts = append(grp.Hosts, inv.Hosts[i].Name)
			}
		}
		inv.Groups = append(inv.Groups, grp)
	}
	return inv, nil
}

// checkCycles refuses a group that is its own descendant through children.
func (ai *ansibleInv) checkCycles() error {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var path []string
	var visit func(string) error
	visit = func(g string) error {
		state[g] = visiting
		path = append(path, g)
		for _, c := range ai.groups[g].children {
			switch state[c.name] {
			case visiting:
				i := slices.Index(path, c.name)
				return fmt.Errorf("%s: group %s is its own descendant (%s > %s): remove one of these children", c.pos, c.name, strings.Join(path[i:], " > "), c.name)
			case 0:
				if err := visit(c.name); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[g] = done
		return nil
	}
	for _, g := range ai.groupOrder {
		if state[g] == 0 {
			if err := visit(g); err != nil {
				return err
			}
		}
	}
	return nil
}

// ansibleEntry maps an Ansible host and its merged variables to an Entry:
// the connection decides the name, connection variables become data keys
// and other ansible_* variables are dropped. top is a rank above every
// layer's.
func ansibleEntry(h *ansibleHost, merged map[string]rankedVal, top int) (Entry, error) {
	e := Entry{Name: h.name, Pos: h.pos, Data: map[string]any{}, DataPos: map[string]string{}}
	data := map[string]rankedVal{}
	for k, v := range merged {
		if !strings.HasPrefix(k, "ansible_") {
			data[k] = v
		}
	}
	// get returns the strongest of the Ansible variables keys (on a tie,
	// the later key) and its name.
	get := func(keys ...string) (rankedVal, string, bool) {
		var best rankedVal
		name := ""
		for _, k := range keys {
			if v, ok := merged[k]; ok && (name == "" || v.rank >= best.rank) {
				best, name = v, k
			}
		}
		return best, name, name != ""
	}
	// set sets data key k from Ansible variable src unless the inventory
	// sets k itself with a stronger precedence.
	set := func(k string, src rankedVal, v any) {
		if cur, ok := data[k]; ok && cur.rank > src.rank {
			return
		}
		data[k] = rankedVal{ansibleVal{v, src.pos}, src.rank}
	}
	setString := func(k string, srcKeys ...string) error {
		src, name, ok := get(srcKeys...)
		if !ok {
			return nil
		}
		s, err := scalarString(src.v)
		if err != nil {
			return fmt.Errorf("%s: host %s: %s %w", src.pos, h.name, name, err)
		}
		set(k, src, s)
		return nil
	}

	conn := "ssh"
	if c, _, ok := get("ansible_connection"); ok {
		s, err := scalarString(c.v)
		if err != nil {
			return e, fmt.Errorf("%s: host %s: ansible_connection %w", c.pos, h.name, err)
		}
		conn = strings.TrimPrefix(strings.TrimPrefix(s, "ansible.builtin."), "community.docker.")
		switch conn {
		case "ssh", "paramiko", "paramiko_ssh", "smart":
			conn = "ssh"
		case "local":
		case "docker", "docker_api":
			conn = "docker"
		default:
			return e, fmt.Errorf("%s: host %s: ansible_connection %s is not supported: star-deploy connects with ssh, local or docker", c.pos, h.name, s)
		}
	}
	var err error
	switch conn {
	case "ssh":
		for _, m := range []struct {
			key string
			src []string
		}{
			{"ssh_hostname", []string{"ansible_host", "ansible_ssh_host"}},
			{"ssh_port", []string{"ansible_port", "ansible_ssh_port"}},
			{"ssh_user", []string{"ansible_user", "ansible_ssh_user"}},
			{"ssh_password", []string{"ansible_password", "ansible_ssh_pass", "ansible_ssh_password"}},
			{"ssh_key", []string{"ansible_private_key_file", "ansible_ssh_private_key_file"}},
			{"ssh_connect_timeout", []string{"ansible_timeout", "ansible_ssh_timeout"}},
			{"ssh_connect_retries", []string{"ansible_ssh_retries"}},
		} {
			if err := setString(m.key, m.src...); err != nil {
				return e, err
			}
		}
		if src, name, ok := get("ansible_host_key_checking", "ansible_ssh_host_key_checking"); ok {
			b, err := ansibleBool(src.v)
			if err != nil {
				return e, fmt.Errorf("%s: host %s: %s %w", src.pos, h.name, name, err)
			}
			if !b {
				set("ssh_strict_host_key_checking", src, "no")
			}
		}
	case "local":
		e.Name = "@local"
	case "docker":
		container := h.name
		if src, name, ok := get("ansible_host", "ansible_docker_host"); ok {
			if container, err = scalarString(src.v); err != nil {
				return e, fmt.Errorf("%s: host %s: %s %w", src.pos, h.name, name, err)
			}
		}
		e.Name = "@docker/" + container
		if err := setString("docker_user", "ansible_user", "ansible_docker_user"); err != nil {
			return e, err
		}
	}
	if err := mapBecome(h.name, get, set); err != nil {
		return e, err
	}
	if err := setString("sudo_password", "ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"); err != nil {
		return e, err
	}
	data["inventory_hostname"] = rankedVal{ansibleVal{h.name, h.pos}, top}
	for k, v := range data {
		e.Data[k], e.DataPos[k] = v.v, v.pos
	}
	return e, nil
}

// mapBecome maps ansible_become, ansible_become_method and
// ansible_become_user to the sudo, su_user and doas control keys. The user
// is mapped only when become is on: star-deploy's sudo_user implies sudo.
func mapBecome(host string, get func(...string) (rankedVal, string, bool), set func(string, rankedVal, any)) error {
	src, _, ok := get("ansible_become")
	if !ok {
		return nil
	}
	on, err := ansibleBool(src.v)
	if err != nil {
		return fmt.Errorf("%s: host %s: ansible_become %w", src.pos, host, err)
	}
	method, user := "sudo", ""
	if m, _, ok := get("ansible_become_method"); ok {
		if method, err = scalarString(m.v); err != nil {
			return fmt.Errorf("%s: host %s: ansible_become_method %w", m.pos, host, err)
		}
	}
	u, _, hasUser := get("ansible_become_user")
	if hasUser {
		if user, err = scalarString(u.v); err != nil {
			return fmt.Errorf("%s: host %s: ansible_become_user %w", u.pos, host, err)
		}
	}
	switch strings.TrimPrefix(method, "ansible.builtin.") {
	case "sudo":
		set("sudo", src, on)
		if on && hasUser {
			set("sudo_user", u, user)
		}
	case "doas":
		set("doas", src, on)
		if on && hasUser {
			set("doas_user", u, user)
		}
	case "su":
		if on {
			if user == "" {
				user = "root"
			}
			set("su_user", src, user)
		}
	default:
		if on {
			return fmt.Errorf("%s: host %s: ansible_become_method %s is not supported: star-deploy becomes another user with sudo, su or doas", src.pos, host, method)
		}
	}
	return nil
}

// scalarString formats a scalar variable for a connector data key (which
// holds strings). Its error never shows the value, which may be a secret.
func scalarString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool, int64, float64:
		return fmt.Sprint(v), nil
	case nil:
		return "", fmt.Errorf("is empty: give it a value or remove it")
	}
	return "", fmt.Errorf("must be a single value, not a list or mapping")
}

// ansibleBool parses a boolean as Ansible's boolean() does.
func ansibleBool(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case int64:
		if v == 0 || v == 1 {
			return v == 1, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "yes", "on", "1", "true", "t", "y":
			return true, nil
		case "no", "off", "0", "false", "f", "n", "":
			return false, nil
		}
	}
	return false, fmt.Errorf("must be true or false")
}

func intValue(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// isSecretName reports whether a variable holds a secret, so that errors
// never quote its value: by star-deploy's rule (connectors.IsSecretKey,
// which inventory, a leaf, cannot import; TestSecretNamesCoverStarDeploys
// keeps them in step), in any case, or by Ansible's "_pass"
// (ansible_ssh_pass).
func isSecretName(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "password") || strings.Contains(k, "passphrase") || strings.HasSuffix(k, "_pass")
}
