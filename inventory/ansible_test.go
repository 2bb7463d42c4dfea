package inventory

import (
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const ansibleDir = "testdata/ansible"

// loadAnsible loads testdata/ansible/name, failing the test on error.
func loadAnsible(tb testing.TB, name string) *Inventory {
	tb.Helper()
	inv, err := LoadAnsible(filepath.Join(ansibleDir, name))
	if err != nil {
		tb.Fatalf("LoadAnsible(%s): %v", name, err)
	}
	checkInventory(tb, inv)
	return inv
}

// checkInventory checks what holds for every loaded Ansible inventory.
func checkInventory(tb testing.TB, inv *Inventory) {
	tb.Helper()
	names := map[string]bool{}
	for _, e := range inv.Hosts {
		names[e.Name] = true
		if e.Data == nil || e.Pos == "" {
			tb.Errorf("host %s: Data %v, Pos %q: want data and a position", e.Name, e.Data, e.Pos)
		}
		if _, err := canonical(e.Name); err != nil {
			tb.Errorf("host %s: %v", e.Name, err)
		}
		for k := range e.Data {
			if strings.HasPrefix(k, "ansible_") {
				tb.Errorf("host %s: data key %s should have been mapped or dropped", e.Name, k)
			}
			if e.DataPos[k] == "" {
				tb.Errorf("host %s: data key %s has no position", e.Name, k)
			}
		}
		if slices.Contains(e.Groups, "all") || slices.Contains(e.Groups, "ungrouped") {
			tb.Errorf("host %s: Groups %v lists all or ungrouped", e.Name, e.Groups)
		}
	}
	if len(names) != len(inv.Hosts) {
		tb.Errorf("a host is listed twice: %v", inv.Hosts)
	}
	var order []string
	for _, g := range inv.Groups {
		order = append(order, g.Name)
		var want []string
		for _, e := range inv.Hosts {
			if slices.Contains(e.Groups, g.Name) {
				want = append(want, e.Name)
			}
		}
		if !slices.Equal(g.Hosts, want) {
			tb.Errorf("group %s: Hosts %q, but the hosts that list it are %q", g.Name, g.Hosts, want)
		}
		if g.Pos == "" {
			tb.Errorf("group %s has no position", g.Name)
		}
	}
	for _, e := range inv.Hosts { // Entry.Groups follows Inventory.Groups
		var idx []int
		for _, g := range e.Groups {
			idx = append(idx, slices.Index(order, g))
		}
		if slices.Contains(idx, -1) || !slices.IsSorted(idx) {
			tb.Errorf("host %s: Groups %v not a subsequence of the inventory's groups %v", e.Name, e.Groups, order)
		}
	}
}

func hostByName(tb testing.TB, inv *Inventory, name string) Entry {
	tb.Helper()
	for _, e := range inv.Hosts {
		if e.Name == name {
			return e
		}
	}
	tb.Fatalf("%s: no host %s", inv.File, name)
	return Entry{}
}

// TestAnsibleINIAndYAMLAgree loads the INI and YAML versions of the same
// inventories and compares hosts, groups and data (not positions or
// order, which follow each file).
func TestAnsibleINIAndYAMLAgree(t *testing.T) {
	for _, dir := range []string{"basic", "precedence"} {
		t.Run(dir, func(t *testing.T) {
			ini := loadAnsible(t, dir+"/hosts.ini")
			yml := loadAnsible(t, dir+"/hosts.yml")
			type host struct {
				Groups []string
				Data   map[string]any
			}
			hosts := func(inv *Inventory) map[string]host {
				out := map[string]host{}
				for _, e := range inv.Hosts {
					out[e.Name] = host{slices.Sorted(slices.Values(e.Groups)), e.Data}
				}
				return out
			}
			groups := func(inv *Inventory) map[string][]string {
				out := map[string][]string{}
				for _, g := range inv.Groups {
					out[g.Name] = slices.Sorted(slices.Values(g.Hosts))
				}
				return out
			}
			hi, hy := hosts(ini), hosts(yml)
			for _, name := range slices.Sorted(maps.Keys(hi)) {
				if !reflect.DeepEqual(hi[name], hy[name]) {
					t.Errorf("host %s:\n ini  %v\n yaml %v", name, hi[name], hy[name])
				}
			}
			if !slices.Equal(slices.Sorted(maps.Keys(hi)), slices.Sorted(maps.Keys(hy))) {
				t.Errorf("hosts: ini %v, yaml %v", slices.Sorted(maps.Keys(hi)), slices.Sorted(maps.Keys(hy)))
			}
			if gi, gy := groups(ini), groups(yml); !reflect.DeepEqual(gi, gy) {
				t.Errorf("groups:\n ini  %v\n yaml %v", gi, gy)
			}
		})
	}
}

func TestAnsibleBasic(t *testing.T) {
	inv := loadAnsible(t, "basic/hosts.ini")
	at := func(line string) string { return filepath.Join(ansibleDir, "basic", line) }
	if inv.File != at("hosts.ini") {
		t.Errorf("File = %q", inv.File)
	}
	var names []string
	for _, e := range inv.Hosts {
		names = append(names, e.Name)
	}
	wantNames := []string{"bastion", "web01", "web02", "web03", "web04", "db-a.example.com", "db-b.example.com", "@local", "@docker/app1-ctr"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("hosts = %q, want %q", names, wantNames)
	}
	wantGroups := []Group{
		{Name: "web", Pos: at("hosts.ini:5"), Hosts: []string{"web01", "web02", "web03", "web04"}},
		{Name: "db", Pos: at("hosts.ini:9"), Hosts: []string{"db-a.example.com", "db-b.example.com"}},
		{Name: "local", Pos: at("hosts.ini:12"), Hosts: []string{"@local"}},
		{Name: "containers", Pos: at("hosts.ini:15"), Hosts: []string{"@docker/app1-ctr"}},
		{Name: "app", Pos: at("hosts.ini:18"), Hosts: []string{"web01", "web02", "web03", "web04", "db-a.example.com", "db-b.example.com"}},
		{Name: "prod", Pos: at("hosts.ini:22"), Hosts: []string{"web01", "web02", "web03", "web04", "db-a.example.com", "db-b.example.com", "@docker/app1-ctr"}},
	}
	if !reflect.DeepEqual(inv.Groups, wantGroups) {
		t.Errorf("groups:\n got  %v\n want %v", inv.Groups, wantGroups)
	}
	common := map[string]any{
		"debug": false, "max_conns": int64(100), "motd": "Authorized use only", "mode": "0644",
		"ntp_server": "time.example.com", "timezone": "UTC",
	}
	with := func(kv ...any) map[string]any {
		m := maps.Clone(common)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	web := []any{
		"http_port", int64(8080), "tier", "app", "sudo", true, "sudo_user", "www-data", "ssh_user", "deploy",
		"packages", []any{"nginx", "certbot"}, "tls", map[string]any{"enabled": true, "cert": "/etc/ssl/web.pem"},
	}
	tests := []struct {
		name   string
		groups []string
		data   map[string]any
		pos    string
		keyPos map[string]string
	}{
		{"bastion", nil, with("inventory_hostname", "bastion", "ssh_hostname", "203.0.113.10", "ssh_user", "admin"),
			"hosts.ini:3", map[string]string{"ssh_hostname": "hosts.ini:3", "ntp_server": "group_vars/all.yml:4", "debug": "hosts.ini:28"}},
		{"web01", []string{"web", "app", "prod"}, with(append(web, "inventory_hostname", "web01", "ssh_key", "~/.ssh/web01", "ssh_password", "web01-ssh-pw")...),
			"hosts.ini:6", map[string]string{"ssh_key": "host_vars/web01.yml:2", "http_port": "hosts.ini:34", "tier": "hosts.ini:41", "tls": "group_vars/web.yml:2"}},
		{"web03", []string{"web", "app", "prod"}, with(append(web, "inventory_hostname", "web03")...), "hosts.ini:6", nil},
		{"web04", []string{"web", "app", "prod"}, with(append(web, "inventory_hostname", "web04", "ssh_hostname", "10.0.0.14", "ssh_port", "2222", "role", "web server", "weight", int64(3))...),
			"hosts.ini:7", map[string]string{"ssh_port": "hosts.ini:7"}},
		{"db-b.example.com", []string{"db", "app", "prod"}, with("inventory_hostname", "db-b.example.com", "http_port", int64(80), "tier", "app", "ssh_user", "postgres", "postgres_version", int64(16), "sudo_password", "db-sudo-pw"),
			"hosts.ini:10", map[string]string{"sudo_password": "group_vars/db/secrets.yml:1", "postgres_version": "group_vars/db/main.yml:1"}},
		{"@local", []string{"local"}, with("inventory_hostname", "localhost"), "hosts.ini:13", nil},
		{"@docker/app1-ctr", []string{"containers", "prod"}, with("inventory_hostname", "app1", "docker_user", "app"), "hosts.ini:16", map[string]string{"docker_user": "hosts.ini:16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := hostByName(t, inv, tt.name)
			if !slices.Equal(e.Groups, tt.groups) {
				t.Errorf("Groups = %v, want %v", e.Groups, tt.groups)
			}
			if !reflect.DeepEqual(e.Data, tt.data) {
				t.Errorf("Data:\n got  %v\n want %v", e.Data, tt.data)
			}
			if e.Pos != at(tt.pos) {
				t.Errorf("Pos = %q, want %q", e.Pos, at(tt.pos))
			}
			for k, p := range tt.keyPos {
				if e.DataPos[k] != at(p) {
					t.Errorf("DataPos[%s] = %q, want %q", k, e.DataPos[k], at(p))
				}
			}
		})
	}
}

func TestAnsiblePrecedence(t *testing.T) {
	tests := []struct {
		host, key string
		want      any
		from      string // file of DataPos, in testdata/ansible/precedence; "" for the inventory
	}{
		{"h1", "who", "host", ""},                                      // host beats its groups and all
		{"h2", "who", "all", ""},                                       // all applies to every host
		{"h1", "from_parent", "europe", ""},                            // europe > asia: same depth, later name
		{"h1", "depth_beats_name", "backend", ""},                      // backend (depth 2) > europe (depth 1)
		{"h2", "same_depth", "zeta", ""},                               // zeta > asia, both depth 1
		{"h2", "prio", "alpha", ""},                                    // alpha has ansible_group_priority=5
		{"h1", "gv_all_beats", "group_vars-all", "group_vars/all.yml"}, // group_vars/all > the inventory's group vars
		{"h1", "layer", "group_vars-frontend", "group_vars/frontend.yaml"},
		{"h2", "layer", "group_vars-all", "group_vars/all.yml"},
		{"h1", "host_layer", "host_vars", "host_vars/h1"}, // host_vars > inline host vars
		{"h1", "ssh_user", "direct-host", ""},             // a host's ssh_user beats group_vars/all's ansible_user
		{"h2", "ssh_user", "from-group-vars-all", "group_vars/all.yml"},
		{"h1", "ssh_port", int64(2200), ""}, // ssh_port from backend's vars, typed as written
		{"h2", "ssh_port", "2222", ""},      // the host's ansible_port beats it
		{"h1", "sudo", true, ""},            // ansible_become=true of asia
		{"h2", "sudo", false, ""},           // the host's ansible_become=false beats it
	}
	for _, file := range []string{"hosts.ini", "hosts.yml"} {
		inv := loadAnsible(t, "precedence/"+file)
		for _, tt := range tests {
			e := hostByName(t, inv, tt.host)
			if got := e.Data[tt.key]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: host %s: %s = %#v, want %#v", file, tt.host, tt.key, got, tt.want)
			}
			want := filepath.Join(ansibleDir, "precedence", file)
			if tt.from != "" {
				want = filepath.Join(ansibleDir, "precedence", tt.from)
			}
			if p := e.DataPos[tt.key]; !strings.HasPrefix(p, want+":") {
				t.Errorf("%s: host %s: DataPos[%s] = %q, want %s:LINE", file, tt.host, tt.key, p, want)
			}
		}
	}
}

func TestAnsibleConnections(t *testing.T) {
	inv := loadAnsible(t, "connections.ini")
	tests := []struct {
		ansible, name string
		data          map[string]any
	}{
		{"s1", "s1", map[string]any{
			"ssh_hostname": "192.0.2.1", "ssh_port": "2200", "ssh_user": "ops", "ssh_password": "p w", "ssh_key": "/k",
			"ssh_connect_timeout": "5", "ssh_connect_retries": "4", "ssh_strict_host_key_checking": "no"}},
		{"s2", "s2", map[string]any{}},
		{"b-sudo", "b-sudo", map[string]any{"sudo": true, "sudo_user": "app"}},
		{"b-su", "b-su", map[string]any{"su_user": "root"}},
		{"b-doas", "b-doas", map[string]any{"doas": true, "doas_user": "www"}},
		{"b-off", "b-off", map[string]any{"sudo": false}},
		{"b-pbrun", "b-pbrun", map[string]any{"sudo_password": "x"}},
		{"d1", "@docker/d1", map[string]any{"docker_user": "app"}},
		{"d2", "@docker/ctr2", map[string]any{}},
		{"here", "@local", map[string]any{}},
	}
	for _, tt := range tests {
		e := hostByName(t, inv, tt.name)
		tt.data["inventory_hostname"] = tt.ansible
		if !reflect.DeepEqual(e.Data, tt.data) {
			t.Errorf("%s (%s):\n got  %v\n want %v", tt.ansible, tt.name, e.Data, tt.data)
		}
	}
}

func TestAnsibleFormatDetection(t *testing.T) {
	for _, name := range []string{"sniff/hosts", "sniff/inventory", "basic/hosts.ini", "basic/hosts.yml"} {
		inv, err := Load(t.Context(), filepath.Join(ansibleDir, name))
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		if len(inv.Hosts) == 0 || inv.File != filepath.Join(ansibleDir, name) {
			t.Errorf("Load(%s) = %+v, want the Ansible inventory", name, inv)
		}
	}
	e := loadAnsible(t, "sniff/inventory").Hosts[0]
	if e.Data["ssh_port"] != "22" || e.Pos != filepath.Join(ansibleDir, "sniff/inventory:3") {
		t.Errorf("sniff/inventory read as INI? %+v", e)
	}
	e = loadAnsible(t, "sniff/hosts").Hosts[0]
	if e.Data["ssh_port"] != "22" || e.Groups[0] != "web" {
		t.Errorf("sniff/hosts read as YAML? %+v", e)
	}
}

func TestExpandHostPattern(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
		port    string
	}{
		{"web1", []string{"web1"}, ""},
		{"web[1:3]", []string{"web1", "web2", "web3"}, ""},
		{"web[01:03].example.com", []string{"web01.example.com", "web02.example.com", "web03.example.com"}, ""},
		{"web[08:10]", []string{"web08", "web09", "web10"}, ""},
		{"db-[a:c]", []string{"db-a", "db-b", "db-c"}, ""},
		{"x[y:B]", []string{"xy", "xz", "xA", "xB"}, ""}, // Python's ascii_letters order
		{"n[0:8:4]", []string{"n0", "n4", "n8"}, ""},
		{"n[:2]", []string{"n0", "n1", "n2"}, ""},
		{"r[1:2]-[a:b]", []string{"r1-a", "r1-b", "r2-a", "r2-b"}, ""},
		{"web1:2222", []string{"web1"}, "2222"},
		{"web[1:2]:22", []string{"web1", "web2"}, "22"},
		{"10.0.0.5", []string{"10.0.0.5"}, ""},
		{"2001:db8::1", []string{"2001:db8::1"}, ""},
	}
	for _, tt := range tests {
		got, port, err := expandHostPattern(tt.pattern)
		if err != nil || !slices.Equal(got, tt.want) || port != tt.port {
			t.Errorf("expandHostPattern(%q) = %q, %q, %v; want %q, %q", tt.pattern, got, port, err, tt.want, tt.port)
		}
	}
	for _, bad := range []string{"web[3:1]", "web[1:]", "web[01:3]", "web[a:10]", "web[1:3", "web1]", "web[ab:cd]", "web[1:3:0]", "web[1]", "w[0:1000000]"} {
		if got, _, err := expandHostPattern(bad); err == nil {
			t.Errorf("expandHostPattern(%q) = %q, want an error", bad, got)
		}
	}
}

