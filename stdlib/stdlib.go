// Package stdlib embeds the standard library of deploy modules, written in
// Starlark on top of the builtins and loaded with
// load("@stdlib//files.star", "files"). It imports nothing of the project;
// the CLI hands FS to the runtime as an option.
package stdlib

import "embed"

// FS holds the stdlib modules, NAME.star at its root.
//
//go:embed *.star
var FS embed.FS
