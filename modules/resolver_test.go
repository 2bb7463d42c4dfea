package modules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewRefusesAnotherUsersCache: the default module cache must be the
// running user's alone; one others may write is refused with an error
// that names it and says what to do. A CacheDir given is not checked (a
// vendored directory). The case of another owner needs chown and runs as
// root (as CI does).
func TestNewRefusesAnotherUsersCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	if _, err := New(Options{}); err != nil {
		t.Fatalf("a cache of the running user's: %v", err)
	}
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{})
	if err == nil || !strings.Contains(err.Error(), "the module cache "+filepath.Join(cache, "star-deploy", "modules")) || !strings.Contains(err.Error(), "--module-cache DIR") {
		t.Fatalf("a world-writable cache: %v", err)
	}
	if _, err := New(Options{CacheDir: cache}); err != nil {
		t.Errorf("a CacheDir given: %v", err)
	}
	if err := os.Chmod(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the case of another owner needs chown; CI runs it")
		return
	}
	if err := os.Chown(cache, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "owner uid 65534") {
		t.Fatalf("a cache under another user's directory: %v", err)
	}
}