func TestINIValues(t *testing.T) {
	tests := []struct {
		line string
		want []any // pattern, then each value
	}{
		{`web1 a=1 b=true c=FALSE d=x`, []any{"web1", int64(1), true, false, "x"}},
		{`web1 a="1" b='true' c=0644 d=-7 e=1.5`, []any{"web1", "1", "true", "0644", int64(-7), "1.5"}},
		{`web1 motd="hello world" path='/a b/#c'`, []any{"web1", "hello world", "/a b/#c"}},
		{`web1 a=x # a comment b=2`, []any{"web1", "x"}},
		{`web1 a=x#y`, []any{"web1", "x#y"}},
		{`web1 a="say \"hi\"" b=c\ d`, []any{"web1", `say "hi"`, "c d"}},
		{`web1 a= b==`, []any{"web1", "", "="}},
		{`web1 a=99999999999999999999`, []any{"web1", "99999999999999999999"}},
	}
	for _, tt := range tests {
		toks, err := splitINILine(tt.line)
		if err != nil {
			t.Errorf("splitINILine(%q): %v", tt.line, err)
			continue
		}
		got := []any{toks[0].text}
		for _, tok := range toks[1:] {
			_, v, _ := strings.Cut(tok.text, "=")
			got = append(got, iniValue(v, tok.quoted))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s\n got  %#v\n want %#v", tt.line, got, tt.want)
		}
	}
}

