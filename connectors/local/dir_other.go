//go:build !linux

package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDir opens the directory dir for connectors.PutAt.
func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), dir), nil
}
