package inventory

// This file reads Ansible's YAML inventory format.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

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
		if m := yamlLineErr().FindStringSubmatch(msg); m != nil {
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

var yamlLineErr = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^line (\d+): (.*)$`) })

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
			hosts, err := sectionPairs(file, sec, secAt, name, "%s: hosts: of group %s must be a mapping, got %s: write each host as `web1:` on its own line, its variables indented under it")
			if err != nil {
				return err
			}
			for _, h := range hosts {
				if err := ai.yamlHost(g, h.key, h.val); err != nil {
					return err
				}
			}
		case "children":
			kids, err := sectionPairs(file, sec, secAt, name, "%s: children: of group %s must be a mapping of groups, got %s: write each child as `name:` on its own line")
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
	names, vars, err := hostPattern(key.Value, at)
	if err != nil {
		return err
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

// sectionPairs returns the pairs of group's hosts: or children: section,
// at secAt. A lone name (hosts: web1, as Ansible allows) is a mapping of
// that name to nothing; anything else that is not a mapping is an error,
// notMapping formatted with secAt, group and what the section is.
func sectionPairs(file string, sec *yaml.Node, secAt, group, notMapping string) ([]yamlPair, error) {
	if sec.Kind == yaml.ScalarNode {
		sec = &yaml.Node{Kind: yaml.MappingNode, Line: sec.Line, Content: []*yaml.Node{sec, {Kind: yaml.ScalarNode, Tag: "!!null"}}}
	}
	if sec.Kind != yaml.MappingNode {
		return nil, fmt.Errorf(notMapping, secAt, group, yamlKind(sec))
	}
	return yamlPairs(file, sec)
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

// decoded is scalar n decoded as a T.
func decoded[T any](n *yaml.Node) (any, error) {
	var v T
	err := n.Decode(&v)
	return v, err
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
			return decoded[bool](n)
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("integer %s is too large", n.Value)
			}
			return i, nil
		case "!!float":
			return decoded[float64](n)
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
