package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// confirmDeploy writes a deploy that creates dir/out.txt and returns its
// path and the file's.
func confirmDeploy(t *testing.T, dir string) (deploy, out string) {
	out = filepath.Join(dir, "out.txt")
	return writeFile(t, dir, "d.star", `put("`+out+`", content="hello\n")`+"\n"), out
}

// TestConfirmWithoutTerminal runs the binary with stdin not a terminal:
// --confirm (from the flag, the config file or the environment) without -y
// is exit 2 before any host is touched; -y applies without asking.
func TestConfirmWithoutTerminal(t *testing.T) {
	bin := buildBinary(t)
	tests := []struct {
		name   string
		args   []string
		env    string
		config string
		code   int
		want   string // in stderr
		made   bool   // out.txt exists afterwards
	}{
		{name: "flag", args: []string{"--confirm"}, code: exitUsage, want: "stdin is not a terminal; pass -y (--yes)"},
		{name: "flag after the script", args: []string{"@local", "SCRIPT", "--confirm"}, code: exitUsage, want: "pass -y"},
		{name: "config file", config: "confirm = True\n", code: exitUsage, want: "pass -y"},
		{name: "environment", env: "STAR_DEPLOY_CONFIRM=true", code: exitUsage, want: "pass -y"},
		{name: "-y", args: []string{"--confirm", "-y"}, code: exitOK, made: true},
		{name: "--yes in the environment", env: "STAR_DEPLOY_YES=true", config: "confirm = True\n", code: exitOK, made: true},
		{name: "--no-confirm over the config file", args: []string{"--no-confirm"}, config: "confirm = True\n", code: exitOK, made: true},
		{name: "--dry has nothing to confirm", args: []string{"--confirm", "--dry"}, code: exitOK},
		{name: "--json", args: []string{"--confirm", "--json"}, code: exitUsage, want: "pass -y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			deploy, out := confirmDeploy(t, dir)
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "SCRIPT") {
				args = append(args, "@local", "SCRIPT")
			}
			for i, a := range args {
				if a == "SCRIPT" {
					args[i] = deploy
				}
			}
			if tt.config != "" {
				writeFile(t, dir, "star-deploy.star", tt.config)
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir // stdin: /dev/null
			cmd.Env = os.Environ()
			if tt.env != "" {
				cmd.Env = append(cmd.Env, tt.env)
			}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit code %d, want %d; stderr does not contain %q?\n%s", code, tt.code, tt.want, stderr.String())
			}
			if code == exitUsage && stdout.String() != "" && !strings.Contains(strings.Join(args, " "), "--json") {
				t.Errorf("stdout is not empty:\n%s", stdout.String())
			}
			if exists(t, out) != tt.made {
				t.Errorf("out.txt exists: %v, want %v", exists(t, out), tt.made)
			}
			if strings.Contains(stderr.String(), "[y/N]") {
				t.Errorf("asked without a terminal:\n%s", stderr.String())
			}
		})
	}
}

// ptyRun is the binary running on a pseudo-terminal (util-linux script).
type ptyRun struct {
	stdin io.WriteCloser       // the terminal's keyboard
	out   *conntest.SyncBuffer // what the terminal showed
	done  chan error           // the end of script
	asked chan struct{}        // closed once the question is on the screen
}

// startOnPTY runs the shell command line on a pseudo-terminal, in dir.
func startOnPTY(t *testing.T, dir, line string) *ptyRun {
	t.Helper()
	scriptCmd, err := exec.LookPath("script")
	if err != nil {
		sshtest.Skip(t, "script (util-linux) is not installed")
	}
	p := &ptyRun{out: &conntest.SyncBuffer{}, done: make(chan error, 1), asked: make(chan struct{})}
	// The shell ignores SIGINT (see startAtPassphrasePrompt); line ends by
	// printing the binary's exit code.
	cmd := exec.Command(scriptCmd, "-qec", "trap '' INT; "+line+"; echo exit=$?", "/dev/null")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = &signalOn{w: p.out, marker: "[y/N]", fn: func() { close(p.asked) }}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	go func() { p.done <- cmd.Wait() }()
	return p
}

// answer waits for the question and types line and Enter.
func (p *ptyRun) answer(t *testing.T, line string) {
	t.Helper()
	p.keys(t, line+"\n")
}

