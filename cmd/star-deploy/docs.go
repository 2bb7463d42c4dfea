package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/star-deploy/star-deploy/internal/gendocs"
)

// docsCmd prints the reference generated from the code (internal/gendocs):
// builtins, control arguments, facts, stdlib modules and connectors.
type docsCmd struct {
	Topic string `arg:"" optional:"" help:"Print one part: builtins, facts, stdlib, connectors, or a stdlib module (files, ...). All of it when empty."`
	Dir   string `placeholder:"DIR" type:"path" help:"Write the reference as Markdown files into DIR (README.md, builtins.md, facts.md, stdlib/NAME.md, connectors.md) instead of printing it."`
}

// run prints the reference, or one topic of it, to w, or writes the files
// into d.Dir.
func (d *docsCmd) run(w io.Writer) error {
	ref, err := gendocs.Load()
	if err != nil {
		return fmt.Errorf("docs: %w", err)
	}
	if d.Dir != "" {
		if d.Topic != "" {
			return errors.New("docs: --dir writes every topic; drop " + d.Topic)
		}
		if err := ref.Write(d.Dir); err != nil {
			return fmt.Errorf("docs: %w", err)
		}
		if err := os.WriteFile(filepath.Join(d.Dir, "cli.md"), cliReference(), 0o644); err != nil {
			return fmt.Errorf("docs: %w", err)
		}
		return nil
	}
	md, err := ref.Markdown(d.Topic)
	if err != nil {
		return fmt.Errorf("docs: %w", err)
	}
	_, err = w.Write(md)
	return err
}

// helpPages are the commands whose --help makes up docs/cli.md.
var helpPages = [][]string{
	{"--help"},
	{"exec", "--help"},
	{"fact", "--help"},
	{"connectors", "--help"},
	{"connector", "test", "--help"},
	{"docs", "--help"},
	{"completion", "--help"},
	{"bundle", "--help"},
	{"pull", "--help"},
}

// cliReference renders docs/cli.md: the --help of every command, as the
// binary prints it with no config file and no STAR_DEPLOY_* variables
// (make docs runs it so; a variable set would show as a default).
func cliReference() []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from the code by `make docs` (star-deploy docs --dir docs). Do not edit. -->\n\n")
	b.WriteString("# Command line\n\nThe `--help` of each command. The README's Command line section explains them with examples; [JSON events](guide/json-events.md) describes `--json`.\n")
	for _, args := range helpPages {
		var out bytes.Buffer
		// --config /dev/null: the help shows built-in defaults, not those of
		// a star-deploy.star in the current directory.
		parse(append([]string{"--config", os.DevNull}, args...), &out, &out)
		fmt.Fprintf(&b, "\n## star-deploy %s\n\n```\n%s```\n", strings.Join(args, " "), out.String())
	}
	return b.Bytes()
}
