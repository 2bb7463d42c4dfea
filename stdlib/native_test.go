package stdlib_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/connectors/ssh"
	"github.com/star-deploy/star-deploy/internal/sshtest"
	"github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// nativeFactory opens a host either as it is (its connectors.Native used)
// or hidden behind a plain Connector (every probe run by sh), counting the
// commands each runs.
type nativeFactory struct {
	connectors.Factory
	shell bool
	runs  *atomic.Int32
}

// shellOnly is a Connector without Native.
type shellOnly struct {
	connectors.Connector
	runs *atomic.Int32
}

func (c shellOnly) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	c.runs.Add(1)
	return c.Connector.Run(ctx, cmd)
}

// nativeConn is a Connector with Native.
type nativeConn interface {
	connectors.Connector
	connectors.Native
}

// counted is a host with Native, counting commands.
type counted struct {
	nativeConn
	runs *atomic.Int32
}

func (c counted) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	c.runs.Add(1)
	return c.nativeConn.Run(ctx, cmd)
}

// countedSSH is counted for @ssh, with its NativeGate and NativeStatHash.
type countedSSH struct {
	counted
	sshNative
}

type sshNative interface {
	connectors.NativeGate
	connectors.NativeStatHash
}

func (f nativeFactory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	c, err := f.Factory.Open(ctx, t)
	if err != nil {
		return nil, err
	}
	if f.shell {
		return shellOnly{c, f.runs}, nil
	}
	n := counted{c.(nativeConn), f.runs}
	if s, ok := c.(sshNative); ok {
		return countedSSH{n, s}, nil
	}
	return n, nil
}

// nativeHost is where TestNativeSameAsShell runs its scripts: @local, or
// a loopback sshd as the same user (so that the host's files are this
// machine's).
type nativeHost struct {
	factory connectors.Factory
	name    string
	data    map[string]any
}

func nativeHosts(t *testing.T) map[string]func() nativeHost {
	return map[string]func() nativeHost{
		"local": func() nativeHost { return nativeHost{local.NewFactory(), "@local", nil} },
		"ssh": func() nativeHost {
			srv := sshtest.Start(t, sshtest.Options{})
			known := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(known, []byte(srv.KnownHostsLine("")), 0o600); err != nil {
				t.Fatal(err)
			}
			return nativeHost{ssh.NewFactory(ssh.Options{}), "@ssh/" + srv.Addr, map[string]any{
				"ssh_user": srv.User, "ssh_key": srv.ClientKeyPath, "ssh_known_hosts_file": known, "ssh_allow_agent": "false"}}
		},
	}
}

// nativeTree makes the files the scripts of TestNativeLocalSameAsShell
// work on, in a new directory (its physical path returned).
func nativeTree(t *testing.T) string {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"f": "a\nb\n", "sub/g": "g\n", "setid": "#!/bin/sh\n"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	syscall.Chmod(filepath.Join(dir, "setid"), 0o4755) // os.Chmod drops Unix's set-id bits
	syscall.Chmod(filepath.Join(dir, "sub"), 0o1777)
	for name, target := range map[string]string{
		"l": "f", "chain": "l", "abs": filepath.Join(dir, "sub/g"), "viadir": "sublink/g", "sublink": "sub",
		"dangling": "nothing", "nodir": "missing/x", "loop1": "loop2", "loop2": "loop1", "spacey": "f \n",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A leftover of another run, which the first write in dir removes.
	old := filepath.Join(dir, ".star-deploy-0123456789ab-f.aaaaaaaaaaaa")
	os.WriteFile(old, nil, 0o600)
	os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	return dir
}

// listTree describes every file under dir: name, type, mode, content or
// link target.
func listTree(t *testing.T, dir string) string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, _ := os.Lstat(p)
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", rel, fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", b)
		}
		out = append(out, line)
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// nativeScripts each run on a fresh nativeTree; %[1]s is its directory.
// Each ends at its first failure, whose message is compared too.
var nativeScripts = map[string]string{
	"facts": `
for p in ["f", "sub", "sub/g", "setid", "l", "chain", "abs", "viadir", "dangling", "nodir", "loop1", "spacey", "missing", "f/below"]:
    print(p, fact("file", "%[1]s/" + p))
    print(p, fact("sha256", "%[1]s/" + p))
for p in ["f", "l", "dangling", "missing", "loop1", "f/below"]:
    print(p, repr(fact("content", "%[1]s/" + p)))
print(fact("os"), fact("arch"), fact("hostname"))
print(fact("file", "/"), fact("file", "/etc/passwd"))
`,
	"writes": `
put("%[1]s/new", content = "new\n")
put("%[1]s/new", content = "new\n")
put("%[1]s/new", content = "new\n", mode = "0600")
put("%[1]s/f", content = "a\nb\n", mode = "2750")
put("%[1]s/chain", content = "through\n")
put("%[1]s/viadir", content = "via\n", mode = "0604")
put("%[1]s/dangling", content = "made\n")
put("%[1]s/abs", content = "replaced\n", follow = False)
template("%[2]s", "%[1]s/sub/t", vars = {"x": 1})
template("%[2]s", "%[1]s/sub/t", vars = {"x": 1})
files.line("%[1]s/f", "c")
files.line("%[1]s/f", "c")
files.line("%[1]s/sub/lines", "one")
files.line("%[1]s/l", "d", regex = "^c$")
files.directory("%[1]s/sub", mode = "0755")
files.file("%[1]s/setid", mode = "0755")
put("%[1]s/setid", content = "#!/bin/sh\n", group = "daemon")
put("%[1]s/setid", content = "#!/bin/sh\n", user = "daemon", mode = "0750")
for p in ["f", "nope", "dangling", "loop1", "nodir", "sub", "f/below"]:
    shell("echo ran", creates = "%[1]s/" + p)
shell("echo ran", creates = "relative", chdir = "%[1]s")
`,
	"tree": `
for p in ["", "/sub", "/sublink", "/f", "/l", "/dangling", "/missing"]:
    t = fact("tree", "%[1]s" + p)
    print(p, sorted(t.items()) if t != None else t)
files.sync("%[1]s/sub", "%[1]s/copy")
files.sync("%[1]s/sub", "%[1]s/copy")
print(sorted(fact("tree", "%[1]s/copy").items()))
`,
	"treebig":   `fact("tree", "%[1]s", max_output = 50)`,
	"loop":      `put("%[1]s/loop1", content = "x")`,
	"nodir":     `put("%[1]s/nodir", content = "x")`,
	"directory": `put("%[1]s/sub", content = "x")`,
	"content":   `fact("content", "%[1]s/sub")`,
	"big":       `fact("content", "%[1]s/f", max_output = 2)`,
	"owner":     `put("%[1]s/f", content = "a\nb\n", user = "no-such-user-here")`,
	"chmod":     `put("%[1]s/sub/g", content = "g\n", user = "no-such-user-here")`,
}

