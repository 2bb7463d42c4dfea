package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/alecthomas/kong"
)

// TestRunGrammarIsCli: runGrammar is cli's first fields, with the same
// tags, and otherCommands are cli's commands but run.
func TestRunGrammarIsCli(t *testing.T) {
	full, run := reflect.TypeFor[cli](), reflect.TypeFor[runGrammar]()
	for i := range run.NumField() {
		want, got := full.Field(i), run.Field(i)
		if got.Name != want.Name || got.Type != want.Type || got.Tag != want.Tag {
			t.Errorf("runGrammar field %d is %s %s `%s`, cli's is %s %s `%s`", i, got.Name, got.Type, got.Tag, want.Name, want.Type, want.Tag)
		}
	}
	parser, err := kong.New(&cli{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range parser.Model.Children {
		if n.Name != "run" {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	if got := slices.Sorted(slices.Values(otherCommands)); !slices.Equal(got, names) {
		t.Errorf("otherCommands = %q, cli's other commands are %q", got, names)
	}
}

// TestRunGrammarParsesAsCli: each command line parses to the same values,
// command and error as with the whole grammar alone, whichever grammar
// parse used (onlyRun says which).
func TestRunGrammarParsesAsCli(t *testing.T) {
	dir := t.TempDir()
	config := writeFile(t, dir, "config.star", "parallel = 3\ndata = {'role': 'web'}\n")
	pullFlag := writeFile(t, dir, "pull.star", "state_dir = '/var/lib/x'\n") // a flag of pull, not a setting
	badConfig := writeFile(t, dir, "bad.star", "no_such_flag = 1\n")
	for _, args := range [][]string{
		{"@local", "x.star"},
		{"run", "@local", "x.star"},
		{"--dry", "-v", "-v", "@local", "a.star", "b.star:main", "--diff", "--json"},
		{"--data", "role=web", "@local", "x.star", "--data=k=a,b", "-q"},
		{"--parallel", "-1", "@local", "x.star"},
		{"--fail-percent", "0", "--serial", "25%", "--limit", "web,db", "--exclude", "db2", "inventory.star", "x.star"},
		{"-v", "@local", "exec", "--", "ls", "--dry", "-h"},
		{"@local", "fact", "file", "/etc/passwd"},
		{"@local", "files.line", "/tmp/f", "x", "present=False"},
		{"--config", config, "@local", "x.star"},
		{"--config", pullFlag, "@local", "x.star"},
		{"--config", badConfig, "@local", "x.star"},
		{"--frozen", "--lock-file", filepath.Join(dir, "l"), "--module-cache", dir, "@local", "x.star"},
		{"--user", "deploy", "--port", "2222", "--key", "k", "--jump", "none", "--on-host", "web1", "x.star"},
		{"--no-dry", "--no-confirm", "-y", "@local", "repl"},
		{"--connector-plugin", "/no/such/plugin", "@local", "x.star"},
		{"--no-such-flag", "@local", "x.star"},
		{"--parallel", "x", "@local", "x.star"},
		{"--dry"},
		{"@local"},
		{"@local", "x.star", "--", "--y.star"},
		{"connectors"},
		{"docs", "--dry"},
		{"-qh"},
		{"--version"},
	} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			var out, errOut, fullOut, fullErrOut bytes.Buffer
			c, kctx, err := parse(args, &out, &errOut)
			full := &cli{}
			fullCtx, fullErr := parseGrammar(full, &full.flags, &full.Run, args, &fullOut, &fullErrOut)
			if fmt.Sprint(err) != fmt.Sprint(fullErr) {
				t.Fatalf("parse: %v\nthe whole grammar: %v", err, fullErr)
			}
			if out.String() != fullOut.String() || errOut.String() != fullErrOut.String() {
				t.Errorf("parse printed %q, %q; the whole grammar %q, %q", out.String(), errOut.String(), fullOut.String(), fullErrOut.String())
			}
			if err != nil {
				return
			}
			if kctx.Command() != fullCtx.Command() {
				t.Errorf("command %q, the whole grammar's %q", kctx.Command(), fullCtx.Command())
			}
			if !reflect.DeepEqual(c.topFlags, full.topFlags) || !reflect.DeepEqual(c.flags, full.flags) || !reflect.DeepEqual(c.Run, full.Run) {
				t.Errorf("parse gave\n%+v\n%+v\n%+v\nthe whole grammar\n%+v\n%+v\n%+v", c.topFlags, c.flags, c.Run, full.topFlags, full.flags, full.Run)
			}
		})
	}
	// And parse used the run grammar where it could.
	if !onlyRun([]string{"--dry", "@local", "x.star"}) || onlyRun([]string{"docs"}) || onlyRun([]string{"-qh"}) || !onlyRun([]string{"@local", "exec", "--", "docs", "-h"}) {
		t.Error("onlyRun chose the wrong grammar")
	}
}
