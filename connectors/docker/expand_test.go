package docker

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// labelledContainers starts two containers of the Debian test image with
// the label star-deploy-test.run=RUN and the groups label, and creates a
// third (not started) with the same run label. It returns RUN and the
// names: web, db, stopped. Everything is removed when t ends.
func labelledContainers(t *testing.T) (run string, names []string) {
	t.Helper()
	image := sshtest.Image(t)
	b := make([]byte, 6)
	rand.Read(b)
	run = hex.EncodeToString(b)
	specs := []struct{ verb, suffix, groups string }{
		{"run", "web", "web, front"},
		{"run", "db", "db"},
		{"create", "stopped", "web"},
	}
	for _, s := range specs {
		name := "star-deploy-expand-" + run + "-" + s.suffix
		args := []string{s.verb}
		if s.verb == "run" {
			args = append(args, "-d")
		}
		args = append(args, "--name", name, "--network", "none", "--label", "star-deploy-test.run="+run,
			"--label", GroupsLabel+"="+s.groups, image, "sleep", "infinity")
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", s.verb, err, out)
		}
		t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
		names = append(names, name)
	}
	return run, names
}

func expansionNames(xs []connectors.Expansion) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.Name)
	}
	return out
}

// TestExpandFilters expands label, name and status filters and * on the
// real engine.
func TestExpandFilters(t *testing.T) {
	run, names := labelledContainers(t)
	web, db, stopped := "@docker/"+names[0], "@docker/"+names[1], "@docker/"+names[2]
	reg := connectors.NewRegistry(NewFactory())
	expand := func(name string) []connectors.Expansion {
		t.Helper()
		hosts, ok, err := reg.Expand(t.Context(), name, nil)
		if err != nil || !ok {
			t.Fatalf("Expand(%s) = %v, %v", name, ok, err)
		}
		return hosts
	}

	t.Run("label", func(t *testing.T) {
		hosts := expand("@docker/label=star-deploy-test.run=" + run)
		if got := expansionNames(hosts); !slices.Equal(got, []string{db, web}) {
			t.Fatalf("names = %q, want the two running containers %q, in name order", got, []string{db, web})
		}
		if !slices.Equal(hosts[0].Groups, []string{"db"}) || !slices.Equal(hosts[1].Groups, []string{"web", "front"}) {
			t.Errorf("groups = %q and %q, want [db] and [web front] from the %s label", hosts[0].Groups, hosts[1].Groups, GroupsLabel)
		}
	})
	t.Run("name", func(t *testing.T) {
		// docker ps's name filter matches part of a name.
		got := expansionNames(expand("@docker/name=star-deploy-expand-" + run))
		if !slices.Equal(got, []string{db, web}) {
			t.Errorf("names = %q, want %q", got, []string{db, web})
		}
	})
	t.Run("status", func(t *testing.T) {
		got := expansionNames(expand("@docker/status=created"))
		if !slices.Contains(got, stopped) || slices.Contains(got, web) {
			t.Errorf("status=created gave %q: want %s and not the running %s", got, stopped, web)
		}
	})
	t.Run("all running", func(t *testing.T) {
		// Other tests' containers may run too: check only ours.
		got := expansionNames(expand("@docker/*"))
		if !slices.Contains(got, web) || !slices.Contains(got, db) || slices.Contains(got, stopped) {
			t.Errorf("@docker/* gave %q: want %s and %s, not %s", got, web, db, stopped)
		}
	})
	t.Run("expanded hosts open", func(t *testing.T) {
		hosts := expand("@docker/label=star-deploy-test.run=" + run)
		tg, err := reg.Target(hosts[0].Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewFactory().Open(t.Context(), tg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res, err := c.Run(t.Context(), connectors.Command{Script: "hostname"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("hostname: %v %+v", err, res)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for name, want := range map[string]string{
			"@docker/lable=x":         `@docker/lable=x: unknown container filter "lable" (did you mean label=?)`,
			"@docker/label=" + run:    "", // a label key alone is a valid filter: no error, no host
			"@docker/status=sleeping": "@docker/status=sleeping: ",
		} {
			hosts, ok, err := reg.Expand(t.Context(), name, nil)
			if !ok {
				t.Errorf("%s: not an expansion", name)
			}
			switch {
			case want == "" && (err != nil || len(hosts) != 0):
				t.Errorf("%s: %v, %q; want no error and no host", name, err, expansionNames(hosts))
			case want != "" && (err == nil || !strings.HasPrefix(err.Error(), want)):
				t.Errorf("%s: error %v, want one starting %q", name, err, want)
			}
		}
		if _, err := reg.Target("@docker/label=a=b", nil); err == nil || !strings.Contains(err.Error(), "names many hosts") {
			t.Errorf("Target of a filter: %v, want an error saying it names many hosts", err)
		}
	})
}

func TestExpandsIsPure(t *testing.T) {
	f := NewFactory()
	for addr, want := range map[string]bool{"*": true, "label=a=b": true, "name=web": true, "web1": false, "debian:bookworm": false, "": false} {
		if got := f.Expands(addr); got != want {
			t.Errorf("Expands(%q) = %v, want %v", addr, got, want)
		}
	}
	if g := labelGroups(" web, ,db,web "); !slices.Equal(g, []string{"web", "db"}) {
		t.Errorf("labelGroups = %q", g)
	}
}
