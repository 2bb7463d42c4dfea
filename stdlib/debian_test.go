package stdlib_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/all"
	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// TestDebian runs each testdata/debian/NN-name.star as a deploy script over
// SSH, with sudo, on one real Debian container, in file-name order. Each
// scenario runs three times: with --dry, for real, and for real again. The
// dry run must report exactly the operations the real run then changes,
// the real run must not fail, and the second real run must change nothing.
// NN-name.setup.sh, when present, runs as root in the container before the
// dry run; NN-name.check.sh, when present, runs as root in the container after the
// real run and must exit 0.
//
// Then testdata/once/links_validate.star runs once, with sudo
// (checkLinksAndValidate), and ../examples/debian/*.star run the same way. The container publishes
// its port 80 on 127.0.0.1: at the end, the page that
// examples/debian/nginx.star deployed is fetched through it.
func TestDebian(t *testing.T) {
	scenarios, err := filepath.Glob("testdata/debian/*.star")
	if err != nil || len(scenarios) == 0 {
		t.Fatalf("no scenarios in testdata/debian (%v)", err)
	}
	// The Debian examples run last, on the state the scenarios left.
	examples, err := filepath.Glob("../examples/debian/*.star")
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples in ../examples/debian (%v)", err)
	}
	scenarios = append(scenarios, examples...)
	c := sshtest.FleetWith(t, 1, sshtest.FleetOptions{Publish: []int{80}})[0]
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte(c.KnownHostsLine("")), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := all.Registry(all.Options{})
	data := map[string]string{
		"ssh_user":             sshtest.UserNopasswd,
		"ssh_key":              c.ClientKeyPath,
		"ssh_known_hosts_file": known,
		"ssh_allow_agent":      "false",
	}
	target, err := reg.Target("@ssh/"+c.Addr, data)
	if err != nil {
		t.Fatal(err)
	}
	hostData := map[string]any{"web_port": "80"}
	for k, v := range data {
		hostData[k] = v
	}
	host := testHost{sdrt.Host{Name: "debian", Data: hostData, Target: target}, reg}

	for _, script := range scenarios {
		name := strings.TrimSuffix(filepath.Base(script), ".star")
		ok := t.Run(name, func(t *testing.T) {
			// NN-name.setup.sh, when present, runs as root before the dry run:
			// it makes the state a scenario starts from (packages to upgrade, say).
			if body, err := os.ReadFile(strings.TrimSuffix(script, ".star") + ".setup.sh"); err == nil {
				cmd := exec.Command("docker", "exec", "-i", "-u", "root", c.Name, "sh", "-eu")
				cmd.Stdin = strings.NewReader(string(body))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s.setup.sh: %v\n%s", name, err, out)
				}
			}
			scenario(t, host, script, builtins.Control{Sudo: true}, func(t *testing.T) {
				check := strings.TrimSuffix(script, ".star") + ".check.sh"
				body, err := os.ReadFile(check)
				if err != nil {
					return
				}
				cmd := exec.Command("docker", "exec", "-i", "-u", "root", c.Name, "sh", "-eu")
				cmd.Stdin = strings.NewReader(string(body))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s: %v\n%s", check, err, out)
				}
			})
		})
		if !ok {
			// Later scenarios may build on this one; stop here.
			break
		}
	}

	t.Run("links and validate, with sudo", func(t *testing.T) {
		checkLinksAndValidate(t, host, builtins.Control{Sudo: true}, "/srv/links")
	})

	t.Run("nginx.star's page through 127.0.0.1", func(t *testing.T) {
		resp, err := http.Get("http://" + c.Published[80] + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), "deployed by star-deploy to "+c.Name) {
			t.Errorf("GET / = %d\n%s", resp.StatusCode, body)
		}
	})
}

// testHost is a host with the connectors that open it.
type testHost struct {
	sdrt.Host
	conns *connectors.Registry
}

// scenario runs script on host three times: with --dry, for real, and for
// real again. The dry run must report exactly the operations the real run
// then changes, in the same order; the real run must change something and
// fail nothing; check (may be nil) runs after it; the last run must change
// nothing.
func scenario(t *testing.T, host testHost, script string, ctl builtins.Control, check func(t *testing.T)) {
	t.Helper()
	dry := runScript(t, host, script, ctl, true)
	real := runScript(t, host, script, ctl, false)
	if !slices.Equal(dry, real) {
		t.Errorf("--dry said it would change:\n  %s\nthe real run changed:\n  %s", strings.Join(dry, "\n  "), strings.Join(real, "\n  "))
	}
	if len(real) == 0 {
		t.Errorf("the first real run changed nothing: the scenario tests no change")
	}
	if check != nil {
		check(t)
	}
	if again := runScript(t, host, script, ctl, false); len(again) > 0 {
		t.Errorf("the second real run changed:\n  %s", strings.Join(again, "\n  "))
	}
}

// runScriptOps runs script once for real and returns every operation it
// ran, as "op name status".
func runScriptOps(t *testing.T, host testHost, script string) []string {
	t.Helper()
	var all []string
	runScriptWith(t, host, script, builtins.Control{}, false, func(e sdrt.Event) {
		if e.Kind == builtins.KindOpEnd {
			all = append(all, fmt.Sprintf("%s %s %s", e.Op, e.Name, e.Status))
		}
	})
	return all
}

// runScript runs script once on host and returns the operations that
// changed (or would, under dry), as "op name", in order.
func runScript(t *testing.T, host testHost, script string, ctl builtins.Control, dry bool) []string {
	t.Helper()
	return runScriptWith(t, host, script, ctl, dry, nil)
}

// runScriptWith is runScript that also hands every event to onEvent.
func runScriptWith(t *testing.T, host testHost, script string, ctl builtins.Control, dry bool, onEvent func(sdrt.Event)) []string {
	t.Helper()
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	var changed, failed []string
	r := sdrt.New(sdrt.Options{
		Connectors: host.conns,
		Stdlib:     stdlib.FS,
		Dry:        dry,
		Control:    ctl,
		Verbose:    true,
		OnEvent: func(e sdrt.Event) {
			if onEvent != nil {
				onEvent(e)
			}
			switch {
			case e.Kind == builtins.KindOpEnd && e.Status == builtins.StatusChanged:
				changed = append(changed, e.Op+" "+e.Name)
			case e.Kind == builtins.KindOpEnd && e.Status == builtins.StatusFailed:
				failed = append(failed, fmt.Sprintf("%s %s at %s: %s\n%s%s", e.Op, e.Name, e.Pos, e.Error, e.Stdout, e.Stderr))
			case e.Kind == builtins.KindPrint:
				t.Logf("print: %s", e.Message)
			}
		},
	})
	prog, err := r.Compile(t.Context(), script, src)
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Run(t.Context(), []*sdrt.Program{prog}, []sdrt.Host{host.Host})
	if err := rep.Hosts[0].Err; err != nil {
		t.Fatalf("dry=%v: %v\nfailed operations:\n%s", dry, err, strings.Join(failed, "\n"))
	}
	return changed
}
