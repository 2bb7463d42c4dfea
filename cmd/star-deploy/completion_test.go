package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// completionDir writes an inventory and a deploy script into a temporary
// directory, the current directory of the completion tests.
func completionDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "inv.star", "web = [\"@local\", \"@docker/w1\"]\ndb = [\"@ssh/db1\"]\n")
	writeFile(t, dir, "hosts.ini", "[app]\nh1 ansible_host=127.0.0.1\n")
	writeFile(t, dir, "deploy.star", "def setup_nginx():\n    pass\n\ndef _helper():\n    pass\n")
	return dir
}

// completeWords runs `star-deploy __complete -- words...` in-process in dir
// and returns the directive line and the candidate words.
func completeWords(t *testing.T, dir string, words ...string) (directive string, cands []string) {
	t.Helper()
	t.Chdir(dir)
	code, stdout, stderr := runCLI(t, append([]string{completeCommand, "--"}, words...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("__complete %q: exit %d, stderr %q", words, code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	for _, l := range lines[1:] {
		w, _, _ := strings.Cut(l, "\t")
		cands = append(cands, w)
	}
	return lines[0], cands
}

func TestComplete(t *testing.T) {
	dir := completionDir(t)
	tests := []struct {
		words     []string
		want      []string // among the candidates
		not       []string // not among them
		directive string
	}{
		{words: []string{"--dr"}, want: []string{"--dry"}, not: []string{"--diff"}},
		{words: []string{"-"}, want: []string{"--dry", "--limit", "-v", "-q", "--help"}},
		{words: []string{"conn"}, want: []string{"connector", "connectors"}, directive: "files"},
		{words: []string{"comp"}, want: []string{"completion"}, directive: "files"},
		{words: []string{""}, want: []string{"connectors", "docs", "completion", "@local", "@ssh/", "@docker/"}, directive: "files"},
		{words: []string{"@local,@d"}, want: []string{"@local,@docker/"}, directive: "nospace"},
		{words: []string{"completion", ""}, want: []string{"bash", "zsh", "fish"}},
		{words: []string{"docs", "f"}, want: []string{"facts", "files"}},
		{words: []string{"@local", "fact", "o"}, want: []string{"os"}},
		{words: []string{"--dry", "@local", "fact", "o"}, want: []string{"os"}},
		{words: []string{"@local", "fil"}, want: []string{"files.put", "files.line", "files.directory"}, directive: "star"},
		{words: []string{"@local", "ops."}, not: []string{"ops.merge"}, directive: "star"},
		{words: []string{"@local", "e"}, want: []string{"exec"}, directive: "star"},
		{words: []string{"@local", "deploy.star:"}, want: []string{"deploy.star:setup_nginx"}, not: []string{"deploy.star:_helper"}},
		{words: []string{"@local", "files.put", "de"}, want: []string{"dest="}, directive: "files"},
		{words: []string{"@local", "files.put", "su"}, want: []string{"sudo="}, directive: "files"},
		{words: []string{"inv.star", "--limit", "w"}, want: []string{"web"}, not: []string{"db"}},
		{words: []string{"--limit", "w"}, not: []string{"web"}}, // no inventory yet
		{words: []string{"hosts.ini", "--limit", "a"}, want: []string{"app"}},
		{words: []string{"run", "inv.star", "--limit", "w"}, want: []string{"web"}},
		{words: []string{"inv.star", "--limit=w"}, want: []string{"--limit=web"}},
		{words: []string{"inv.star", "--exclude", "web,"}, want: []string{"web,db", "web,@ssh/db1", "web,@local"}},
		{words: []string{"inv.star", "-v", "--parallel", "3", "--limit", "d"}, want: []string{"db"}},
		{words: []string{"nosuch.star", "--limit", ""}}, // an inventory that does not load: nothing
		{words: []string{"--data", "ssh_p"}, want: []string{"ssh_port="}, directive: "nospace"},
		{words: []string{"--data", "ti"}, want: []string{"timeout="}, directive: "nospace"},
		{words: []string{"--key", ""}, directive: "files"},
		{words: []string{"@local", "exec", "--", "-"}, directive: "files"}, // after --, no flags
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words, " "), func(t *testing.T) {
			directive, cands := completeWords(t, dir, tt.words...)
			for _, w := range tt.want {
				if !slices.Contains(cands, w) {
					t.Errorf("%q missing from %q", w, cands)
				}
			}
			for _, w := range tt.not {
				if slices.Contains(cands, w) {
					t.Errorf("%q among %q", w, cands)
				}
			}
			if directive != tt.directive {
				t.Errorf("directive %q, want %q", directive, tt.directive)
			}
			cur := tt.words[len(tt.words)-1]
			for _, c := range cands {
				if !strings.HasPrefix(c, cur) {
					t.Errorf("candidate %q does not start with %q", c, cur)
				}
			}
		})
	}
}

// TestCompletionCommand checks the completion command's output and its
// errors, from the real binary.
func TestCompletionCommand(t *testing.T) {
	bin := buildBinary(t)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, err := exec.Command(bin, "completion", shell).Output()
		if err != nil {
			t.Fatalf("completion %s: %v", shell, err)
		}
		if !strings.Contains(string(out), "__complete --") {
			t.Errorf("completion %s does not call __complete:\n%s", shell, out)
		}
	}
	out, err := exec.Command(bin, "completion", "tcsh").CombinedOutput()
	if code := exitCodeOf(t, err); code != exitUsage || !strings.Contains(string(out), `"bash","zsh","fish"`) {
		t.Errorf("completion tcsh: exit %d, %s", code, out)
	}
	out, _ = exec.Command(bin, "completion", "--help").Output()
	if !strings.Contains(string(out), `eval "$(star-deploy completion bash)"`) {
		t.Errorf("completion --help does not say how to enable it:\n%s", out)
	}
	out, _ = exec.Command(bin, "--help").Output()
	if !strings.Contains(string(out), "completion bash|zsh|fish") {
		t.Errorf("--help does not show the completion command:\n%s", out)
	}
}

