package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// inventoryUser runs `@local inventory` and returns the ssh_user line it
// prints, which --user (or its default) sets.
func inventoryUser(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, append(args, "@local", "inventory")...)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, "ssh_user") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// TestConfigPrecedence: flag > environment > config file > built-in
// default, for a plain flag and for --data, with the config file found in
// the current directory.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if got := inventoryUser(t); got != "" {
		t.Fatalf("no config: ssh_user = %q, want none", got)
	}
	writeFile(t, dir, "star-deploy.star", "user = \"fromconfig\"\ndata = {\"team\": \"c\", \"n\": 3}\n")
	if got, want := inventoryUser(t), `ssh_user = "fromconfig"`; got != want {
		t.Errorf("config: %q, want %q", got, want)
	}
	t.Setenv("STAR_DEPLOY_USER", "fromenv")
	if got, want := inventoryUser(t), `ssh_user = "fromenv"`; got != want {
		t.Errorf("env over config: %q, want %q", got, want)
	}
	if got, want := inventoryUser(t, "--user", "fromflag"), `ssh_user = "fromflag"`; got != want {
		t.Errorf("flag over env: %q, want %q", got, want)
	}

	t.Setenv("STAR_DEPLOY_DATA", "n=4")
	code, stdout, stderr := runCLI(t, "--data", "team=f", "@local", "inventory")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{`team = "f"`, `n = "4"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("data: want %s in:\n%s", want, stdout)
		}
	}
}

// TestConfigWorldWritable: the config file of the current directory is not
// read when the directory or the file is writable by everyone (anyone could
// have put it in /tmp), as Ansible ignores such an ansible.cfg; stderr says
// so and how to read it anyway, which --config does.
func TestConfigWorldWritable(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := writeFile(t, dir, "star-deploy.star", "user = \"fromconfig\"\n")
	for _, mode := range []struct {
		path string
		perm os.FileMode
	}{{dir, 0o777}, {dir, 0o1777}, {cfg, 0o666}} {
		if err := os.Chmod(mode.path, mode.perm); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCLI(t, "@local", "inventory")
		if code != 0 || strings.Contains(stdout, "fromconfig") {
			t.Errorf("%s mode %o: exit %d, the config was read:\n%s", mode.path, mode.perm, code, stdout)
		}
		if want := "not reading star-deploy.star of the current directory"; !strings.Contains(stderr, want) || !strings.Contains(stderr, "--config star-deploy.star") {
			t.Errorf("%s mode %o: stderr %q, want %q and how to read it anyway", mode.path, mode.perm, stderr, want)
		}
		if got, want := inventoryUser(t, "--config", "star-deploy.star"), `ssh_user = "fromconfig"`; got != want {
			t.Errorf("%s mode %o, --config: %q, want %q", mode.path, mode.perm, got, want)
		}
		if err := os.Chmod(mode.path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := runCLI(t, "@local", "inventory")
	if code != 0 || !strings.Contains(stdout, "fromconfig") || stderr != "" {
		t.Errorf("mode 0755 again: exit %d, stdout %q, stderr %q; want the config read, quietly", code, stdout, stderr)
	}
}

// TestConfigHelpShowsEffectiveDefault: --help shows the built-in default,
// then the config file's, then the environment's.
func TestConfigHelpShowsEffectiveDefault(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	help := func() string {
		t.Helper()
		code, stdout, stderr := runCLI(t, "--help")
		if code != 0 {
			t.Fatalf("--help: exit %d: %s", code, stderr)
		}
		return strings.Join(strings.Fields(stdout), " ")
	}
	if h := help(); !strings.Contains(h, "Default: 20. ($STAR_DEPLOY_PARALLEL)") {
		t.Errorf("built-in default of --parallel missing:\n%s", h)
	}
	writeFile(t, dir, "star-deploy.star", "parallel = 50\nfail_percent = 10\nsudo = True\nlimit = [\"web\", \"db\"]\n")
	h := help()
	for _, want := range []string{"Default: 50. ($STAR_DEPLOY_PARALLEL)", "Default: 10. ($STAR_DEPLOY_FAIL_PERCENT)", "Default: web,db."} {
		if !strings.Contains(h, want) {
			t.Errorf("config: want %q in help:\n%s", want, h)
		}
	}
	t.Setenv("STAR_DEPLOY_PARALLEL", "7")
	if h := help(); !strings.Contains(h, "Default: 7. ($STAR_DEPLOY_PARALLEL)") {
		t.Errorf("env: default 7 missing:\n%s", h)
	}
}

// TestConfigFlag: --config names the file; the default one is then not read.
func TestConfigFlag(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFile(t, dir, "star-deploy.star", "user = \"default\"\n")
	other := writeFile(t, dir, "sub/other.star", "user = \"other\"\n")
	if got, want := inventoryUser(t, "--config", other), `ssh_user = "other"`; got != want {
		t.Errorf("--config FILE: %q, want %q", got, want)
	}
	if got, want := inventoryUser(t, "--config="+other), `ssh_user = "other"`; got != want {
		t.Errorf("--config=FILE: %q, want %q", got, want)
	}
	code, _, stderr := runCLI(t, "--config", filepath.Join(dir, "missing.star"), "@local", "inventory")
	if code != 2 || !strings.Contains(stderr, "missing.star") {
		t.Errorf("missing --config file: exit %d, stderr %q; want 2 naming the file", code, stderr)
	}
}

// TestConfigErrors: an unknown name, a wrong type, a bad program or a bad
// environment value is exit 2 before anything runs, naming where.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown", "parallel = 5\n\nparalel = 3\n", "bad.star:3: paralel is not a setting; did you mean parallel?"},
		{"unknown far", "zzzzzz = 1\n", "bad.star:1: zzzzzz is not a setting; the settings are"},
		{"bool", "x = 1\nsudo = \"yes\"\n", "bad.star:2: sudo: want a bool (True or False), got string"},
		{"local first", "def _f():\n  parallel = 1\n  return parallel\nparallel = \"50\"\n", "bad.star:4: parallel: want an int, got string"},
		{"int", "parallel = \"50\"\n", "bad.star:1: parallel: want an int, got string"},
		{"data", "data = {\"a\": [1]}\n", "bad.star:1: data: a: want a str, int or bool value, got list"},
		{"builtin", "x = shell(\"ls\")\n", "undefined: shell"},
		{"loop", "while True:\n  pass\n", "too many steps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker := filepath.Join(dir, "ran")
			p := writeFile(t, dir, "bad.star", tc.src)
			code, _, stderr := runCLI(t, "--config", p, "@local", "exec", "--", "touch", marker)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 containing %q", code, stderr, tc.want)
			}
			if exists(t, marker) {
				t.Error("the command ran despite the config error")
			}
		})
	}
	t.Setenv("STAR_DEPLOY_PARALLEL", "many")
	code, _, stderr := runCLI(t, "@local", "inventory")
	if code != 2 || !strings.Contains(stderr, `STAR_DEPLOY_PARALLEL="many": want an integer`) {
		t.Errorf("bad env: exit %d, stderr %q", code, stderr)
	}
}

// TestNegatedFlagBeatsConfig: a bool the config file turns on is turned off
// for one run with --no-FLAG (flag > config).
func TestNegatedFlagBeatsConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cfg.star", "dry = True\n")
	out := filepath.Join(dir, "out.txt")
	script := writeFile(t, dir, "p.star", "put("+q(out)+", content = 'x')\n")
	if code, stdout, stderr := runCLI(t, "--config", cfg, "@local", script); code != 0 || exists(t, out) {
		t.Fatalf("config dry = True: exit %d, file written %v\n%s%s", code, exists(t, out), stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, "--config", cfg, "--no-dry", "@local", script); code != 0 || !exists(t, out) {
		t.Fatalf("--no-dry: exit %d, file written %v\n%s%s", code, exists(t, out), stdout, stderr)
	}
}
