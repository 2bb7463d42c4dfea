// Package terraform is the @terraform connector (pyinfra's): it makes no
// connection of its own but expands into the SSH (or other) hosts that a
// Terraform output lists, read from `terraform output -json` run on this
// machine before any host connects. It implements connectors.Expander;
// this package must not import Starlark or another connector.
package terraform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/jsondata"
)

// DefaultOutputKeys are the outputs read when neither the address nor
// terraform_output_key names one: star-deploy's own, then pyinfra's, so
// that a pyinfra project works as it is.
var DefaultOutputKeys = []string{"star_deploy_inventory", "pyinfra_inventory"}

// maxOutput bounds what terraform may print; beyond it is an error.
const maxOutput = 64 << 20

// Factory is the @terraform factory.
type Factory struct{}

var (
	_ connectors.Factory  = Factory{}
	_ connectors.Expander = Factory{}
)

// NewFactory returns the @terraform factory.
func NewFactory() Factory { return Factory{} }

// Scheme returns "terraform".
func (Factory) Scheme() string { return "terraform" }

// Doc describes the connector.
func (Factory) Doc() string {
	return "Hosts listed by a Terraform output (pyinfra's @terraform): @terraform/OUTPUT runs `terraform output -json` here and expands to one host per item " +
		"of OUTPUT (a dotted path: web_ips, or servers.value.ips as pyinfra writes it). An item is an address (an SSH host) or an object with name or ssh_hostname " +
		"and host data (ssh_user, ...); an output that maps group names to such lists puts the hosts in those groups."
}

// Fields declares the terraform_* data keys.
func (Factory) Fields() []connectors.Field {
	return []connectors.Field{
		{Name: "terraform_output_key", Type: "string", Default: strings.Join(DefaultOutputKeys, ", then "), Doc: "The output to read when the name is a bare @terraform, as a dotted path (servers.value.ips)."},
		{Name: "terraform_dir", Type: "string", Default: "the current directory", Doc: "The Terraform working directory (terraform -chdir=DIR output -json), e.g. infra/prod."},
	}
}

// Expands reports true: every @terraform name stands for the hosts of an
// output.
func (Factory) Expands(addr string) bool { return true }

// Parse refuses: @terraform names are always expanded first.
func (Factory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	return connectors.Target{}, errors.New("@terraform names many hosts: expand it (connectors.Registry.Expand)")
}

// Open refuses: the hosts of @terraform are opened by their own connectors.
func (Factory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	return nil, fmt.Errorf("%s: @terraform makes no connection; its hosts are opened by their own connectors", t.Name)
}

// Expand runs `terraform output -json` and lists the hosts of the output
// that addr, else terraform_output_key, else DefaultOutputKeys names.
func (Factory) Expand(ctx context.Context, addr string, data map[string]string) ([]connectors.Expansion, error) {
	args := []string{"output", "-json"}
	if dir := data["terraform_dir"]; dir != "" {
		args = append([]string{"-chdir=" + dir}, args...)
	}
	out, err := run(ctx, args)
	if err != nil {
		return nil, err
	}
	keys := []string{addr}
	if addr == "" {
		keys = DefaultOutputKeys
		if k := data["terraform_output_key"]; k != "" {
			keys = []string{k}
		}
	}
	return Hosts(out, keys...)
}

// run runs terraform with args and returns its standard output.
func run(ctx context.Context, args []string) ([]byte, error) {
	cmdline := "terraform " + strings.Join(args, " ")
	path, err := exec.LookPath("terraform")
	if err != nil {
		return nil, fmt.Errorf("%s: terraform is not installed or not on PATH: install it, or list the hosts in an inventory file", cmdline)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &capped{&stdout, maxOutput}, &capped{&stderr, 4 << 10}
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", cmdline, ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			msg = ": " + msg
		}
		return nil, fmt.Errorf("%s failed (%v)%s", cmdline, err, msg)
	}
	if stdout.Len() >= maxOutput {
		return nil, fmt.Errorf("%s printed more than %d MiB", cmdline, maxOutput>>20)
	}
	return stdout.Bytes(), nil
}

