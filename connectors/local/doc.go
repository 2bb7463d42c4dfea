// Package local is the connector for "@local": it runs commands with
// `sh -c` on this machine and reads and writes this machine's files.
//
// Each command runs in its own process group, so cancelling its context
// kills the command and everything it started. Put writes a temporary file
// next to the destination and renames it into place, so readers never see a
// partial file.
//
// Conn is also a connectors.Native: the builtins stat, hash and read files,
// list directory trees (the tree fact, under files.sync), chmod and chown
// them, sweep temporary files and read uname(2) with Go
// calls instead of forking `sh` for each probe (a fork costs milliseconds;
// a re-run of examples/hello.star that changes nothing forks none). This
// is done as the user running star-deploy, never for sudo=, su_user= or
// doas=, which keep the shell. Each Native method answers only what it
// answers exactly as the shell probe does (the same lstat(2) fields, user
// and group names from the same user database, links followed as the
// probe's `readlink` loop and `cd -P` do), and returns an error for
// anything else: permission denied, a loop of links, a link into a missing
// directory, a name it cannot look up (stat(1) would print UNKNOWN), a
// relative or unclean path. On an error the builtins run the shell probe,
// so that results and messages stay the shell's.
//
// This package must not import Starlark, the runtime or another connector,
// must not render sudo/env/cd itself (connectors.Render does that above every
// connector), and must not hold whole files or command input in memory.
package local
