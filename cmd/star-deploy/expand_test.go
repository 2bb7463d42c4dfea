package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

type inventoryJSON struct {
	Hosts []struct {
		Name   string         `json:"name"`
		Groups []string       `json:"groups"`
		Data   map[string]any `json:"data"`
	} `json:"hosts"`
	Groups map[string][]string `json:"groups"`
}

// inventoryOf runs `star-deploy ARGS... inventory --json` and decodes it.
func inventoryOf(t *testing.T, args ...string) inventoryJSON {
	t.Helper()
	code, out, errOut := runCLI(t, append(args, "inventory", "--json")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var inv inventoryJSON
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return inv
}

func writeExecutable(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := writeFile(t, dir, name, content)
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDynamicInventoryScript runs a real Python dynamic inventory script
// (groups, children, vars, _meta.hostvars, group_vars/ beside it) and then
// a command on the host it maps to @local.
func TestDynamicInventoryScript(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		sshtest.Skip(t, "python3 is not installed")
	}
	dir := t.TempDir()
	script := writeExecutable(t, dir, "cmdb.py", `#!/usr/bin/env python3
import json, sys
if sys.argv[1:] != ["--list"]:
    sys.exit("called with %r: _meta is there, --host must not be" % sys.argv[1:])
print(json.dumps({
    "web": {"hosts": ["web1", "web2"], "vars": {"http_port": 8080}, "children": ["canary"]},
    "canary": ["web3"],
    "ops": {"hosts": ["controller"]},
    "_meta": {"hostvars": {
        "web1": {"ansible_host": "127.0.0.1", "ansible_port": 2222, "ansible_user": "deploy", "rack": "a1"},
        "controller": {"ansible_connection": "local"},
    }},
}))
`)
	writeFile(t, dir, "group_vars/web.yml", "tier: front\n")
	inv := inventoryOf(t, script)
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	if want := []string{"web1", "web2", "web3", "@local"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("hosts = %q, want %q", names, want)
	}
	web1 := inv.Hosts[0]
	wantData := map[string]any{"ssh_hostname": "127.0.0.1", "ssh_port": "2222", "ssh_user": "deploy", "rack": "a1",
		"http_port": float64(8080), "tier": "front", "inventory_hostname": "web1"}
	if !reflect.DeepEqual(web1.Data, wantData) {
		t.Errorf("web1 data = %v, want %v", web1.Data, wantData)
	}
	if g := inv.Hosts[2].Groups; !reflect.DeepEqual(g, []string{"web", "canary"}) {
		t.Errorf("web3 groups = %q, want web (through its child canary) and canary", g)
	}
	if g := inv.Groups["web"]; !reflect.DeepEqual(g, []string{"web1", "web2", "web3"}) {
		t.Errorf("group web = %q", g)
	}
	code, out, errOut := runCLI(t, "--limit", "ops", script, "exec", "--", "echo from-dynamic-inventory")
	if code != 0 || !strings.Contains(out, "from-dynamic-inventory") {
		t.Errorf("exec on the local host of the script: exit %d\n%s%s", code, out, errOut)
	}
}

// TestDynamicInventoryHostCalls: without _meta.hostvars, each host's
// variables come from --host NAME.
func TestDynamicInventoryHostCalls(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := writeExecutable(t, dir, "inv", `#!/bin/sh
echo "$*" >> '`+calls+`'
case "$1" in
--list) echo '{"db": ["db1", "db2"], "all": {"vars": {"stage": "staging"}}}' ;;
--host) if [ "$2" = db1 ]; then echo '{"role": "primary"}'; fi ;;
esac
`)
	inv := inventoryOf(t, script)
	if len(inv.Hosts) != 2 || inv.Hosts[0].Data["role"] != "primary" || inv.Hosts[1].Data["role"] != nil {
		t.Errorf("hosts = %+v, want db1 with role primary and db2 without", inv.Hosts)
	}
	if inv.Hosts[0].Data["stage"] != "staging" {
		t.Errorf("db1 data = %v, want stage from all's vars", inv.Hosts[0].Data)
	}
	b, _ := os.ReadFile(calls)
	if string(b) != "--list\n--host db1\n--host db2\n" {
		t.Errorf("calls = %q", b)
	}
}

// TestDynamicInventoryErrors: a failing script and bad JSON are errors
// naming the script and quoting its standard error, exit 2.
func TestDynamicInventoryErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, script, want string }{
		{"fails", "#!/bin/sh\necho 'cannot reach cmdb.internal: connection refused' >&2\nexit 3\n",
			"inventory script SCRIPT --list failed (exit status 3): it printed on standard error:\ncannot reach cmdb.internal: connection refused"},
		{"badjson", "#!/bin/sh\necho '{\"web\": [\"a\",'\necho 'token expired, output cut' >&2\n",
			"inventory script SCRIPT --list: the output is not JSON: it is empty or ends too early: it printed on standard error:\ntoken expired, output cut"},
		{"list", "#!/bin/sh\necho '[1]'\n", "inventory script SCRIPT --list: the output must be a JSON object of groups, got a list"},
		{"hosts", "#!/bin/sh\necho '{\"web\": {\"hosts\": \"a\"}}'\n", "group web: hosts must be a list of host names, got a string"},
	}
	for _, c := range cases {
		script := writeExecutable(t, dir, c.name, c.script)
		code, out, errOut := runCLI(t, script, "inventory")
		want := strings.ReplaceAll(c.want, "SCRIPT", script)
		if code != 2 || !strings.Contains(errOut, want) || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr\n%s\nwant exit 2 and\n%s", c.name, code, out, errOut, want)
		}
	}
}

