package stdlib_test

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/builtins"
)

// The operations of server, files and git added in the second wave.
func init() {
	maps.Copy(nameCalls, map[string]nameCall{
		"server.modprobe":             {args: `"overlay"`},
		"server.locale":               {args: `"en_GB.UTF-8"`, fake: map[string]string{"[ -e /etc/locale.gen": "# en_GB.UTF-8 UTF-8\n", "p=/etc/locale.gen": "regular file|644|root|root|20\nabc\n"}},
		"server.timezone":             {args: `"Etc/UTC"`},
		"server.security_limit":       {args: `"*", "soft", "nofile", 1024`},
		"server.script_template":      {args: `"probe.tmpl"`},
		"server.user_authorized_keys": {args: `"root", "ssh-ed25519 AAAA probe"`},
		"files.rsync":                 {args: `"sync_src/", tmp + "/probe"`},
		"files.flags":                 {args: `"/etc/hostname", "i"`, fake: map[string]string{": lsattr": "--------------e------- /etc/hostname\n"}},
		"git.config":                  {args: `"user.name", "probe", repo = tmp`},
		"git.worktree":                {args: `tmp + "/wt", repo = tmp + "/repo"`},
		"git.bare_repo":               {args: `tmp + "/bare.git"`},
	})
}

// TestScriptTemplateKnowsEveryControlArgument checks that server.star's
// _CONTROL_ARGS, which server.script_template takes apart from the
// template's data, lists name= and every control argument.
func TestScriptTemplateKnowsEveryControlArgument(t *testing.T) {
	src, err := os.ReadFile("server.star")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\n_CONTROL_ARGS = \[(.*?)\]`).FindSubmatch(src)
	if m == nil {
		t.Fatal("server.star has no _CONTROL_ARGS = [...]")
	}
	var got []string
	for _, f := range strings.Split(string(m[1]), ",") {
		if f = strings.Trim(strings.TrimSpace(f), `"`); f != "" {
			got = append(got, f)
		}
	}
	var want []string
	for _, p := range builtins.ControlParams() {
		want = append(want, strings.TrimSuffix(p.Name, "?"))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("_CONTROL_ARGS in server.star = %q\nthe control arguments are %q: update the list", got, want)
	}
}
