// Package atomicfile writes files atomically: through a temporary file in
// the same directory, renamed over the target, so that a reader sees the
// old content or the new, never a part. It imports only the standard
// library.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to p, mode 0644, through a temporary file in its
// directory.
func Write(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
