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
	Sudo            bool              // run through `sudo -H -n`
	SudoPrompt      string            // when set, `sudo -H -S -p SudoPrompt`: the password comes on stdin (see SudoReady)
	SudoUser        string            // sudo -u USER; ignored unless Sudo
	SuUser          string            // run through `su -s SHELL USER -c`
	Doas            bool              // run through `doas -n`; not together with Sudo
	DoasUser        string            // doas -u USER; ignored unless Doas
	Env             map[string]string // exported before the command; keys must be shell names
	Chdir           string            // directory to cd into first; a failed cd skips the command
	ShellExecutable string            // shell that runs the command with -c; default "sh"
}

// Render returns the script that runs cmd with w applied, for a connector
// to execute with `sh -c`. Every user value is single-quoted, so quotes,
// "$", backslashes, newlines and non-ASCII text reach the command intact.
//
// The layers, innermost first: export of Env, cd to Chdir, the command, all
// run by ShellExecutable -c; then su, then sudo or doas around that. When Env
// or Chdir is set the command is grouped in braces, so a multi-line command
// or one with ";", "||" or "&" runs only after the export and the cd
// succeeded, never in the wrong directory. Values that the shell cannot carry
// (a NUL byte), invalid environment names and user names that start with "-"
// (su would take them for options) are errors.
func Render(cmd string, w Wrap) (string, error) {
	if w.Sudo && w.Doas {
		return "", fmt.Errorf("sudo and doas cannot both be set")
	}
	for _, v := range []struct{ what, s string }{
		{"command", cmd}, {"chdir", w.Chdir}, {"shell_executable", w.ShellExecutable},
		{"sudo_user", w.SudoUser}, {"su_user", w.SuUser}, {"doas_user", w.DoasUser},
	} {
		if strings.IndexByte(v.s, 0) >= 0 {
			return "", fmt.Errorf("%s: contains a NUL byte, which a shell cannot pass on", v.what)
		}
		if strings.HasSuffix(v.what, "_user") && strings.HasPrefix(v.s, "-") {
			// su would read it as an option: "-" alone means a root login.
			return "", fmt.Errorf("%s %q: a user name cannot start with -", v.what, v.s)
		}
	}
	var prefix []string
	if len(w.Env) > 0 {
		keys := make([]string, 0, len(w.Env))
		for k, v := range w.Env {
			if !ValidName(k) {
				return "", fmt.Errorf("env: %q is not a valid variable name (letters, digits and _, not starting with a digit)", k)
			}
			if strings.IndexByte(v, 0) >= 0 {
				return "", fmt.Errorf("env: value of %s contains a NUL byte, which a shell cannot pass on", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("export")
		for _, k := range keys {
			b.WriteString(" " + k + "=" + Quote(w.Env[k]))
		}
		prefix = append(prefix, b.String())
	}
	if w.Chdir != "" {
		dir := w.Chdir
		if strings.HasPrefix(dir, "-") {
			// "cd -x" is an option and "cd -" means $OLDPWD.
			dir = "./" + dir
		}
		prefix = append(prefix, "cd "+Quote(dir))
	}
	body := cmd
	if len(prefix) > 0 {
		// The newline before "}" ends a trailing comment in cmd.
		body = strings.Join(prefix, " && ") + " && { " + cmd + "\n}"
	}
	privileged := w.Sudo || w.Doas || w.SuUser != ""
	if !privileged && w.ShellExecutable == "" {
		// The connector's `sh -c` is the shell already.
		return body, nil
	}
	shell := w.ShellExecutable
	if shell == "" {
		shell = "sh"
	}
	shellCmd := Quote(shell) + " -c " + Quote(body)
	if !privileged {
		return shellCmd, nil
	}
	// The privileged side runs under a Guard (see Guard) that is handed
	// the pid of the unprivileged shell, "$$" expanded out here.
	ready := "''"
	if w.Sudo && w.SudoPrompt != "" {
		ready = Quote(w.SudoPrompt + SudoReady)
	}
	script := "sh -c " + Quote(Guard) + " sh " + ready + ` "$$" ` + shellCmd
	if w.SuUser != "" {
		// su takes one command string; "$$" must still be expanded here.
		arg := Quote("sh -c "+Quote(Guard)+" sh "+ready+" ") + `"$$"` + Quote(" "+shellCmd)
		// -s: the target user's login shell may be nologin; run sh.
		script = `su -s "$(command -v sh)" ` + Quote(w.SuUser) + " -c " + arg
	}
	switch {
	case w.Sudo:
		prefix := "sudo -H -n"
		if w.SudoPrompt != "" {
			// sudo writes the prompt to stderr and reads the password from
			// stdin; the Guard's ready line tells the caller that sudo is
			// done with stdin and the command's own input may follow.
			prefix = "sudo -H -S -p " + Quote(w.SudoPrompt)
		}
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

// Guard runs a privileged command ("$@") so that it can be stopped: a
// signal to the unprivileged caller cannot reach the command's root-owned
// children, so a watchdog, running as the privileged user, polls the
// caller's pid (its $2; kill -0, or /proc where the caller belongs to
// another user) and, once the caller is gone (killed on cancel or
// timeout), sends SIGTERM to its whole process group. It first prints its
// $1, when not empty, on stderr: the sudo password feeder's ready line.
// Once the command is done, the watchdog is stopped and waited for, with
// its sleep: nothing of the Guard outlives the command. The watchdog's trap
// waits for all of its children, not only the sleep it knows: a TERM that
// comes between `sleep &` and the `z=$!` after it finds z empty, and its
// sleep (at most 0.2 s) would otherwise outlive the command and make the
// caller think a process of the command's group is still running.
const Guard = `r=$1 p=$2; shift 2; [ -z "$r" ] || printf '%s\n' "$r" >&2; ` +
	`(z=; trap '[ -z "$z" ] || kill "$z"; wait; exit' TERM; ` +
	`while kill -0 "$p" 2>/dev/null || [ -d "/proc/$p" ]; do sleep 0.2 & z=$!; wait "$z"; z=; done; kill -TERM 0) </dev/null >/dev/null 2>&1 & ` +
	`w=$!; "$@"; s=$?; kill "$w" 2>/dev/null; wait "$w"; exit $s`

// SudoReady follows Wrap.SudoPrompt on a line of its own on stderr once
// sudo has authenticated and the command starts.
const SudoReady = " ready"

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

// ValidName reports whether k is a shell variable name: letters, digits and
// underscores, not starting with a digit.
func ValidName(k string) bool {
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