// keys waits for the question and types keys.
func (p *ptyRun) keys(t *testing.T, keys string) {
	t.Helper()
	select {
	case <-p.asked:
	case err := <-p.done:
		t.Fatalf("ended (%v) without asking:\n%s", err, p.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no question:\n%s", p.out.String())
	}
	io.WriteString(p.stdin, keys)
}

// wait waits for the end and returns what the terminal showed.
func (p *ptyRun) wait(t *testing.T) string {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%v\n%s", err, p.out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running:\n%s", p.out.String())
	}
	return p.out.String()
}

// TestConfirmOnTerminal answers the question of --confirm on a
// pseudo-terminal: y applies the dry run's changes, n (or just Enter)
// changes nothing and exits 0, and with nothing to change there is no
// question.
func TestConfirmOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	for _, tt := range []struct {
		answer string
		made   bool
		want   string
	}{
		{"y", true, "Changed:"},
		{"YES", true, "Changed:"},
		{"n", false, "not applied; nothing was changed"},
		{"", false, "not applied; nothing was changed"},
	} {
		t.Run("answer "+tt.answer, func(t *testing.T) {
			dir := t.TempDir()
			deploy, out := confirmDeploy(t, dir)
			p := startOnPTY(t, dir, bin+" --confirm @local "+deploy)
			p.answer(t, tt.answer)
			screen := p.wait(t)
			for _, want := range []string{"Would change:", "[@local] put " + out, "Apply these changes to 1 host? [y/N]", tt.want, "exit=0"} {
				if !strings.Contains(screen, want) {
					t.Errorf("the terminal does not show %q:\n%s", want, screen)
				}
			}
			if exists(t, out) != tt.made {
				t.Errorf("out.txt exists: %v, want %v\n%s", exists(t, out), tt.made, screen)
			}
		})
	}
	t.Run("Ctrl-C at the question", func(t *testing.T) {
		dir := t.TempDir()
		deploy, out := confirmDeploy(t, dir)
		p := startOnPTY(t, dir, bin+" --confirm @local "+deploy)
		p.keys(t, "\x03") // the terminal sends SIGINT
		screen := p.wait(t)
		if !strings.Contains(screen, "exit=130") || exists(t, out) {
			t.Errorf("Ctrl-C at the question (out.txt made: %v):\n%s", exists(t, out), screen)
		}
	})
	t.Run("nothing to change", func(t *testing.T) {
		dir := t.TempDir()
		deploy, out := confirmDeploy(t, dir)
		if err := os.WriteFile(out, []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// confirm = True in the config file this time.
		writeFile(t, dir, "star-deploy.star", "confirm = True\n")
		screen := startOnPTY(t, dir, bin+" @local "+deploy).wait(t)
		for _, want := range []string{"nothing to change on 1 host; not asking, not applying", "exit=0"} {
			if !strings.Contains(screen, want) {
				t.Errorf("the terminal does not show %q:\n%s", want, screen)
			}
		}
		if strings.Contains(screen, "[y/N]") {
			t.Errorf("asked with nothing to change:\n%s", screen)
		}
	})
	t.Run("a failing dry run", func(t *testing.T) {
		dir := t.TempDir()
		deploy := writeFile(t, dir, "d.star", "shell(\"true\")\nx = {}[\"missing\"]\n")
		screen := startOnPTY(t, dir, bin+" --confirm @local "+deploy).wait(t)
		if !strings.Contains(screen, "the dry run failed on 1 of 1 host; nothing was changed") || !strings.Contains(screen, "exit=1") || strings.Contains(screen, "[y/N]") {
			t.Errorf("a failing dry run:\n%s", screen)
		}
	})
}

// TestConfirmReusesSSHConnection answers y on a pseudo-terminal for a run
// against a real sshd: the dry run and the real run share one connection.
func TestConfirmReusesSSHConnection(t *testing.T) {
	bin := buildBinary(t)
	srv := sshtest.Start(t, sshtest.Options{})
	key, pub := sshtest.KeyPair(t, "ed25519", "")
	srv.AuthorizeKey(t, pub)
	dir := t.TempDir()
	remote := filepath.Join(t.TempDir(), "remote.txt") // sshd runs as this user on loopback
	deploy := writeFile(t, dir, "d.star", `put("`+remote+`", content="over ssh\n")`+"\n")
	line := strings.Join([]string{bin, "--confirm", "--key", key, "--user", srv.User, "--data", "ssh_allow_agent=false",
		"--data", "ssh_known_hosts_file=" + filepath.Join(dir, "kh"), "@ssh/" + srv.Addr, deploy}, " ")
	p := startOnPTY(t, dir, line)
	p.answer(t, "y")
	screen := p.wait(t)
	if !strings.Contains(screen, "Changed:") || !strings.Contains(screen, "exit=0") {
		t.Fatalf("the run did not apply:\n%s", screen)
	}
	if b, err := os.ReadFile(remote); err != nil || string(b) != "over ssh\n" {
		t.Fatalf("remote file: %q, %v", b, err)
	}
	if n := strings.Count(srv.Log(), "Accepted publickey"); n != 1 {
		t.Errorf("%d SSH logins for the dry run and the real run, want 1:\n%s", n, srv.Log())
	}
}

