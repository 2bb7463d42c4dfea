// Command star-deploy runs Starlark deploy scripts on many hosts at once.
//
// Usage:
//
//	star-deploy [flags] INVENTORY SCRIPT.star...      run the scripts, in order, on every host
//	star-deploy [flags] INVENTORY exec -- CMD...      run one shell command on every host
//	star-deploy [flags] INVENTORY fact NAME [ARG...]  print a fact of every host
//	star-deploy connectors                            list the connectors and their data keys
//
// This package is the command line only: it parses flags with kong (the
// only package that imports kong), turns the inventory into runtime.Host
// values through connectors/all, hands scripts to the runtime, renders the
// runtime's events (plain lines, live terminal progress or JSON) and maps
// the outcome to an exit code in one switch (see exitCode). It holds no
// deploy logic of its own.
package main
