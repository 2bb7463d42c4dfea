package connectors_test

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// nasty holds values that break any quoting short of the correct one.
var nasty = []string{
	"",
	"plain",
	"two words",
	"it's",
	`"double"`,
	`'single' and "double"`,
	"$HOME",
	"${HOME}",
	"$(id)",
	"`id`",
	`back\slash`,
	`trailing backslash\`,
	`\'`,
	"new\nline",
	"tab\there",
	"trailing newline\n",
	"héllo ☃",
	"-n",
	"--",
	"-e leading dash",
	"*",
	"~",
	"a=b",
	"!event",
	"semi; colon && amp | pipe > redirect < in",
	"# not a comment",
	"'",
	"''",
	"\r\n",
}

func TestQuote(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "''"},
		{"abc", "abc"},
		{"/etc/motd", "/etc/motd"},
		{"a=b", "a=b"},
		{"user@host:22", "user@host:22"},
		{"-n", "-n"},
		{"a,b+c%d", "a,b+c%d"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{`"q"`, `'"q"'`},
		{"$HOME", "'$HOME'"},
		{"$(id)", "'$(id)'"},
		{"`id`", "'`id`'"},
		{`a\b`, `'a\b'`},
		{"a\nb", "'a\nb'"},
		{"a\tb", "'a\tb'"},
		{"héllo ☃", "'héllo ☃'"},
		{"é", "'é'"},
		{"~", "'~'"},
		{"*", "'*'"},
		{"!", "'!'"},
	} {
		if got := connectors.Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := connectors.QuoteArgs([]string{"printf", "%s\n", "it's", ""}), `printf '%s`+"\n"+`' 'it'\''s' ''`; got != want {
		t.Errorf("QuoteArgs = %q, want %q", got, want)
	}
}

// shell runs script with `sh -c` in dir, as a connector does, and returns
// its stdout; a non-zero exit fails the test.
func shell(t *testing.T, dir, script string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "sh", "-c", script)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sh -c %q: %v; stderr: %s", script, err, stderr.Bytes())
	}
	return stdout.String()
}

func TestQuoteRoundTripsThroughShell(t *testing.T) {
	for _, s := range nasty {
		if got := shell(t, "", "printf '%s' "+connectors.Quote(s)); got != s {
			t.Errorf("printf '%%s' Quote(%q) printed %q", s, got)
		}
	}
	got := shell(t, "", "printf '%s\\n' "+connectors.QuoteArgs(nasty))
	if want := strings.Join(nasty, "\n") + "\n"; got != want {
		t.Errorf("printf '%%s\\n' QuoteArgs(nasty):\n got %q\nwant %q", got, want)
	}
}

// guarded is how Render runs shellCmd as another user: under the Guard,
// given no ready line and the caller's pid.
func guarded(shellCmd string) string {
	return "sh -c " + connectors.Quote(connectors.Guard) + ` sh '' "$$" ` + shellCmd
}

// suArg is the one command string su gets for shellCmd: the guarded
// command, with "$$" left outside the quotes so the caller's shell expands it.
func suArg(shellCmd string) string {
	return connectors.Quote("sh -c "+connectors.Quote(connectors.Guard)+" sh '' ") + `"$$"` + connectors.Quote(" "+shellCmd)
}

// renderCase is a command, how to wrap it, and what Render should make of
// it: the command line, or (TestRenderErrors) a part of the error.
type renderCase struct {
	name string
	cmd  string
	w    connectors.Wrap
	want string
}

