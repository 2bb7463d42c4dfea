package inventory

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