// TestDockerFilterExpansion expands @docker/label=... on the real engine
// into the containers carrying the label, in the groups of their
// star-deploy.groups label, selects one by group with --limit and runs a
// command in it.
func TestDockerFilterExpansion(t *testing.T) {
	image := sshtest.Image(t)
	b := make([]byte, 6)
	rand.Read(b)
	run := hex.EncodeToString(b)
	var names []string
	for _, s := range []struct{ suffix, groups string }{{"a", "web,db"}, {"b", "web"}} {
		name := "star-deploy-expand-" + run + "-" + s.suffix
		out, err := exec.Command("docker", "run", "-d", "--name", name, "--network", "none",
			"--label", "star-deploy-test.run="+run, "--label", "star-deploy.groups="+s.groups, image, "sleep", "infinity").CombinedOutput()
		if err != nil {
			t.Fatalf("docker run: %v\n%s", err, out)
		}
		t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
		names = append(names, "@docker/"+name)
	}
	filter := "@docker/label=star-deploy-test.run=" + run
	inv := inventoryOf(t, filter)
	if len(inv.Hosts) != 2 || inv.Hosts[0].Name != names[0] || inv.Hosts[1].Name != names[1] {
		t.Fatalf("hosts = %+v, want %q", inv.Hosts, names)
	}
	if want := map[string][]string{"web": names, "db": names[:1]}; !reflect.DeepEqual(inv.Groups, want) {
		t.Errorf("groups = %v, want %v", inv.Groups, want)
	}
	code, out, errOut := runCLI(t, "--limit", "db", filter, "exec", "--", "cat /etc/debian_version; hostname")
	if code != 0 || !strings.Contains(out, "["+names[0]+"]") || strings.Contains(out, names[1]) {
		t.Errorf("exec --limit db: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "@docker/label=star-deploy-test.run=none-"+run, "inventory")
	if code != 2 || !strings.Contains(errOut, "no host to run on: @docker/label=star-deploy-test.run=none-"+run+" matched none") {
		t.Errorf("a filter matching nothing: exit %d\n%s", code, errOut)
	}
}

// TestTerraformInventory expands @terraform with a stub terraform on PATH
// that prints output in the real tool's format (connectors/terraform/testdata).
func TestTerraformInventory(t *testing.T) {
	capture, err := filepath.Abs("../../connectors/terraform/testdata/output.json")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	writeExecutable(t, bin, "terraform", "#!/bin/sh\ncat '"+capture+"'\n")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	inv := inventoryOf(t, "--data", "ssh_user=ops", "@terraform/db_hosts,@terraform")
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	if want := []string{"db1", "127.0.0.2", "127.0.0.3"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("hosts = %q, want %q", names, want)
	}
	// --data wins over the output's data, as the inventory's does.
	if d := inv.Hosts[0].Data; d["ssh_hostname"] != "127.0.0.1" || d["ssh_user"] != "ops" || d["pg_version"] != float64(16) {
		t.Errorf("db1 data = %v", d)
	}
	if g := inv.Groups["worker"]; !reflect.DeepEqual(g, []string{"127.0.0.3"}) {
		t.Errorf("group worker = %q", g)
	}
	code, _, errOut := runCLI(t, "@terraform/lb_address", "inventory")
	if code != 2 || !strings.Contains(errOut, "@terraform/lb_address: terraform output lb_address: want a list of hosts") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}
