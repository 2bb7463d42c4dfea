package main

import (
	"regexp"
	"strings"
	"testing"
)

// flagLine matches the line of --help that lists the flag name.
func flagLine(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^ +(-., )?--(\[no-\])?` + regexp.QuoteMeta(name) + `[ =]`)
}

// TestCommandHelp checks that each command's --help lists the flags that
// apply to it and no others, and that exec and fact have a help of their
// own wherever --help comes.
func TestCommandHelp(t *testing.T) {
	tests := []struct {
		args      []string
		want      []string // in stdout
		flags     []string // listed
		notFlags  []string // not listed
		notInText []string
	}{
		{
			args:      []string{"docs", "--help"},
			want:      []string{"Usage: star-deploy docs [<topic>]"},
			flags:     []string{"help", "version", "config", "dir"},
			notFlags:  []string{"dry", "parallel", "data", "confirm", "yes", "limit"},
			notInText: []string{"$STAR_DEPLOY_DIR", "Exit codes:"},
		},
		{
			args:     []string{"connectors", "--help"},
			want:     []string{"Usage: star-deploy connectors"},
			flags:    []string{"help", "config"},
			notFlags: []string{"dry", "json", "sudo", "user"},
		},
		{
			args:     []string{"@local", "exec", "--help"},
			want:     []string{"Usage: star-deploy [flags] INVENTORY exec -- CMD [ARG...]", "Run one shell command on every host", "Examples:", "star-deploy @local exec -- uname -a", "Exit codes:"},
			flags:    []string{"dry", "sudo", "limit", "confirm", "yes", "json", "user"},
			notFlags: []string{"diff", "max-steps"},
		},
		{
			args:     []string{"exec", "--help"},
			want:     []string{"Usage: star-deploy [flags] INVENTORY exec -- CMD", "Examples:"},
			flags:    []string{"sudo"},
			notFlags: []string{"diff"},
		},
		{
			args:  []string{"--sudo", "web.ini", "exec", "ls", "--help"},
			want:  []string{"Usage: star-deploy [flags] INVENTORY exec -- CMD"},
			flags: []string{"sudo"},
		},
		{
			args:     []string{"@local", "fact", "--help"},
			want:     []string{"Usage: star-deploy [flags] INVENTORY fact NAME [ARG...]", "Print one fact of every host", "star-deploy @local fact os"},
			flags:    []string{"json", "sudo", "limit", "parallel"},
			notFlags: []string{"dry", "diff", "confirm", "yes", "serial", "max-steps"},
		},
		{
			args: []string{"fact", "-h"},
			want: []string{"Usage: star-deploy [flags] INVENTORY fact NAME"},
		},
		{
			// The general help, and that of a deploy, keep every flag.
			args:  []string{"--help"},
			want:  []string{"exec --help", "Exit codes:"},
			flags: []string{"dry", "diff", "max-steps", "confirm", "yes", "serial"},
		},
		{
			args:  []string{"@local", "deploy.star", "--help"},
			flags: []string{"dry", "diff", "max-steps", "confirm", "yes", "serial"},
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("no %q in:\n%s", w, stdout)
				}
			}
			for _, f := range tt.flags {
				if !flagLine(f).MatchString(stdout) {
					t.Errorf("--%s is not listed:\n%s", f, stdout)
				}
			}
			for _, f := range tt.notFlags {
				if flagLine(f).MatchString(stdout) {
					t.Errorf("--%s is listed:\n%s", f, stdout)
				}
			}
			for _, w := range tt.notInText {
				if strings.Contains(stdout, w) {
					t.Errorf("%q in:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestHelpAfterDashDash checks that --help after -- is a word of the
// command, not a request for help.
func TestHelpAfterDashDash(t *testing.T) {
	code, stdout, stderr := runCLI(t, "@local", "exec", "--", "echo", "--help")
	if code != exitOK || !strings.Contains(stdout, "[@local] --help") || strings.Contains(stdout, "Usage:") {
		t.Errorf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestRunFlagsOnOtherCommands checks that a run flag given to docs or
// connectors on the command line is an error, wherever it comes, while the
// config file and the environment may still set it.
func TestRunFlagsOnOtherCommands(t *testing.T) {
	for _, args := range [][]string{{"connectors", "--dry"}, {"--sudo", "connectors"}, {"docs", "facts", "-v"}, {"docs", "--parallel", "3"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "does not apply to "+args[0]) && !strings.Contains(stderr, "does not apply to "+args[1]) || stdout != "" {
			t.Errorf("%q: exit code %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
		}
	}
	config := writeFile(t, t.TempDir(), "c.star", "dry = True\nparallel = 3\nconfirm = True\n")
	t.Setenv("STAR_DEPLOY_SUDO", "true")
	for _, args := range [][]string{{"connectors", "--config", config}, {"--config=" + config, "docs", "facts"}} {
		if code, _, stderr := runCLI(t, args...); code != exitOK {
			t.Errorf("%q: exit code %d\n%s", args, code, stderr)
		}
	}
}
