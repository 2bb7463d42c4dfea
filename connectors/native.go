package connectors

import (
	"context"
	"io/fs"
	"math"
	"strings"
	"time"
)

// Native is an optional interface of a Connector that can answer file
// questions without a shell: with system calls as the user running
// star-deploy (connectors/local), or in the command server that already
// runs on the host as the login user (connectors/ssh's Perl server, see
// NativeGate). The Connector interface stays as it is; the builtins
// look for Native with a type assertion and use it in place of the `sh`
// commands of their probes (the file fact and the write probe of put and
// template, the content and tree facts, the os, arch and hostname facts), of the
// chmod and chown of put and template, and of the sweep of temporary files:
// a fork of `sh` costs a few milliseconds, a system call microseconds.
//
// The builtins use Native only for what the shell would run as the user
// commands run as without privilege (the user running star-deploy, the
// SSH login user): never with sudo=, su_user= or doas= (those keep the
// shell, which becomes that user), and only for an absolute, clean path. A method
// answers only what it can answer exactly as the shell would, and returns
// an error for anything else (permission denied, a loop of links, a link
// whose target's directory is missing, a user name it cannot look up, a
// file larger than asked). On any error the builtins run the shell command
// that other connectors get, so that results and messages are the shell's
// whatever happens: Native is a shortcut, never a second behaviour.
//
// Its methods are safe for concurrent use.
type Native interface {
	// Stat describes the file at p without following a final symbolic link
	// (lstat(2)), as the file fact does. With follow, the symbolic links at
	// p are followed first (at most 40; relative targets against the link's
	// directory), and the directory of where they end is resolved through
	// its own links (as `cd -P`); FileStat.Path is then that path.
	Stat(ctx context.Context, p string, follow bool) (FileStat, error)
	// SHA256 returns the hex SHA-256 of the regular file p (not through a
	// link), read as a stream.
	SHA256(ctx context.Context, p string) (string, error)
	// ReadFile returns the content of the regular file p, following links
	// (as cat does). A missing file (a dangling link too) yields an error
	// wrapping fs.ErrNotExist; one of more than max bytes, or that is not a
	// regular file, yields another error.
	ReadFile(ctx context.Context, p string, max int64) ([]byte, error)
	// Chmod sets the mode of p, following links, as chmod(1): Unix bits
	// (0o4755) or fs.FileMode's flags (see UnixMode).
	Chmod(ctx context.Context, p string, mode fs.FileMode) error
	// Chown sets the owner and group of p (names; "" keeps one), following
	// links, as chown(1) does.
	Chown(ctx context.Context, p, user, group string) error
	// Sweep removes from dir what SweepScript(dir, r) removes: the
	// temporary files of other runs older than r. Like that script it is
	// best effort and reports nothing. It may return before it is done
	// when the connector's next call on the host waits for it (ssh).
	Sweep(ctx context.Context, dir string, r Run)
	// Uname returns what uname(2) says about the machine.
	Uname(ctx context.Context) (Uname, error)
	// Tree lists what is under the directory dir (its links followed, as
	// cd does), recursively and not through links, as the tree fact's
	// find does: each path relative to dir to its type ("file",
	// "directory", "link" or "other"). It returns nil and no error when
	// dir is missing or not a directory, and an error for an entry it
	// cannot read, a name with a newline, or a listing whose lines
	// ("TYPE ./PATH") would reach max bytes.
	Tree(ctx context.Context, dir string, max int64) (map[string]string, error)
}

// NativeGate is an optional interface of a Native connector that can
// answer only some of the time: connectors/ssh, while its host runs the
// Perl command server. The builtins ask NativeReady before they use Native
// and run the shell's commands when it says false, so that a host without
// the server pays nothing for Native (a sweep, for one, stays in the probe's
// command). Its methods may still fail where they cannot answer.
type NativeGate interface {
	// NativeReady reports whether Native's methods can answer. It may wait
	// for the connection's first shell to start, which the command after
	// it would start anyway.
	NativeReady(ctx context.Context) bool
}

// NativeStatHash is an optional interface of a Native connector for which
// every call is a round trip to the host (connectors/ssh): StatHash is
// Stat and, for a regular file, its SHA-256 as SHA256 gives it ("" for
// anything else), in one. The builtins use it where they would call both.
type NativeStatHash interface {
	StatHash(ctx context.Context, p string, follow bool) (FileStat, string, error)
}

// FileStat is what Native.Stat found. Its fields are those of the file
// fact (stat(1)'s %F, %a, %U, %G and %s, readlink); the fact's sha256 is
// Native.SHA256's.
type FileStat struct {
	Path   string      // the path described: p, or where p's links led when followed
	Exists bool        // false: the other fields are empty
	Type   string      // "file", "directory", "link" or "other"
	Mode   fs.FileMode // the permission, set-id and sticky bits, as Unix numbers them (0o4755)
	Owner  string      // the owner's name
	Group  string      // the group's name
	Size   int64       // bytes; of a link, the length of its target
	Target string      // of a link
}

// Uname is what uname(1) prints with -s, -n and -m.
type Uname struct {
	Sysname  string // "Linux"
	Nodename string // the host name
	Machine  string // "x86_64", "aarch64"
}

// sweepAge is how long r has been going at now, in whole seconds rounded
// up: a sweep removes only files last modified longer ago.
func sweepAge(r Run, now time.Time) int64 {
	return int64(math.Ceil(now.Sub(r.Start).Seconds()))
}

// SweepCutoff is the modification time, in Unix seconds, before which a
// sweep at now removes the leftovers of other runs (SweepScript's c).
func SweepCutoff(r Run, now time.Time) int64 { return now.Unix() - sweepAge(r, now) }

// Swept reports whether a sweep for r considers the file name (a name,
// not a path): a temporary file of another run (SweepScript's glob).
func Swept(name string, r Run) bool {
	return IsTempName(name) && !strings.HasPrefix(name, tempPrefix+r.ID+"-")
}
