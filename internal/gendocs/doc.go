// Package gendocs generates the Markdown reference of star-deploy from the
// code: the builtins' Specs and the control arguments (builtins.All,
// builtins.ControlParams), the facts (builtins.FactDocs), the docstrings of
// the embedded stdlib modules (stdlib.FS, parsed with go.starlark.net/syntax,
// never executed) and the connectors' data keys (connectors/all).
//
// `star-deploy docs` prints the reference and `make docs` writes it to
// docs/; a test keeps docs/ in sync with the code and checks that every
// entry has a description and an example.
//
// Docstrings of stdlib operations have this shape; the section names are
// what the parser looks for:
//
//	"""One summary sentence.
//
//	Optional further paragraphs (Markdown).
//
//	Args:
//	  name: text, continued on lines
//	    indented deeper.
//
//	Returns: what the call returns
//
//	Example:
//	  files.directory("/srv/app")
//	"""
//
// Generating does no I/O besides reading the embedded stdlib, and a
// docstring that lacks a section is reported as a problem, never a panic.
package gendocs
