package inventory

// This file merges an Ansible inventory's variables by Ansible's
// precedence and maps each host to an Entry.

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

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
	if err := ai.checkCycles(); err != nil {
		return nil, err
	}
	t, err := ai.newTree()
	if err != nil {
		return nil, err
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
			if g != "all" && g != "ungrouped" && t.membersOf(g)[hname] {
				groups = append(groups, g)
			}
		}
		layers, err := ai.layers(h, t.precedence(groups), groupVars, hostVars)
		if err != nil {
			return nil, err
		}
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
	ai.addGroups(inv, hostGroups)
	return inv, nil
}

// groupTree answers questions about the group hierarchy: how deep a group
// is, its ansible_group_priority and its hosts. Answers are memoised.
type groupTree struct {
	ai       *ansibleInv
	parents  map[string][]string
	depth    map[string]int
	priority map[string]int64
	member   map[string]map[string]bool
}

func (ai *ansibleInv) newTree() (*groupTree, error) {
	t := &groupTree{ai: ai, parents: map[string][]string{}, depth: map[string]int{"all": 0},
		priority: map[string]int64{}, member: map[string]map[string]bool{}}
	for _, name := range ai.groupOrder {
		for _, c := range ai.groups[name].children {
			t.parents[c.name] = append(t.parents[c.name], name)
		}
	}
	for _, name := range ai.groupOrder {
		t.priority[name] = 1
		if v, ok := ai.groups[name].vars["ansible_group_priority"]; ok {
			n, ok := intValue(v.v)
			if !ok {
				return nil, fmt.Errorf("%s: ansible_group_priority of group %s must be an integer", v.pos, name)
			}
			t.priority[name] = n
		}
	}
	return t, nil
}

// depthOf is the length of the longest path from all down to g.
func (t *groupTree) depthOf(g string) int {
	if d, ok := t.depth[g]; ok {
		return d
	}
	d := 1
	for _, p := range t.parents[g] {
		d = max(d, t.depthOf(p)+1)
	}
	t.depth[g] = d
	return d
}

// membersOf returns g's hosts, including those of its descendants.
func (t *groupTree) membersOf(g string) map[string]bool {
	if m, ok := t.member[g]; ok {
		return m
	}
	m := map[string]bool{}
	for _, h := range t.ai.groups[g].hosts {
		m[h] = true
	}
	for _, c := range t.ai.groups[g].children {
		for h := range t.membersOf(c.name) {
			m[h] = true
		}
	}
	t.member[g] = m
	return m
}

// precedence orders a host's groups weakest first, as Ansible merges them:
// by depth, then ansible_group_priority, then name. A host in no group is
// in ungrouped.
func (t *groupTree) precedence(groups []string) []string {
	prec := slices.Clone(groups)
	if len(prec) == 0 {
		prec = []string{"ungrouped"}
	}
	sort.Slice(prec, func(i, j int) bool {
		a, b := prec[i], prec[j]
		if t.depthOf(a) != t.depthOf(b) {
			return t.depthOf(a) < t.depthOf(b)
		}
		if t.priority[a] != t.priority[b] {
			return t.priority[a] < t.priority[b]
		}
		return a < b
	})
	return prec
}

// layers returns a host's variable layers in Ansible's order, weakest
// first: the inventory's all vars and group vars, group_vars/all,
// group_vars/GROUP, the inventory's host vars, host_vars/HOST.
func (ai *ansibleInv) layers(h *ansibleHost, prec []string, groupVars, hostVars *varsLoader) ([]map[string]ansibleVal, error) {
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
	v, err := hostVars.vars(h.name)
	if err != nil {
		return nil, err
	}
	return append(layers, h.vars, v), nil
}