// exitCodeOf returns the exit code of a finished command's error.
func exitCodeOf(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// shellPath returns the path of the shell name, skipping the test when it
// is not installed (failing it under CI=true).
func shellPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		sshtest.Skip(t, name+" is not installed (apt-get install "+name+")")
	}
	return p
}

// shellEnv is the environment of the shells the tests run: the tested
// binary first on PATH, and no user configuration.
func shellEnv(t *testing.T, bin string) []string {
	t.Helper()
	return append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
}

// bashHarness sources the bash script and defines c LINE, which splits
// LINE into COMP_WORDS as readline does (at blanks, and at the word
// breaks = : @ of COMP_WORDBREAKS), sets COMP_LINE, COMP_POINT and
// COMP_CWORD, calls the completion function and prints COMPREPLY and
// whether nospace was asked, as "cand|cand|... nospace".
const bashHarness = `source <(star-deploy completion bash) || exit 1
complete -p star-deploy >/dev/null || exit 1
compopt() { [[ $* == "-o nospace" ]] && nospace=" nospace"; }
c() {
	COMP_LINE=$1 COMP_POINT=${#1} nospace=
	read -ra COMP_WORDS <<<"$(sed -E 's/([=:@])/ \1 /g' <<<"$1")"
	[[ $1 == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_star_deploy
	local IFS='|'
	printf '%s%s\n' "${COMPREPLY[*]}" "$nospace"
}
`

