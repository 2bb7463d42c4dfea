package stdlib_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/internal/gendocs"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// nameCall is how TestEveryOperationTakesName calls one operation: the
// arguments it needs (Starlark source, before name = ...) and what must be
// in place for the call to get through.
type nameCall struct {
	args  string
	setup string // Starlark run before the call, with tmp set
	// fake, when set, runs the call on a fake host instead of @local:
	// what its commands print, by prefix (a systemd host, say).
	fake map[string]string
}

// systemdHost is a fake host with systemd and a stopped unit.
var systemdHost = map[string]string{
	"if [ -d /run/systemd": "systemd\n",
	"systemctl show":       "LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\n",
}

// nameCalls lists every public stdlib operation. A new operation needs a
// row here: the arguments it cannot do without.
var nameCalls = map[string]nameCall{
	"apk.packages":          {args: `"curl"`},
	"apt.packages":          {args: `"curl"`},
	"apt.update":            {},
	"apt.repo":              {args: `"deb http://deb.debian.org/debian bookworm main"`},
	"apt.key":               {args: `"probe", content = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nx\n-----END PGP PUBLIC KEY BLOCK-----\n"`},
	"dnf.packages":          {args: `"curl"`},
	"yum.packages":          {args: `"curl"`},
	"files.put":             {args: `tmp + "/probe", content = "x"`},
	"files.template":        {args: `"probe.tmpl", tmp + "/probe"`},
	"files.get":             {args: `"/etc/hostname", tmp + "/got"`},
	"files.directory":       {args: `tmp + "/probe"`},
	"files.file":            {args: `tmp + "/probe"`},
	"files.link":            {args: `tmp + "/probe", "/etc/hostname"`},
	"files.line":            {args: `tmp + "/f", "probe"`},
	"files.replace":         {args: `tmp + "/f", "a", "b"`},
	"files.block":           {args: `tmp + "/f", "probe"`},
	"files.download":        {args: `"https://example.org/x", tmp + "/probe"`},
	"files.sync":            {args: `"sync_src", tmp + "/probe"`},
	"files.copy":            {args: `"/etc/hostname", tmp + "/probe"`},
	"files.move":            {args: `"/etc/hostname", tmp + "/probe"`},
	"git.repo":              {args: `"https://example.org/r.git", tmp + "/r"`},
	"pip.venv":              {args: `tmp + "/venv"`},
	"pip.packages":          {args: `"flask"`},
	"server.shell":          {args: `"true"`},
	"server.script":         {args: `"probe.sh"`},
	"server.user":           {args: `"probe"`},
	"server.group":          {args: `"probe"`},
	"server.hostname":       {args: `"probe"`},
	"server.sysctl":         {args: `"net.ipv4.ip_forward", 1`},
	"server.crontab":        {args: `"true"`},
	"server.mount":          {args: `tmp + "/mnt", device = "/dev/vdb1", fs_type = "ext4"`},
	"server.packages":       {args: `"curl"`},
	"server.service":        {args: `"probe", running = True`, fake: systemdHost},
	"server.reboot":         {},
	"server.wait":           {args: `22`},
	"systemd.daemon_reload": {},
	"systemd.service":       {args: `"probe", running = True`, fake: systemdHost},
}

// nameHelpers are exported functions that are no operations: they run
// nothing on a host and take no control arguments.
var nameHelpers = []string{"ops.merge", "ops.mode", "ops.absolute", "ops.as_list", "ops.extra_args"}

// TestEveryOperationTakesName calls every operation of every stdlib module,
// found from the modules' exported structs as the docs find them, with
// name = set, under --dry on @local (a fake host for those that need
// systemd): name = must reach the operation's
// events rather than collide with one of its parameters.
func TestEveryOperationTakesName(t *testing.T) {
	ref, err := gendocs.Load()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, text := range map[string]string{"probe.tmpl": "x\n", "probe.sh": "true\n", "sync_src/a": "a\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, m := range ref.Modules {
		for _, op := range m.Ops {
			seen[op.Name] = true
			if slices.Contains(nameHelpers, op.Name) {
				continue
			}
			call, ok := nameCalls[op.Name]
			if !ok {
				t.Errorf("%s is not in nameCalls (stdlib/name_test.go): add a row with the arguments it needs, so that it is called with name = (or list it in nameHelpers if it is not an operation)", op.Name)
				continue
			}
			t.Run(op.Name, func(t *testing.T) {
				t.Parallel()
				callWithName(t, dir, m.Name, op.Name, call)
			})
		}
	}
	for name := range nameCalls {
		if !seen[name] {
			t.Errorf("nameCalls lists %s, which no stdlib module exports: remove its row", name)
		}
	}
}

// callWithName runs mod's op with call's arguments and name = "probe op"
// under --dry on @local (or a fake host), and checks it succeeds with an event of that
// name.
func callWithName(t *testing.T, dir, mod, op string, call nameCall) {
	var names []string
	args := call.args
	if args != "" {
		args += ", "
	}
	src := fmt.Sprintf("load(\"@stdlib//%s.star\", %q)\ntmp = %q\n%s\n%s(%sname = \"probe op\")\n", mod, mod, t.TempDir(), call.setup, op, args)
	r := sdrt.New(sdrt.Options{
		Connectors: connectors.NewRegistry(local.NewFactory(), fake.NewFactory(func(tg connectors.Target) *fake.Conn {
			c := fake.New(tg.Name)
			for prefix, out := range call.fake {
				c.On(prefix, connectors.Result{Stdout: []byte(out)})
			}
			return c
		})),
		Stdlib:  stdlib.FS,
		Dry:     true,
		OnEvent: func(ev sdrt.Event) { names = append(names, ev.Name) },
	})
	prog, err := r.Compile(t.Context(), filepath.Join(dir, "probe.star"), []byte(src))
	if err != nil {
		t.Fatalf("%s\n%s", err, src)
	}
	hostName := "@local"
	if call.fake != nil {
		hostName = "@fake/probe"
	}
	host, err := r.Host(hostName, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Run(t.Context(), []*sdrt.Program{prog}, []sdrt.Host{host})
	if err := rep.Hosts[0].Err; err != nil {
		t.Fatalf("%s with name = failed: %v\n%s", op, err, src)
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "probe op") }) {
		t.Errorf("%s: no event is named after name = \"probe op\"; the events: %q", op, names)
	}
}
