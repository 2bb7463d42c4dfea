package main

import (
	"errors"
	"fmt"
	"io"

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
		return nil
	}
	md, err := ref.Markdown(d.Topic)
	if err != nil {
		return fmt.Errorf("docs: %w", err)
	}
	_, err = w.Write(md)
	return err
}
