package main

import (
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors/all"
)

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		command string
		inv     string
		rest    []string
		check   func(t *testing.T, c *cli)
	}{
		{
			name: "flag after script", args: []string{"@local", "x.star", "--dry"},
			command: "run", inv: "@local", rest: []string{"x.star"},
			check: func(t *testing.T, c *cli) {
				if !c.Dry {
					t.Error("--dry not set")
				}
			},
		},
		{
			name: "flag before inventory", args: []string{"--dry", "@local", "x.star"},
			command: "run", inv: "@local", rest: []string{"x.star"},
			check: func(t *testing.T, c *cli) {
				if !c.Dry {
					t.Error("--dry not set")
				}
			},
		},
		{
			name: "several scripts", args: []string{"@local,@docker/a", "a.star", "b.star"},
			command: "run", inv: "@local,@docker/a", rest: []string{"a.star", "b.star"},
		},
		{
			name: "explicit run", args: []string{"run", "@local", "x.star"},
			command: "run", inv: "@local", rest: []string{"x.star"},
		},
		{
			name: "exec", args: []string{"@local", "exec", "--", "ls", "-la"},
			command: "run", inv: "@local", rest: []string{"exec", "ls", "-la"},
		},
		{
			name: "flags after -- belong to the command", args: []string{"-v", "@local", "exec", "--", "ls", "--dry", "-v"},
			command: "run", inv: "@local", rest: []string{"exec", "ls", "--dry", "-v"},
			check: func(t *testing.T, c *cli) {
				if c.Dry {
					t.Error("--dry after -- was taken as a flag")
				}
				if c.Verbose != 1 {
					t.Error("-v before the inventory was not taken")
				}
			},
		},
		{
			name: "-- before the scripts", args: []string{"--dry", "@local", "--", "--weird.star"},
			command: "run", inv: "@local", rest: []string{"--weird.star"},
		},
		{
			name: "a second -- belongs to the command", args: []string{"@local", "exec", "--", "grep", "--", "-x", "f"},
			command: "run", inv: "@local", rest: []string{"exec", "grep", "--", "-x", "f"},
		},
		{
			name: "fact", args: []string{"@local", "fact", "file", "/etc/passwd"},
			command: "run", inv: "@local", rest: []string{"fact", "file", "/etc/passwd"},
		},
		{
			name:    "all flags",
			args:    []string{"@local", "x.star", "--diff", "--json", "--parallel", "5", "--sudo", "--sudo-user", "app", "-v", "--max-steps", "1000"},
			command: "run", inv: "@local", rest: []string{"x.star"},
			check: func(t *testing.T, c *cli) {
				want := flags{Diff: true, JSON: true, Parallel: 5, Sudo: true, SudoUser: "app", Verbose: 1, MaxSteps: 1000}
				if !reflect.DeepEqual(c.flags, want) {
					t.Errorf("flags = %+v, want %+v", c.flags, want)
				}
			},
		},
		{
			name: "defaults", args: []string{"@local", "x.star"},
			command: "run", inv: "@local", rest: []string{"x.star"},
			check: func(t *testing.T, c *cli) {
				if c.Parallel != 20 {
					t.Errorf("--parallel default = %d, want 20", c.Parallel)
				}
			},
		},
		{
			name:    "data is repeatable and never split on commas",
			args:    []string{"--data", "role=web", "@local", "x.star", "--data=success_exit_codes=0,1", "--data", "empty=", "--data", "eq=a=b"},
			command: "run", inv: "@local", rest: []string{"x.star"},
			check: func(t *testing.T, c *cli) {
				want := []string{"role=web", "success_exit_codes=0,1", "empty=", "eq=a=b"}
				if !reflect.DeepEqual(c.Data, want) {
					t.Errorf("--data = %q, want %q", c.Data, want)
				}
			},
		},
		{name: "connectors", args: []string{"connectors"}, command: "connectors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, kctx, err := parse(tt.args, io.Discard, io.Discard)
			if err != nil {
				t.Fatalf("parse(%q): %v", tt.args, err)
			}
			if got := strings.Fields(kctx.Command())[0]; got != tt.command {
				t.Errorf("command = %q, want %q", got, tt.command)
			}
			if tt.command == "run" {
				if c.Run.Inventory != tt.inv {
					t.Errorf("inventory = %q, want %q", c.Run.Inventory, tt.inv)
				}
				if !reflect.DeepEqual(c.Run.Args, tt.rest) {
					t.Errorf("args = %q, want %q", c.Run.Args, tt.rest)
				}
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestParseData(t *testing.T) {
	reg := all.Registry()
	got, err := parseData(reg, []string{"role=web", "list=a,b", "empty=", "eq=a=b", "role=db"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"role": "db", "list": "a,b", "empty": "", "eq": "a=b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseData = %v, want %v", got, want)
	}
	for _, bad := range []string{"noequals", "=v", "1x=v", "a-b=v", "local_bogus=1"} {
		if _, err := parseData(reg, []string{bad}); err == nil {
			t.Errorf("parseData(%q) succeeded, want an error", bad)
		}
	}
}

func TestSources(t *testing.T) {
	tests := []struct {
		args []string
		mode mode
		src  string
	}{
		{[]string{"exec", "echo", "hi"}, modeExec, `shell("echo hi", name="exec")` + "\n"},
		{[]string{"exec", "echo", "a b", "it's"}, modeExec, `shell("echo 'a b' 'it'\\''s'", name="exec")` + "\n"},
		{[]string{"exec", "echo $HOME | wc -c"}, modeExec, `shell("echo $HOME | wc -c", name="exec")` + "\n"},
		{[]string{"exec", "printf", `"\n"`}, modeExec, `shell("printf '\"\\n\"'", name="exec")` + "\n"},
		{[]string{"fact", "arch"}, modeFact, `print(fact("arch"))` + "\n"},
		{[]string{"fact", "file", "/etc/a\"b"}, modeFact, `print(fact("file", "/etc/a\"b"))` + "\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCmd{Inventory: "@local", Args: tt.args}
			m, srcs, err := r.sources(false)
			if err != nil {
				t.Fatal(err)
			}
			if m != tt.mode || len(srcs) != 1 {
				t.Fatalf("mode %v, %d sources; want mode %v, 1 source", m, len(srcs), tt.mode)
			}
			if got := string(srcs[0].src); got != tt.src {
				t.Errorf("source = %s, want %s", got, tt.src)
			}
		})
	}
}

// TestUsageErrors checks that mistakes found before any host runs exit 2
// with a message naming the mistake, and print nothing on stdout.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "ok.star", "print('hi')\n")
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no arguments", nil, "missing INVENTORY"},
		{"no script", []string{"@local"}, "missing SCRIPT"},
		{"no script after --", []string{"@local", "--"}, "missing SCRIPT"},
		{"arguments after -- for connectors", []string{"connectors", "--", "x"}, "takes no arguments"},
		{"unknown flag", []string{"@local", script, "--nope"}, "unknown flag --nope"},
		{"unknown connector", []string{"@nope/x", script}, `unknown connector "nope"`},
		{"unknown data key", []string{"--data", "local_bogus=1", "@local", script}, `unknown data key "local_bogus"`},
		{"data without =", []string{"--data", "role", "@local", script}, "want KEY=VALUE"},
		{"bad control value", []string{"--data", "sudo=maybe", "@local", script}, "sudo"},
		{"fractional retries", []string{"--data", "retries=1.5", "@local", script}, `--data retries: want a whole number, got "1.5"`},
		{"huge retries", []string{"--data", "retries=1e30", "@local", script}, `want a whole number, got "1e30"`},
		{"su user dash", []string{"--data", "su_user=-", "@local", script}, `--data su_user: "-": a user name cannot start with -`},
		{"env as a string", []string{"--data", "env=A=1", "@local", script}, "env"},
		{"negative parallel", []string{"--parallel", "-1", "@local", script}, "--parallel must be ≥ 0"},
		{"negative parallel after the arguments", []string{"@local", script, "--parallel", "-3"}, "--parallel must be ≥ 0 (0: all hosts at once), got -3"},
		{"negative fail percent", []string{"--fail-percent", "-1", "@local", script}, "--fail-percent must be between 0 and 100, got -1"},
		{"negative port", []string{"--port", "-22", "@local", script}, "--port must be between 1 and 65535, got -22"},
		{"negative max steps", []string{"--max-steps", "-1", "@local", script}, `--max-steps: expected a valid 64 bit uint but got "-1"`},
		{"non-UTF-8 host name", []string{"@ssh/h\xff", script}, `argument "@ssh/h\xff" is not valid UTF-8 text`},
		{"non-UTF-8 data value", []string{"--data", "role=a\xffb", "@local", script}, `--data value "role=a\xffb" is not valid UTF-8 text`},
		{"non-UTF-8 data value with =", []string{"--data=role=\xfe", "@local", script}, `--data value "--data=role=\xfe" is not valid UTF-8 text`},
		{"non-UTF-8 exec word", []string{"@local", "exec", "--", "printf", "\xff"}, `exec: the command word "\xff" is not valid UTF-8 text`},
		{"non-UTF-8 script", []string{"@local", writeFile(t, dir, "latin1.star", "# caf\xe9\nprint('caf\xe9')\n")}, "latin1.star:1:6: the file is not valid UTF-8 text (byte 0xe9)"},
		{"non-UTF-8 inventory.star", []string{writeFile(t, dir, "inventory.star", "web = [\"a\", \"h\xff\"]\n"), script}, "inventory.star:1: the file is not valid UTF-8 text (byte 0xff)"},
		{"non-UTF-8 host in an inventory", []string{writeFile(t, dir, "hosts.ini", "[web]\nh\xff\n"), script}, `host "h\xff": the name is not valid UTF-8 text`},
		{"missing script", []string{"@local", filepath.Join(dir, "missing.star")}, "missing.star does not exist"},
		{"script is a directory", []string{"@local", dir}, "is a directory"},
		{"empty inventory item", []string{"@local,", script}, "item 2 is empty"},
		{"duplicate host", []string{"@local,@local", script}, "named twice"},
		{"inventory file", []string{"hosts.star", script}, "hosts.star: no such file or directory"},
		{"exec without command", []string{"@local", "exec"}, "missing command"},
		{"fact without name", []string{"@local", "fact"}, "missing fact name"},
		{"flag of run on connectors", []string{"connectors", "--nope"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr does not contain %q:\n%s", tt.want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout is not empty:\n%s", stdout)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, ".go:") {
				t.Errorf("stderr looks like a Go stack trace:\n%s", stderr)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "--help")
	if code != exitOK {
		t.Errorf("--help: exit code %d, want 0", code)
	}
	for _, want := range []string{"exec -- CMD", "fact NAME", "--[no-]dry", "--data", "--parallel", "Exit codes:", "130"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help does not mention %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runCLI(t, "--version")
	if code != exitOK || !strings.HasPrefix(stdout, "star-deploy ") {
		t.Errorf("--version: exit code %d, output %q", code, stdout)
	}
}

func TestConnectorsCommand(t *testing.T) {
	code, stdout, stderr := runCLI(t, "connectors")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	for _, f := range all.Registry().Factories() {
		if !strings.Contains(stdout, "@"+f.Scheme()+"\n") {
			t.Errorf("connectors does not list @%s:\n%s", f.Scheme(), stdout)
		}
		for _, fld := range f.Fields() {
			if !strings.Contains(stdout, fld.Name) {
				t.Errorf("connectors does not list field %s:\n%s", fld.Name, stdout)
			}
		}
	}
}
