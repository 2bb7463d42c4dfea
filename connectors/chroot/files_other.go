//go:build !linux

package chroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// errNoOpenat2 is why files cannot move on this system: resolving paths
// inside the root safely needs Linux's openat2(2).
var errNoOpenat2 = errors.New("@chroot moves files only on Linux (it needs openat2(2) to resolve paths inside the root)")

// Put is not supported outside Linux.
func (c *Conn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	return fmt.Errorf("put %s on %s: %w: %w", dst, c.target.Name, errNoOpenat2, errors.ErrUnsupported)
}

// Get is not supported outside Linux.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	return fmt.Errorf("get %s from %s: %w: %w", src, c.target.Name, errNoOpenat2, errors.ErrUnsupported)
}