// The file probes, put, template and files.line give the same results,
// messages and files through connectors.Native as through sh: on @local
// (system calls) and over SSH (the Perl server's requests).
func TestNativeSameAsShell(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "t.tmpl")
	os.WriteFile(tmpl, []byte("x={{ .x }}\n"), 0o644)
	for hostName, start := range nativeHosts(t) {
		t.Run(hostName, func(t *testing.T) {
			host := start()
			for name, script := range nativeScripts {
				t.Run(name, func(t *testing.T) {
					var transcript, files [2]string
					var runs [2]int32
					for i, shell := range []bool{false, true} {
						dir := nativeTree(t)
						transcript[i], runs[i] = runNative(t, host, shell, fmt.Sprintf(script, dir, tmpl))
						transcript[i] = strings.ReplaceAll(transcript[i], dir, "DIR")
						files[i] = strings.ReplaceAll(listTree(t, dir), dir, "DIR")
					}
					if transcript[0] != transcript[1] {
						t.Errorf("native:\n%s\n\nshell:\n%s", transcript[0], transcript[1])
					}
					if files[0] != files[1] {
						t.Errorf("files, native:\n%s\n\nshell:\n%s", files[0], files[1])
					}
					if runs[0] > runs[1] {
						t.Errorf("native ran %d commands, the shell %d", runs[0], runs[1])
					}
					t.Logf("%d commands native, %d through sh:\n%s", runs[0], runs[1], transcript[0])
				})
			}
		})
	}
}

// runNative runs src on host and returns what it printed, the outcome of
// each operation and its error, and how many commands it ran.
func runNative(t *testing.T, host nativeHost, shell bool, src string) (string, int32) {
	var runs atomic.Int32
	var out []string
	r := runtime.New(runtime.Options{
		Connectors: connectors.NewRegistry(nativeFactory{host.factory, shell, &runs}),
		Stdlib:     stdlib.FS,
		OnEvent: func(e runtime.Event) {
			switch e.Kind {
			case builtins.KindPrint:
				out = append(out, "print: "+e.Message)
			case builtins.KindOpEnd:
				out = append(out, fmt.Sprintf("%s %s: %s %s %s", e.Op, e.Name, e.Status, e.Message, e.Error))
			}
		},
	})
	prog, err := r.Compile(t.Context(), "native.star", []byte(`load("@stdlib//files.star", "files")`+"\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.Host(host.name, host.data)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(t.Context(), []*runtime.Program{prog}, []runtime.Host{h}).Hosts[0].Err; err != nil {
		out = append(out, "error: "+err.Error())
	}
	return strings.Join(out, "\n"), runs.Load()
}