// addGroups lists the inventory's groups but all and ungrouped, each with
// its hosts' star-deploy names.
func (ai *ansibleInv) addGroups(inv *Inventory, hostGroups map[string][]string) {
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
	hv := &hostVars{host: h.name, merged: merged, data: map[string]rankedVal{}}
	for k, v := range merged {
		if !strings.HasPrefix(k, "ansible_") {
			hv.data[k] = v
		}
	}
	conn, err := hv.connection()
	if err != nil {
		return e, err
	}
	switch conn {
	case "ssh":
		err = hv.mapSSH()
	case "local":
		e.Name = "@local"
	case "docker":
		e.Name, err = hv.mapDocker()
	}
	if err != nil {
		return e, err
	}
	if err := mapBecome(h.name, hv.get, hv.set); err != nil {
		return e, err
	}
	if err := hv.setString("sudo_password", "ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"); err != nil {
		return e, err
	}
	hv.data["inventory_hostname"] = rankedVal{ansibleVal{h.name, h.pos}, top}
	for k, v := range hv.data {
		e.Data[k], e.DataPos[k] = v.v, v.pos
	}
	return e, nil
}

// hostVars maps one host's merged Ansible variables (merged) to data keys
// (data).
type hostVars struct {
	host   string
	merged map[string]rankedVal
	data   map[string]rankedVal
}

// get returns the strongest of the Ansible variables keys (on a tie, the
// later key) and its name.
func (hv *hostVars) get(keys ...string) (rankedVal, string, bool) {
	var best rankedVal
	name := ""
	for _, k := range keys {
		if v, ok := hv.merged[k]; ok && (name == "" || v.rank >= best.rank) {
			best, name = v, k
		}
	}
	return best, name, name != ""
}

// set sets data key k from Ansible variable src unless the inventory sets
// k itself with a stronger precedence.
func (hv *hostVars) set(k string, src rankedVal, v any) {
	if cur, ok := hv.data[k]; ok && cur.rank > src.rank {
		return
	}
	hv.data[k] = rankedVal{ansibleVal{v, src.pos}, src.rank}
}

// setString sets data key k from the strongest of srcKeys, as a string.
func (hv *hostVars) setString(k string, srcKeys ...string) error {
	src, name, ok := hv.get(srcKeys...)
	if !ok {
		return nil
	}
	s, err := scalarString(src.v)
	if err != nil {
		return fmt.Errorf("%s: host %s: %s %w", src.pos, hv.host, name, err)
	}
	hv.set(k, src, s)
	return nil
}

// connection returns the connector of ansible_connection: ssh (the
// default), local or docker.
func (hv *hostVars) connection() (string, error) {
	c, _, ok := hv.get("ansible_connection")
	if !ok {
		return "ssh", nil
	}
	s, err := scalarString(c.v)
	if err != nil {
		return "", fmt.Errorf("%s: host %s: ansible_connection %w", c.pos, hv.host, err)
	}
	switch conn := strings.TrimPrefix(strings.TrimPrefix(s, "ansible.builtin."), "community.docker."); conn {
	case "ssh", "paramiko", "paramiko_ssh", "smart":
		return "ssh", nil
	case "local", "docker":
		return conn, nil
	case "docker_api":
		return "docker", nil
	}
	return "", fmt.Errorf("%s: host %s: ansible_connection %s is not supported: star-deploy connects with ssh, local or docker", c.pos, hv.host, s)
}

// sshKeys maps each ssh_* data key to the Ansible variables that set it.
var sshKeys = []struct {
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
}

// mapSSH maps the ssh connection's variables to ssh_* data keys.
func (hv *hostVars) mapSSH() error {
	for _, m := range sshKeys {
		if err := hv.setString(m.key, m.src...); err != nil {
			return err
		}
	}
	if src, name, ok := hv.get("ansible_host_key_checking", "ansible_ssh_host_key_checking"); ok {
		b, err := ansibleBool(src.v)
		if err != nil {
			return fmt.Errorf("%s: host %s: %s %w", src.pos, hv.host, name, err)
		}
		if !b {
			hv.set("ssh_strict_host_key_checking", src, "no")
		}
	}
	return nil
}

// mapDocker returns the star-deploy name of a docker host and maps its
// user.
func (hv *hostVars) mapDocker() (string, error) {
	container := hv.host
	if src, name, ok := hv.get("ansible_host", "ansible_docker_host"); ok {
		var err error
		if container, err = scalarString(src.v); err != nil {
			return "", fmt.Errorf("%s: host %s: %s %w", src.pos, hv.host, name, err)
		}
	}
	return "@docker/" + container, hv.setString("docker_user", "ansible_user", "ansible_docker_user")
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