// TestConfirmOnHost: --confirm with --on-host does the dry run on the
// host, asks, then does the real run there, on the same connection.
func TestConfirmOnHost(t *testing.T) {
	bin := buildBinary(t)
	cache := t.TempDir()
	srv := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"SetEnv XDG_CACHE_HOME=" + cache}})
	dir := t.TempDir()
	remote := filepath.Join(t.TempDir(), "remote.txt")
	deploy := writeFile(t, dir, "d.star", `put("`+remote+`", content="on the host\n")`+"\n")
	line := strings.Join([]string{bin, "--confirm", "--on-host", "--on-host-binary", "linux/amd64=" + bin, "--key", srv.ClientKeyPath, "--user", srv.User,
		"--data", "ssh_allow_agent=false", "--data", "ssh_known_hosts_file=" + filepath.Join(dir, "kh"), "@ssh/" + srv.Addr, deploy}, " ")
	p := startOnPTY(t, dir, line)
	p.answer(t, "y")
	screen := p.wait(t)
	for _, want := range []string{"Would change:", "Apply these changes to 1 host? [y/N]", "Changed:", "exit=0"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, screen)
		}
	}
	if bundles, _ := filepath.Glob(filepath.Join(cache, "star-deploy", "bundles", "*.bundle")); strings.Contains(screen, "normal way") || len(bundles) != 1 {
		t.Errorf("--confirm ran the normal way (bundles on the host: %q):\n%s", bundles, screen)
	}
	if b, err := os.ReadFile(remote); err != nil || string(b) != "on the host\n" {
		t.Fatalf("remote file: %q, %v", b, err)
	}
	if n := strings.Count(srv.Log(), "Accepted publickey"); n != 1 {
		t.Errorf("%d SSH logins for the dry run and the real run, want 1:\n%s", n, srv.Log())
	}
}

// TestConnPool checks the pool that carries the dry run's connections to
// the real run: each is taken once, one that no longer answers is replaced,
// and what no run took is closed at the end.
func TestConnPool(t *testing.T) {
	var opened []*fake.Conn
	reg := connectors.NewRegistry(fake.NewFactory(func(tg connectors.Target) *fake.Conn {
		c := fake.New(tg.Name)
		opened = append(opened, c)
		return c
	}))
	pool := newConnPool()
	preg := pool.registry(reg)
	f, _ := preg.Lookup("fake")
	ctx := context.Background()
	targets := map[string]connectors.Target{}
	for _, name := range []string{"a", "b", "c"} {
		tg, err := preg.Target("@fake/"+name, nil)
		if err != nil {
			t.Fatal(err)
		}
		targets[name] = tg
		c, err := f.Open(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range opened {
		if c.Closed() {
			t.Fatal("the dry run closed a kept connection")
		}
	}
	opened[1].On("true", connectors.Result{ExitCode: 255}) // b dropped its connection
	pool.reuse()
	a, _ := f.Open(ctx, targets["a"])
	if a != opened[0] {
		t.Errorf("the real run did not get a's kept connection")
	}
	b, _ := f.Open(ctx, targets["b"])
	if b == opened[1] || !opened[1].Closed() || len(opened) != 4 {
		t.Errorf("b's dead connection was not replaced")
	}
	a.Close()
	if !opened[0].Closed() {
		t.Error("Close in the real run did not close")
	}
	if again, _ := f.Open(ctx, targets["a"]); again == opened[0] {
		t.Error("a kept connection was handed out twice")
	}
	pool.closeAll()
	if !opened[2].Closed() {
		t.Error("closeAll left c's connection open")
	}
}

// TestAskYesNo checks the answers and that a cancel ends the question.
func TestAskYesNo(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "Yes\n": true, " y \n": true, "n\n": false, "\n": false, "yy\n": false, "y": true} {
		got, err := askYesNo(context.Background(), strings.NewReader(in), io.Discard, "? ")
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := askYesNo(context.Background(), strings.NewReader(""), io.Discard, "? "); !errors.Is(err, io.EOF) {
		t.Errorf("no answer at all: %v, want EOF", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, w := io.Pipe()
	defer w.Close()
	if _, err := askYesNo(ctx, r, io.Discard, "? "); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