func TestAnsibleVarsSection(t *testing.T) {
	g := &ansibleGroup{name: "web", vars: map[string]ansibleVal{}}
	for _, line := range []string{
		`motd = Hello world   # greeting`,
		`quoted="a # b"`,
		`single = 'x'`,
		`n=8080`,
		`flag=True`,
		`empty=`,
		`url=http://h/#frag`,
	} {
		if err := iniVarLine(g, line, "f:1"); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	want := map[string]any{"motd": "Hello world", "quoted": "a # b", "single": "x", "n": int64(8080), "flag": true, "empty": "", "url": "http://h/#frag"}
	got := map[string]any{}
	for k, v := range g.vars {
		got[k] = v.v
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vars:\n got  %#v\n want %#v", got, want)
	}
}

// TestAnsibleErrors checks that each malformed inventory is refused with
// an error that names file:line and says what to do.
func TestAnsibleErrors(t *testing.T) {
	tests := []struct {
		file string
		want []string // substrings; the first is appended to the file's path
	}{
		{"bad_section.ini", []string{":3:", `malformed section header "[web servers]"`, "no spaces"}},
		{"unknown_type.ini", []string{":4:", "[web:hosts]", "write [web] for hosts"}},
		{"unknown_child.ini", []string{":6:", "[app:children] names group nginx, which is not defined", "add a [nginx] section"}},
		{"undefined_vars.ini", []string{":4:", "[db:vars]", "add a [db] section"}},
		{"range_backwards.ini", []string{":2:", "web[3:1]", "beginning comes after the end"}},
		{"range_width.ini", []string{":3:", "same width"}},
		{"range_mixed.ini", []string{":2:", "two numbers or two single letters"}},
		{"range_unclosed.ini", []string{":2:", "[ without ]"}},
		{"no_equals.ini", []string{":2:", `"ansible_port" is not a variable`, "key=value"}},
		{"secret_space.ini", []string{":2:", "the word after ansible_password=...", "quote values"}},
		{"unterminated.ini", []string{":2:", `unterminated " quote`}},
		{"cycle.ini", []string{":8:", "group a is its own descendant (a > b > a)"}},
		{"vars_no_equals.ini", []string{":4:", `got "web2"`, "put hosts in a [web] section"}},
		{"vars_secret.ini", []string{":5:", "a line starting with ansible_become_password"}},
		{"bad_connection.ini", []string{":2:", "ansible_connection winrm is not supported"}},
		{"bad_become.ini", []string{":2:", "ansible_become_method pbrun is not supported"}},
		{"bad_bool.ini", []string{":2:", "ansible_become must be true or false"}},
		{"two_local.ini", []string{":2:", "host b runs on @local, as host a at " + filepath.Join(ansibleDir, "errors", "two_local.ini:1")}},
		{"no_hosts.ini", []string{": the inventory has no hosts"}},
		{"hosts_list.yml", []string{":4:", "hosts: of group web must be a mapping, got a list", "`web1:`"}},
		{"unknown_key.yml", []string{":4:", `unknown key "host" in group web`}},
		{"vars_list.yml", []string{":5:", "variables of group all must be a mapping", "got a list"}},
		{"host_scalar.yml", []string{":5:", "variables of host web1 must be a mapping", "got a string"}},
		{"syntax.yml", []string{":3:", "invalid YAML"}},
		{"root_list.yml", []string{":1:", "mapping of groups", "got a list"}},
		{"range.yml", []string{":3:", `host pattern "web[1:x]"`}},
		{"nested_self.yml", []string{":7:", "group a is nested in itself (all > a > b > a)"}},
		{"port_list.yml", []string{":4:", "ansible_port must be a single value"}},
		{"vault_file.yml", []string{": encrypted with ansible-vault"}},
		{"vault/hosts.ini", []string{"errors/vault/group_vars/web.yml:1:", "db_password", "!vault"}},
		{"badvarsfile/hosts.ini", []string{"errors/badvarsfile/host_vars/web1.yml:2:", "mapping of variable names"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(ansibleDir, "errors", tt.file)
			inv, err := LoadAnsible(path)
			if err == nil {
				t.Fatalf("LoadAnsible(%s) = %+v, want an error", tt.file, inv)
			}
			msg := err.Error()
			first := path + tt.want[0]
			if strings.Contains(tt.want[0], "/") {
				first = filepath.Join(ansibleDir, tt.want[0])
			}
			if !strings.HasPrefix(msg, first) {
				t.Errorf("error %q does not start with %q", msg, first)
			}
			for _, w := range tt.want[1:] {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "horse") {
				t.Errorf("error %q quotes a password", msg)
			}
		})
	}
}

func TestAnsibleMissingFile(t *testing.T) {
	_, err := LoadAnsible(filepath.Join(ansibleDir, "nope.ini"))
	if err == nil || !strings.Contains(err.Error(), "nope.ini") {
		t.Errorf("LoadAnsible(missing) error = %v, want one naming the file", err)
	}
	_, err = LoadAnsible(filepath.Join(ansibleDir, "basic"))
	if err == nil || !strings.Contains(err.Error(), "basic") {
		t.Errorf("LoadAnsible(directory) error = %v, want one naming it", err)
	}
}
