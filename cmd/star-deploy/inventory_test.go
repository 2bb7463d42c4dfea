package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestInventoryStar deploys to an inventory.star file's hosts, with group
// data, and prints its merged data with the inventory command.
func TestInventoryStar(t *testing.T) {
	dir := t.TempDir()
	inv := writeFile(t, dir, "inventory.star", `
local = [("@local", {"role": "builder", "db_password": "canary-secret"})]
`)
	writeFile(t, dir, "group_data/all.star", "stage = \"prod\"\nrole = \"generic\"\n")
	writeFile(t, dir, "group_data/local.star", "port = 8080\n")
	script := writeFile(t, dir, "deploy.star", `print("data", host.data["role"], host.data["stage"], host.data["port"], host.groups)`)

	code, out, errOut := runCLI(t, inv, script)
	if code != 0 || !strings.Contains(out, `data builder prod 8080 ("local",)`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = runCLI(t, inv, "inventory", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var got struct {
		Hosts []struct {
			Name   string
			Groups []string
			Data   map[string]any
		}
		Groups map[string][]string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Hosts) != 1 || got.Hosts[0].Data["port"] != 8080.0 || got.Hosts[0].Data["role"] != "builder" || got.Groups["local"][0] != "@local" {
		t.Errorf("inventory --json: %s", out)
	}
	if strings.Contains(out, "canary-secret") || got.Hosts[0].Data["db_password"] != redacted {
		t.Errorf("a secret was printed: %s", out)
	}
	code, out, _ = runCLI(t, inv, "inventory")
	if code != 0 || !strings.Contains(out, "  port = 8080\n") || strings.Contains(out, "canary-secret") || !strings.Contains(out, `  db_password = "<redacted>"`) {
		t.Errorf("inventory: exit %d\n%s", code, out)
	}
}

// TestInventoryErrors: a bad inventory is a usage error (exit 2) naming the
// file and line at fault, before any host runs.
func TestInventoryErrors(t *testing.T) {
	for _, c := range []struct {
		name, inv, groupAll string
		args                []string
		want                []string
	}{
		{"unknown connector key", "web = [(\"web1\", {\"ssh_prot\": 22})]\n", "", nil, []string{"inventory.star:1", "ssh_prot", "ssh_port"}},
		{"unknown key in group data", "web = [\"web1\"]\n", "x = 1\nssh_uesr = \"me\"\n", nil, []string{"group_data/all.star:2", "ssh_uesr"}},
		{"bad control value", "web = [(\"@local\", {\"sudo\": \"maybe\"})]\n", "", nil, []string{"inventory.star:1", "sudo"}},
		{"duplicate host", "web = [\"a\",\n \"a\"]\n", "", nil, []string{"inventory.star:2", "named twice"}},
		{"malformed", "web = [\n", "", nil, []string{"inventory.star:2"}},
		{"unknown group in --limit", "web = [\"@local\"]\n", "", []string{"--limit", "wbe"}, []string{`--limit "wbe"`, "groups: web"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			inv := writeFile(t, dir, "inventory.star", c.inv)
			if c.groupAll != "" {
				writeFile(t, dir, "group_data/all.star", c.groupAll)
			}
			marker := filepath.Join(dir, "ran")
			script := writeFile(t, dir, "deploy.star", "shell('touch "+marker+"')\n")
			code, out, errOut := runCLI(t, append([]string{inv, script}, c.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s\n%s", code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if exists(t, marker) {
				t.Error("a host ran")
			}
		})
	}
}

func TestSerialBatch(t *testing.T) {
	for _, c := range []struct {
		spec string
		n    int
		want int
		err  bool
	}{
		{"", 10, 0, false}, {"3", 10, 3, false}, {"25%", 10, 3, false}, {"1%", 10, 1, false},
		{"100%", 7, 7, false}, {"0", 10, 0, true}, {"x", 10, 0, true}, {"101%", 10, 0, true}, {"-1", 3, 0, true},
	} {
		got, err := serialBatch(c.spec, c.n)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("serialBatch(%q, %d) = %d, %v", c.spec, c.n, got, err)
		}
	}
}

// TestSerialRollout runs an inventory of local hosts in batches of one.
func TestSerialRollout(t *testing.T) {
	dir := t.TempDir()
	inv := writeFile(t, dir, "inventory.star", `all_hosts = ["@local"]`)
	script := writeFile(t, dir, "deploy.star", `print("v", run_once(lambda: "once"))`)
	code, out, errOut := runCLI(t, "--serial", "50%", inv, script)
	if code != 0 || !strings.Contains(out, "v once") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "--serial", "0", inv, script)
	if code != 2 || !strings.Contains(errOut, `--serial "0"`) {
		t.Errorf("--serial 0: exit %d: %s", code, errOut)
	}
}

// TestInventoryOtherConnectorKeys: a key with another connector's prefix
// is plain data (an Ansible role's docker_packages on an SSH host).
func TestInventoryOtherConnectorKeys(t *testing.T) {
	dir := t.TempDir()
	inv := writeFile(t, dir, "inventory.star", `web = [("web1", {"docker_packages": ["a"], "ssh_port": 2222})]`)
	code, out, errOut := runCLI(t, inv, "inventory")
	if code != 0 || !strings.Contains(out, `docker_packages = ["a"]`) {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestStdlibFailureNamesTheCaller: a stdlib operation that fails is
// reported at the user's line, with the operation, the host and the cause.
func TestStdlibFailureNamesTheCaller(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "deploy.star", "load(\"@stdlib//files.star\", \"files\")\n\nfiles.copy(\"/nonexistent-src\", \""+dir+"/x\")\n")
	code, out, errOut := runCLI(t, "@local", script)
	all := out + errOut
	if code != 1 || !strings.Contains(all, "[@local]") || !strings.Contains(all, "deploy.star:3:11") || !strings.Contains(all, "files.copy: /nonexistent-src does not exist") || strings.Contains(all, "@stdlib//files.star:") {
		t.Errorf("exit %d\n%s", code, all)
	}
}
