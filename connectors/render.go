package connectors

import (
	"fmt"
	"sort"
	"strings"
)

// Wrap holds the privilege and environment settings that turn a user's
// command into the script a POSIX host runs (pyinfra's
// make_unix_command_for_host). The zero value runs the command as is.
type Wrap struct {
	Sudo            bool
	SudoUser        string
	SuUser          string
	Doas            bool
	DoasUser        string
	Env             map[string]string
	Chdir           string
	ShellExecutable string // default "sh"
}

// Render returns the script that runs cmd with w applied, for a connector
// to execute with `sh -c`. Every user value is single-quoted, so quotes,
// "$", backslashes, newlines and non-ASCII text reach the command intact.
//
// The layers, innermost first: export of Env, cd to Chdir, the command, all
// run by ShellExecutable -c; then su, then sudo or doas around that.
func Render(cmd string, w Wrap) (string, error) {
	if w.Sudo && w.Doas {
		return "", fmt.Errorf("sudo and doas cannot both be set")
	}
	body := cmd
	if w.Chdir != "" {
		body = "cd " + Quote(w.Chdir) + " && " + body
	}
	if len(w.Env) > 0 {
		keys := make([]string, 0, len(w.Env))
		for k := range w.Env {
			if !validEnvName(k) {
				return "", fmt.Errorf("env: %q is not a valid variable name (letters, digits and _, not starting with a digit)", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("export")
		for _, k := range keys {
			b.WriteString(" " + k + "=" + Quote(w.Env[k]))
		}
		body = b.String() + " && " + body
	}
	shell := w.ShellExecutable
	if shell == "" {
		shell = "sh"
	}
	privileged := w.Sudo || w.Doas || w.SuUser != ""
	if !privileged && w.ShellExecutable == "" {
		// The connector's `sh -c` is the shell already.
		return body, nil
	}
	script := shell + " -c " + Quote(body)
	if w.SuUser != "" {
		script = "su " + Quote(w.SuUser) + " -c " + Quote(script)
	}
	switch {
	case w.Sudo:
		prefix := "sudo -H -n"
		if w.SudoUser != "" {
			prefix += " -u " + Quote(w.SudoUser)
		}
		script = prefix + " -- " + script
	case w.Doas:
		prefix := "doas -n"
		if w.DoasUser != "" {
			prefix += " -u " + Quote(w.DoasUser)
		}
		script = prefix + " " + script
	}
	return script, nil
}

// Quote returns s as one POSIX shell word.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuoteArgs quotes each argument and joins them with spaces.
func QuoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

func validEnvName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for _, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
