// Package local is the connector for "@local": it runs commands with
// `sh -c` on this machine and reads and writes this machine's files.
//
// Each command runs in its own process group, so cancelling its context
// kills the command and everything it started. Put writes a temporary file
// next to the destination and renames it into place, so readers never see a
// partial file.
//
// This package must not import Starlark, the runtime or another connector,
// must not render sudo/env/cd itself (connectors.Render does that above every
// connector), and must not hold whole files or command input in memory.
package local
