package terraform

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// stubTerraform puts a terraform on PATH that records its arguments and
// prints testdata/output.json (see testdata/README.md), or fails as the
// real one does without a state when fail is set.
func stubTerraform(t *testing.T, fail bool) (argsFile string) {
	t.Helper()
	capture, err := filepath.Abs("testdata/output.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" > '" + argsFile + "'\n"
	if fail {
		script += "echo 'Error: No outputs found' >&2\nexit 1\n"
	} else {
		script += "cat '" + capture + "'\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "terraform"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return argsFile
}

func TestExpand(t *testing.T) {
	argsFile := stubTerraform(t, false)
	reg := connectors.NewRegistry(NewFactory(), fakeSSH{})
	cases := []struct {
		name string
		data map[string]string
		want []connectors.Expansion
		args string
	}{
		{"@terraform/web_ips", nil, []connectors.Expansion{{Name: "127.0.0.10"}, {Name: "127.0.0.11"}}, "output -json"},
		// pyinfra's spelling, with .value, and a nested key.
		{"@terraform/server_group.value.server_group_node_ips", nil,
			[]connectors.Expansion{{Name: "127.0.0.4"}, {Name: "127.0.0.5"}, {Name: "127.0.0.6"}}, "output -json"},
		{"@terraform/server_group.server_group_node_ips", nil,
			[]connectors.Expansion{{Name: "127.0.0.4"}, {Name: "127.0.0.5"}, {Name: "127.0.0.6"}}, "output -json"},
		{"@terraform/db_hosts", nil, []connectors.Expansion{{Name: "db1", Data: map[string]any{
			"ssh_hostname": "127.0.0.1", "ssh_user": "postgres", "pg_version": int64(16)}}}, "output -json"},
		// A bare @terraform reads star_deploy_inventory, else pyinfra's:
		// an object of groups.
		{"@terraform", nil, []connectors.Expansion{{Name: "127.0.0.2", Groups: []string{"app"}}, {Name: "127.0.0.3", Groups: []string{"app", "worker"}}}, "output -json"},
		{"@terraform", map[string]string{"terraform_output_key": "web_ips", "terraform_dir": "infra"},
			[]connectors.Expansion{{Name: "127.0.0.10"}, {Name: "127.0.0.11"}}, "-chdir=infra output -json"},
	}
	for _, c := range cases {
		hosts, ok, err := reg.Expand(t.Context(), c.name, c.data)
		if err != nil || !ok {
			t.Errorf("%s: %v, %v", c.name, ok, err)
			continue
		}
		if !reflect.DeepEqual(hosts, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, hosts, c.want)
		}
		if b, _ := os.ReadFile(argsFile); strings.TrimSpace(string(b)) != c.args {
			t.Errorf("%s: terraform ran with %q, want %q", c.name, b, c.args)
		}
	}
	for name, want := range map[string]string{
		"@terraform/nope":                  "@terraform/nope: terraform has no output nope (it has db_hosts, lb_address, pyinfra_inventory, server_group, web_ips): name one, @terraform/OUTPUT, or set terraform_output_key",
		"@terraform/lb_address":            "@terraform/lb_address: terraform output lb_address: want a list of hosts (or an object of groups to lists), got a string",
		"@terraform/server_group.value.ip": "@terraform/server_group.value.ip: terraform output server_group.value has no key ip (it has server_group_node_ips)",
	} {
		if _, _, err := reg.Expand(t.Context(), name, nil); err == nil || err.Error() != want {
			t.Errorf("%s: error\n %v\nwant\n %s", name, err, want)
		}
	}
}

func TestTerraformFails(t *testing.T) {
	stubTerraform(t, true)
	reg := connectors.NewRegistry(NewFactory(), fakeSSH{})
	_, _, err := reg.Expand(t.Context(), "@terraform/web_ips", nil)
	if err == nil || !strings.Contains(err.Error(), "@terraform/web_ips: terraform output -json failed (exit status 1): Error: No outputs found") {
		t.Errorf("error = %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, _, err := reg.Expand(t.Context(), "@terraform", nil); err == nil || !strings.Contains(err.Error(), "terraform is not installed") {
		t.Errorf("without terraform: %v", err)
	}
}

func TestItems(t *testing.T) {
	for src, want := range map[string]string{
		`{"o": {"value": [null]}}`:                "item 1: want a host name or an object, got null",
		`{"o": {"value": [{"not_a_name": "x"}]}}`: "item 1 has neither name nor ssh_hostname",
		`{"o": {"value": {"web": "x"}}}`:          "group web: want a list of hosts, got a string",
		`[]`:                                      "not a JSON object",
	} {
		if _, err := Hosts([]byte(src), "o"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

// fakeSSH stands for the SSH connector, so that the registry accepts the
// expanded bare names.
type fakeSSH struct{ connectors.Factory }

func (fakeSSH) Scheme() string { return "ssh" }
func (fakeSSH) Fields() []connectors.Field {
	return []connectors.Field{{Name: "ssh_hostname"}, {Name: "ssh_user"}}
}
