//go:build !linux

package local

import "golang.org/x/sys/unix"

// dirFlags open a directory for connectors.PutAt.
const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