func TestRender(t *testing.T) {
	for _, tt := range []renderCase{
		{"zero", "echo hi", connectors.Wrap{}, "echo hi"},
		{"multi-line untouched", "a\nb; c", connectors.Wrap{}, "a\nb; c"},
		{"env sorted", "echo hi", connectors.Wrap{Env: map[string]string{"B": "2", "A": "x y", "C_1": "", "_u": "it's"}},
			"export A='x y' B=2 C_1='' _u='it'\\''s' && { echo hi\n}"},
		{"env nasty", "env", connectors.Wrap{Env: map[string]string{"X": "$(id) `id` \\ \"\n"}},
			"export X='$(id) `id` \\ \"\n' && { env\n}"},
		{"chdir", "ls", connectors.Wrap{Chdir: "/srv/my app/it's"},
			`cd '/srv/my app/it'\''s' && { ls` + "\n}"},
		{"chdir plain", "ls", connectors.Wrap{Chdir: "/tmp"}, "cd /tmp && { ls\n}"},
		{"chdir leading dash", "ls", connectors.Wrap{Chdir: "-P"}, "cd ./-P && { ls\n}"},
		{"chdir dash alone", "ls", connectors.Wrap{Chdir: "-"}, "cd ./- && { ls\n}"},
		{"env and chdir", "ls", connectors.Wrap{Env: map[string]string{"A": "1"}, Chdir: "/tmp"},
			"export A=1 && cd /tmp && { ls\n}"},
		{"bash", "echo hi", connectors.Wrap{ShellExecutable: "bash"}, "bash -c 'echo hi'"},
		{"shell with space", "echo hi", connectors.Wrap{ShellExecutable: "/opt/my shell"}, "'/opt/my shell' -c 'echo hi'"},
		{"bash env", "echo $A", connectors.Wrap{ShellExecutable: "bash", Env: map[string]string{"A": "1"}},
			"bash -c 'export A=1 && { echo $A\n}'"},
		{"su", "echo hi", connectors.Wrap{SuUser: "postgres"}, `su -s "$(command -v sh)" postgres -c ` + suArg("sh -c 'echo hi'")},
		{"su odd user", "id", connectors.Wrap{SuUser: "a b"}, `su -s "$(command -v sh)" 'a b' -c ` + suArg("sh -c id")},
		{"su bash env", "echo $A", connectors.Wrap{SuUser: "app", ShellExecutable: "bash", Env: map[string]string{"A": "x y"}},
			`su -s "$(command -v sh)" app -c ` + suArg(`bash -c 'export A='\''x y'\'' && { echo $A`+"\n}'")},
		{"sudo", "echo hi", connectors.Wrap{Sudo: true}, "sudo -H -n -- " + guarded("sh -c 'echo hi'")},
		{"sudo user", "echo hi", connectors.Wrap{Sudo: true, SudoUser: "www-data"}, "sudo -H -n -u www-data -- " + guarded("sh -c 'echo hi'")},
		{"sudo odd user", "echo hi", connectors.Wrap{Sudo: true, SudoUser: "it's"}, `sudo -H -n -u 'it'\''s' -- ` + guarded("sh -c 'echo hi'")},
		{"sudo quote", "echo 'hi'", connectors.Wrap{Sudo: true}, `sudo -H -n -- ` + guarded(`sh -c 'echo '\''hi'\'''`)},
		{"sudo user without sudo is ignored", "echo hi", connectors.Wrap{SudoUser: "root"}, "echo hi"},
		{"sudo su", "id", connectors.Wrap{Sudo: true, SuUser: "postgres"}, `sudo -H -n -- su -s "$(command -v sh)" postgres -c ` + suArg("sh -c id")},
		{"sudo bash env chdir", "pwd", connectors.Wrap{Sudo: true, SudoUser: "app", ShellExecutable: "bash", Env: map[string]string{"X": "$y"}, Chdir: "/srv"},
			`sudo -H -n -u app -- ` + guarded(`bash -c 'export X='\''$y'\'' && cd /srv && { pwd`+"\n}'")},
		{"doas", "echo hi", connectors.Wrap{Doas: true}, "doas -n " + guarded("sh -c 'echo hi'")},
		{"doas user", "echo hi", connectors.Wrap{Doas: true, DoasUser: "bob"}, "doas -n -u bob " + guarded("sh -c 'echo hi'")},
		{"doas user without doas is ignored", "echo hi", connectors.Wrap{DoasUser: "bob"}, "echo hi"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := connectors.Render(tt.cmd, tt.w)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tt.want {
				t.Errorf("Render(%q, %+v)\n got %q\nwant %q", tt.cmd, tt.w, got, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	for _, tt := range []renderCase{
		{"sudo and doas", "id", connectors.Wrap{Sudo: true, Doas: true}, "sudo and doas cannot both be set"},
		{"env leading digit", "id", connectors.Wrap{Env: map[string]string{"1A": "x"}}, `env: "1A" is not a valid variable name`},
		{"env dash", "id", connectors.Wrap{Env: map[string]string{"A-B": "x"}}, `"A-B" is not a valid variable name`},
		{"env empty", "id", connectors.Wrap{Env: map[string]string{"": "x"}}, `"" is not a valid variable name`},
		{"env space", "id", connectors.Wrap{Env: map[string]string{"A B": "x"}}, `"A B" is not a valid variable name`},
		{"env equals", "id", connectors.Wrap{Env: map[string]string{"A=B": "x"}}, `"A=B" is not a valid variable name`},
		{"env injection", "id", connectors.Wrap{Env: map[string]string{"A=1; rm -rf /; B": "x"}}, "is not a valid variable name"},
		{"env non-ASCII", "id", connectors.Wrap{Env: map[string]string{"É": "x"}}, "is not a valid variable name"},
		{"env NUL value", "id", connectors.Wrap{Env: map[string]string{"A": "a\x00b"}}, "NUL"},
		{"NUL command", "echo a\x00b", connectors.Wrap{}, "command: contains a NUL byte"},
		{"NUL chdir", "id", connectors.Wrap{Chdir: "/tmp\x00"}, "chdir: contains a NUL byte"},
		{"NUL su user", "id", connectors.Wrap{SuUser: "a\x00"}, "su_user: contains a NUL byte"},
		{"su user -", "id", connectors.Wrap{SuUser: "-"}, `su_user "-": a user name cannot start with -`},
		{"su user option", "id", connectors.Wrap{SuUser: "-c"}, "cannot start with -"},
		{"sudo user option", "id", connectors.Wrap{Sudo: true, SudoUser: "-s"}, `sudo_user "-s"`},
		{"doas user option", "id", connectors.Wrap{Doas: true, DoasUser: "-x"}, `doas_user "-x"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := connectors.Render(tt.cmd, tt.w)
			if err == nil {
				t.Fatalf("Render = %q, want an error containing %q", got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRenderRunsEnv(t *testing.T) {
	for _, v := range nasty {
		script, err := connectors.Render(`printf '%s' "$X"`, connectors.Wrap{Env: map[string]string{"X": v, "Y": "other"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := shell(t, "", script); got != v {
			t.Errorf("env X=%q: printed %q", v, got)
		}
	}
	// Several keys, each intact.
	env := map[string]string{}
	keys := []string{"A", "B_2", "_c", "Zz"}
	for i, k := range keys {
		env[k] = nasty[(i*7)%len(nasty)]
	}
	script, err := connectors.Render(`printf '%s|' "$A" "$B_2" "$_c" "$Zz"`, connectors.Wrap{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, k := range keys {
		want.WriteString(env[k] + "|")
	}
	if got := shell(t, "", script); got != want.String() {
		t.Errorf("several keys: got %q, want %q", got, want.String())
	}
}

func TestRenderRunsChdir(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"plain", "with space", "it's", `"dq"`, "$HOME", "$(id)", "back\\slash", "new\nline", "héllo ☃", "-dash", "-"} {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, chdir := range []string{dir, name} { // absolute, and relative to root
			script, err := connectors.Render("pwd", connectors.Wrap{Chdir: chdir, Env: map[string]string{"X": "1"}})
			if err != nil {
				t.Fatal(err)
			}
			got := shell(t, root, script)
			if want := dir + "\n"; got != want && filepath.Clean(strings.TrimSuffix(got, "\n")) != dir {
				t.Errorf("chdir %q: pwd printed %q, want %q", chdir, got, want)
			}
		}
	}
}

func TestRenderChdirFailureStopsWholeCommand(t *testing.T) {
	root := t.TempDir()
	marker := filepath.Join(root, "ran")
	cmd := "echo first\ntouch " + connectors.Quote(marker) + "; echo second || echo third & wait"
	script, err := connectors.Render(cmd, connectors.Wrap{Chdir: filepath.Join(root, "missing")})
	if err != nil {
		t.Fatal(err)
	}
	c := exec.CommandContext(t.Context(), "sh", "-c", script)
	out, err := c.Output()
	if err == nil {
		t.Errorf("script succeeded; want the failed cd to fail it")
	}
	if len(out) != 0 {
		t.Errorf("stdout %q; want nothing to run after a failed cd", out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command ran although cd failed")
	}
}

func TestRenderKeepsExitStatusAndComments(t *testing.T) {
	for _, w := range []connectors.Wrap{{}, {Chdir: "/"}, {Env: map[string]string{"A": "1"}}, {ShellExecutable: "sh", Chdir: "/"}} {
		script, err := connectors.Render("echo $A # a trailing comment", w)
		if err != nil {
			t.Fatal(err)
		}
		shell(t, "", script)
		script, err = connectors.Render("true\nexit 7", w)
		if err != nil {
			t.Fatal(err)
		}
		err = exec.CommandContext(t.Context(), "sh", "-c", script).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Errorf("wrap %+v: exit 7 gave %v", w, err)
		}
	}
}

func TestRenderRunsShellExecutable(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := filepath.Join(t.TempDir(), "it's here")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range nasty {
		script, err := connectors.Render(`printf '%s|%s|' "$X" "${BASH_VERSION:+bash}"; pwd`,
			connectors.Wrap{ShellExecutable: "bash", Env: map[string]string{"X": v}, Chdir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := shell(t, "", script), v+"|bash|"+dir+"\n"; got != want {
			t.Errorf("bash with X=%q: got %q, want %q", v, got, want)
		}
	}
}

// TestRenderRunsPrivileged runs the su and sudo forms for real when this
// test runs as root (switching users needs no password then), to root and
// to "nobody", whose login shell is usually nologin.
func TestRenderRunsPrivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not running as root; su/sudo would ask for a password")
	}
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} { // let nobody in
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, `it's "here"`)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := ""
	if u, err := user.Lookup("nobody"); err == nil {
		nobody = u.Uid
	}
	const cmd = `printf '%s|%s|' "$X" "$(id -u)"; pwd`
	for _, tt := range []struct {
		name, tool, uid string
		w               connectors.Wrap
	}{
		{"su", "su", "0", connectors.Wrap{SuUser: "root"}},
		{"su nobody", "su", nobody, connectors.Wrap{SuUser: "nobody"}},
		{"su nobody bash", "su", nobody, connectors.Wrap{SuUser: "nobody", ShellExecutable: "bash"}},
		{"sudo", "sudo", "0", connectors.Wrap{Sudo: true}},
		{"sudo user", "sudo", "0", connectors.Wrap{Sudo: true, SudoUser: "root"}},
		{"sudo nobody", "sudo", nobody, connectors.Wrap{Sudo: true, SudoUser: "nobody"}},
		{"sudo su nobody", "sudo", nobody, connectors.Wrap{Sudo: true, SuUser: "nobody"}},
		{"doas", "doas", "0", connectors.Wrap{Doas: true, DoasUser: "root"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(tt.tool); err != nil {
				t.Skipf("%s is not installed", tt.tool)
			}
			if tt.uid == "" {
				t.Skip("there is no user nobody")
			}
			if tt.w.ShellExecutable != "" {
				if _, err := exec.LookPath(tt.w.ShellExecutable); err != nil {
					t.Skipf("%s is not installed", tt.w.ShellExecutable)
				}
			}
			for _, v := range nasty {
				w := tt.w
				w.Env = map[string]string{"X": v}
				w.Chdir = dir
				script, err := connectors.Render(cmd, w)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := shell(t, "", script), v+"|"+tt.uid+"|"+dir+"\n"; got != want {
					t.Errorf("X=%q: got %q, want %q (script %q)", v, got, want, script)
				}
			}
		})
	}
}