// capped keeps the first max bytes written and drops the rest, reading on
// so that the process never blocks.
type capped struct {
	b   *bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// Hosts reads the output of `terraform output -json` (an object of
// outputs, each {"sensitive", "type", "value"}) and lists the hosts of the
// first of keys that exists. A key is a dotted path: its first part names
// an output; a following "value" part (pyinfra's spelling) is skipped; the
// rest index objects inside the value. The value is a list of items, or an
// object of group names to lists. An item is a host name (an address,
// for SSH) or an object: "name" (removed from the data) or else
// "ssh_hostname" gives the host's name, and every other key is host data.
// A name without "@" is an SSH host; "@docker/web" and the like name other
// connectors.
func Hosts(out []byte, keys ...string) ([]connectors.Expansion, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var outputs map[string]any
	if err := dec.Decode(&outputs); err != nil {
		return nil, fmt.Errorf("terraform output -json: the output is not a JSON object: %v", err)
	}
	for _, key := range keys {
		v, ok, err := lookup(outputs, key)
		if err != nil {
			return nil, err
		}
		if ok {
			hosts, err := hostsOf(v)
			if err != nil {
				return nil, fmt.Errorf("terraform output %s: %w", key, err)
			}
			return hosts, nil
		}
	}
	names := sortedKeys(outputs)
	have := "it has none"
	if len(names) > 0 {
		have = "it has " + strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("terraform has no output %s (%s): name one, @terraform/OUTPUT, or set terraform_output_key", strings.Join(keys, " or "), have)
}

// lookup finds dotted path key in outputs.
func lookup(outputs map[string]any, key string) (any, bool, error) {
	parts := strings.Split(key, ".")
	o, ok := outputs[parts[0]].(map[string]any)
	if !ok {
		return nil, false, nil
	}
	v, ok := o["value"]
	if !ok {
		return nil, false, fmt.Errorf("terraform output %s has no value: is this the output of terraform output -json?", parts[0])
	}
	rest := parts[1:]
	if len(rest) > 0 && rest[0] == "value" {
		rest = rest[1:]
	}
	for i, p := range rest {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		if v, ok = m[p]; !ok {
			return nil, false, fmt.Errorf("terraform output %s has no key %s (it has %s)", strings.Join(parts[:len(parts)-len(rest)+i], "."), p, strings.Join(sortedKeys(m), ", "))
		}
	}
	return v, true, nil
}

// hostsOf lists the hosts of an output value.
func hostsOf(v any) ([]connectors.Expansion, error) {
	if groups, ok := v.(map[string]any); ok {
		byName := map[string]int{}
		var out []connectors.Expansion
		for _, g := range sortedKeys(groups) {
			items, ok := groups[g].([]any)
			if !ok {
				return nil, fmt.Errorf("group %s: want a list of hosts, got %s", g, jsondata.Kind(groups[g]))
			}
			hosts, err := items2hosts(items)
			if err != nil {
				return nil, fmt.Errorf("group %s: %w", g, err)
			}
			for _, h := range hosts {
				if i, dup := byName[h.Name]; dup {
					out[i].Groups = append(out[i].Groups, g)
					continue
				}
				h.Groups = []string{g}
				byName[h.Name] = len(out)
				out = append(out, h)
			}
		}
		return out, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of hosts (or an object of groups to lists), got %s", jsondata.Kind(v))
	}
	return items2hosts(items)
}

func items2hosts(items []any) ([]connectors.Expansion, error) {
	var out []connectors.Expansion
	for i, it := range items {
		switch it := it.(type) {
		case string:
			if it == "" {
				return nil, fmt.Errorf("item %d is an empty host name", i+1)
			}
			out = append(out, connectors.Expansion{Name: it})
		case map[string]any:
			data := map[string]any{}
			for k, x := range it {
				data[k], _ = jsondata.Numbers(x) // an out-of-range number becomes ±Inf
			}
			name, _ := data["name"].(string)
			delete(data, "name")
			if name == "" {
				name, _ = data["ssh_hostname"].(string)
			}
			if name == "" {
				return nil, fmt.Errorf("item %d has neither name nor ssh_hostname: give each host one of them", i+1)
			}
			out = append(out, connectors.Expansion{Name: name, Data: data})
		default:
			return nil, fmt.Errorf("item %d: want a host name or an object, got %s", i+1, jsondata.Kind(it))
		}
	}
	return out, nil
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
