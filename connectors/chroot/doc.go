// Package chroot is the connector for "@chroot/DIR" (pyinfra's @chroot): it
// runs commands with `chroot DIR sh -c` on this machine and reads and writes
// the files of the tree under DIR, as root.
//
// Paths are those seen inside the chroot: Put and Get resolve them with
// openat2(2) and RESOLVE_IN_ROOT (Linux 5.6 or later), so a symbolic link
// in the tree, absolute or relative, resolves inside DIR as it does for a
// command in the chroot, and never reaches this machine's own files. Put is
// atomic, as connectors/local's: a temporary file (connectors.TempName,
// 0600 from creation) in the destination directory, synced, renamed over
// the destination.
//
// Nothing is mounted: commands that need /proc, /sys or device nodes in
// /dev get them only when the user has mounted them (mount --bind /dev
// DIR/dev, mount -t proc proc DIR/proc), as with chroot(8).
//
// This package must not import Starlark, the runtime or another connector.
package chroot