// TestCompletionBash sources the bash script in a real bash and asks it
// for completions, as readline would on TAB.
func TestCompletionBash(t *testing.T) {
	bash := shellPath(t, "bash")
	bin := buildBinary(t)
	dir := completionDir(t)
	tests := []struct{ line, want string }{
		{"star-deploy --dr", "--dry"},
		{"star-deploy connectors", "connectors"},
		{"star-deploy comp", "completion"},
		{"star-deploy completion ", "bash|zsh|fish"},
		{"star-deploy @local fact o", "os"},
		{"star-deploy @local fil", "files.put|files.template|files.get|files.line"}, // a prefix of the list
		{"star-deploy inv.star --limit w", "web"},
		{"star-deploy inv.star --limit=w", "web"}, // bash's word is "w", after "="
		{"star-deploy inv.star --limit web,d", "web,db"},
		{"star-deploy @lo", "local"}, // bash's word is "lo", after "@"
		{"star-deploy @local,@ss", "ssh/ nospace"},
		{"star-deploy @local dep", "deploy.star"},
		{"star-deploy @local deploy.star:se", "setup_nginx"},
		{"star-deploy @local files.put de", "dest=|deploy.star"},
		{"star-deploy --data ssh_po", "ssh_port= nospace"},
		{"star-deploy i", "inv.star"},
		{"star-deploy @local fact nosuchfact", ""},
	}
	var script strings.Builder
	script.WriteString(bashHarness)
	for _, tt := range tests {
		script.WriteString("c " + shellQuote(tt.line) + "\n")
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script.String())
	cmd.Dir, cmd.Env = dir, shellEnv(t, bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(tests) {
		t.Fatalf("bash printed %d lines for %d completions:\n%s", len(got), len(tests), out)
	}
	for i, tt := range tests {
		if got[i] != tt.want && !(strings.Contains(tt.want, "|") && strings.HasPrefix(got[i], tt.want+"|")) {
			t.Errorf("%q: COMPREPLY %q, want %q", tt.line, got[i], tt.want)
		}
	}
}

// TestCompletionFish sources the fish script in a real fish and asks it
// for the completions of command lines (complete -C).
func TestCompletionFish(t *testing.T) {
	fish := shellPath(t, "fish")
	bin := buildBinary(t)
	dir := completionDir(t)
	tests := []struct {
		line string
		want []string
	}{
		{"star-deploy --dr", []string{"--dry\tChange nothing: report what each operation would do"}},
		{"star-deploy conn", []string{"connector", "connectors"}},
		{"star-deploy @local fact o", []string{"os"}},
		{"star-deploy @local fil", []string{"files.put", "files.line"}},
		{"star-deploy inv.star --limit w", []string{"web\tgroup of 2 hosts"}},
		{"star-deploy @local dep", []string{"deploy.star"}},
		{"star-deploy @local deploy.star:s", []string{"deploy.star:setup_nginx"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cmd := exec.Command(fish, "--no-config", "-c", `star-deploy completion fish | source; and complete -C "$argv[1]"`, tt.line)
			cmd.Dir, cmd.Env = dir, shellEnv(t, bin)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("fish: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(strings.Split(string(out), "\n"), func(l string) bool { return l == w || strings.HasPrefix(l, w+"\t") }) {
					t.Errorf("%q missing from fish's completions:\n%s", w, out)
				}
			}
		})
	}
}

// zshHarness runs an interactive zsh on a pseudo-terminal (zsh/zpty) with
// compinit and the script sourced, types "star-deploy $1" and TAB TAB, and
// prints what the terminal showed.
const zshHarness = `zmodload zsh/zpty || exit 1
zpty z zsh -f -i
zpty -w z 'PS1="%% "; autoload -U compinit; compinit -u -D; source <(star-deploy completion zsh); print RE""ADY'
zpty -r z line '*READY*' || exit 1
zpty -w -n z "star-deploy $1"$'\t\t'
local all= chunk
for i in {1..50}; do
	sleep 0.1
	while zpty -r -t z chunk; do all+=$chunk; done
	[[ $all == *"${2% }"* ]] && break
done
print -r -- "$all"
zpty -d z
`

// TestCompletionZsh checks the zsh script's syntax, then has a real
// interactive zsh complete lines with it on TAB.
func TestCompletionZsh(t *testing.T) {
	zsh := shellPath(t, "zsh")
	bin := buildBinary(t)
	dir := completionDir(t)
	script := filepath.Join(t.TempDir(), "_star-deploy")
	out, err := exec.Command(bin, "completion", "zsh").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	ansi := regexp.MustCompile("\x1b\\[[0-9;?]*[a-zA-Z]|[\r\b]")
	tests := []struct{ typed, want string }{
		{"--dr", "star-deploy --dry "},
		{"doc", "star-deploy docs "},
		{"@local fact o", "star-deploy @local fact os "},
		{"@local fil", "files.put"},          // listed on the second TAB
		{"@local fil", "-- Uploads a local"}, // with its description
		{"inv.star --limit w", "star-deploy inv.star --limit web "},
		{"--data ssh_po", "star-deploy --data ssh_port="},
	}
	for _, tt := range tests {
		t.Run(tt.typed, func(t *testing.T) {
			cmd := exec.Command(zsh, "-f", "-c", zshHarness, "zsh", tt.typed, tt.want)
			cmd.Dir, cmd.Env = dir, shellEnv(t, bin)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("zsh: %v\n%s", err, out)
			}
			if screen := ansi.ReplaceAllString(string(out), ""); !strings.Contains(screen, tt.want) {
				t.Errorf("zsh did not show %q:\n%s", tt.want, screen)
			}
		})
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
