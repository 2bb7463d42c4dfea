package connectors_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// Stubs of sudo, su and doas for FuzzRender: they take the options Render
// writes, log the user they were asked to become to $STUB_LOG and run the
// command as the caller, so the quoting of every privileged layer is
// checked without privileges.
var renderStubs = map[string]string{
	"sudo": `#!/bin/sh
u=root
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; break ;;
	-u | -p) [ "$1" = -u ] && u=$2; shift 2 ;;
	-H | -n | -S) shift ;;
	*) echo "sudo stub: unexpected argument $1" >&2; exit 99 ;;
	esac
done
printf 'sudo:%s\0' "$u" >>"$STUB_LOG"
exec "$@"
`,
	"su": `#!/bin/sh
[ $# -eq 5 ] && [ "$1" = -s ] && [ "$4" = -c ] || { echo "su stub: unexpected arguments: $*" >&2; exit 98; }
printf 'su:%s\0' "$3" >>"$STUB_LOG"
exec "$2" -c "$5"
`,
	"doas": `#!/bin/sh
u=root
[ "$1" = -n ] && shift
if [ "$1" = -u ]; then u=$2; shift 2; fi
printf 'doas:%s\0' "$u" >>"$STUB_LOG"
exec "$@"
`,
}

// maxFuzzValue bounds each fuzzed value, to keep one run of sh cheap.
const maxFuzzValue = 2048

// FuzzRender renders a command that prints two words, an environment
// variable and its working directory, under every kind of wrapping, runs
// it with the real sh (and stubs of sudo, su and doas), and checks that
// every value comes back byte for byte, that each privileged layer was
// asked for the right user, and that Render refuses exactly the values a
// shell cannot carry.
func FuzzRender(f *testing.F) {
	for _, s := range nasty {
		f.Add(s, "b", s, "dir", "app", uint8(len(s)))
	}
	f.Add("a", "b", "x", "", "", uint8(0))
	f.Add("it's", "$(id)", "`id`", "-", "-u", uint8(2))
	f.Add("a\x00", "b", "c", "d", "e", uint8(1))
	f.Add("a", "b", "c", "new\nline", "it's me", uint8(4))
	f.Add("\xff\xfe", "\n", "\\", "~", "-", uint8(5))
	root, err := filepath.EvalSymlinks(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		f.Fatal(err)
	}
	for name, src := range renderStubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(src), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	work := filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b, x, dir, user string, mode uint8) {
		for _, s := range []string{a, b, x, dir, user} {
			if len(s) > maxFuzzValue {
				t.Skip("value too long")
			}
		}
		w, wantLog := fuzzWrap(mode, user)
		w.Env = map[string]string{"X": x}
		wantDir := work
		if dirUsable(dir) {
			wantDir = filepath.Join(work, dir)
			if err := os.MkdirAll(wantDir, 0o755); err != nil {
				t.Skipf("mkdir %q: %v", dir, err)
			}
			w.Chdir = dir // relative to the shell's working directory
			if mode&8 != 0 {
				w.Chdir = wantDir
			}
		}
		cmd := "printf '%s\\0' " + connectors.QuoteArgs([]string{a, b}) + ` "$X" "$PWD"`
		script, err := connectors.Render(cmd, w)

		hasNUL := slices.ContainsFunc([]string{a, b, x, w.Chdir, w.SudoUser, w.SuUser, w.DoasUser}, func(s string) bool { return strings.IndexByte(s, 0) >= 0 })
		badUser := slices.ContainsFunc([]string{w.SudoUser, w.SuUser, w.DoasUser}, func(s string) bool { return strings.HasPrefix(s, "-") })
		if hasNUL || badUser {
			if err == nil {
				t.Fatalf("Render accepted a NUL byte or a user starting with -: %+v\n%q", w, script)
			}
			return
		}
		if err != nil {
			t.Fatalf("Render(%q, %+v): %v", cmd, w, err)
		}
		stubLog := filepath.Join(t.TempDir(), "log")
		c := exec.CommandContext(t.Context(), "sh", "-c", script)
		c.Dir = work
		c.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "PWD=" + work, "STUB_LOG=" + stubLog}
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		if err := c.Run(); err != nil {
			t.Fatalf("sh -c %q: %v\nstderr: %s", script, err, stderr.Bytes())
		}
		if want := a + "\x00" + b + "\x00" + x + "\x00" + wantDir + "\x00"; stdout.String() != want {
			t.Fatalf("wrap %+v printed\n%q\nwant\n%q\nscript %q", w, stdout.String(), want, script)
		}
		gotLog, _ := os.ReadFile(stubLog)
		if string(gotLog) != wantLog {
			t.Fatalf("wrap %+v: the wrappers were asked for %q, want %q\nscript %q", w, gotLog, wantLog, script)
		}
	})
}

// fuzzWrap picks the wrapping of mode (its low 3 bits) with user, and the
// log the stubs write for it.
func fuzzWrap(mode uint8, user string) (connectors.Wrap, string) {
	switch mode & 7 {
	case 1:
		return connectors.Wrap{ShellExecutable: "sh"}, ""
	case 2:
		return connectors.Wrap{Sudo: true}, "sudo:root\x00"
	case 3:
		if user == "" {
			return connectors.Wrap{Sudo: true, SudoPrompt: "[sudo] " + user}, "sudo:root\x00"
		}
		return connectors.Wrap{Sudo: true, SudoUser: user, SudoPrompt: "[sudo] " + user}, "sudo:" + user + "\x00"
	case 4:
		if user == "" {
			return connectors.Wrap{}, ""
		}
		return connectors.Wrap{SuUser: user}, "su:" + user + "\x00"
	case 5:
		if user == "" {
			return connectors.Wrap{Sudo: true}, "sudo:root\x00"
		}
		return connectors.Wrap{Sudo: true, SuUser: user}, "sudo:root\x00su:" + user + "\x00"
	case 6:
		if user == "" {
			return connectors.Wrap{Doas: true}, "doas:root\x00"
		}
		return connectors.Wrap{Doas: true, DoasUser: user}, "doas:" + user + "\x00"
	}
	return connectors.Wrap{}, ""
}

// dirUsable reports whether name can be made into one directory below the
// fuzz's work directory.
func dirUsable(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) < 200 && !strings.ContainsAny(name, "/\x00")
}
