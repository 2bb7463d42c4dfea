package modules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// firstUse is the error of the first use of r's cache when that is the
// refusal of its owner, else nil: reading a commit's tree and opening a
// fetched repository must both refuse, or neither (each is asked before
// anything is fetched; what follows a pass fails on the closed port).
func firstUse(t *testing.T, r *Resolver) error {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	refused := func(err error) error {
		if err != nil && strings.Contains(err.Error(), "the module cache") {
			return err
		}
		return nil
	}
	_, treeErr := r.repository(t.Context(), "https://127.0.0.1:9/x.git", false)
	treeErr = refused(treeErr)
	_, err := r.tree(t.Context(), Spec{URL: "https://127.0.0.1:9/x.git"}, "0123456789abcdef0123456789abcdef01234567", false)
	if (refused(err) == nil) != (treeErr == nil) {
		t.Fatalf("repository: %v, tree: %v; want both refused or neither", treeErr, err)
	}
	return treeErr
}

// TestNewRefusesAnotherUsersCache: the default module cache must be the
// running user's alone; one others may write is refused, at its first
// use, with an error that names it and says what to do. New succeeds, so
// a run that loads no remote module never needs a cache. A CacheDir given
// is not checked (a vendored directory). The case of another owner needs
// chown and runs as root (as CI does).
func TestNewRefusesAnotherUsersCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	r, err := New(Options{})
	if err != nil {
		t.Fatalf("a cache of the running user's: %v", err)
	}
	if err := firstUse(t, r); err != nil {
		t.Fatalf("a cache of the running user's: %v", err)
	}
	// A new cache directory, not made yet, under a world-writable one.
	cache = t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	r, err = New(Options{})
	if err != nil {
		t.Fatalf("New with a world-writable cache: %v; want the refusal at its first use", err)
	}
	err = firstUse(t, r)
	if err == nil || !strings.Contains(err.Error(), "the module cache "+filepath.Join(cache, "star-deploy", "modules")) || !strings.Contains(err.Error(), "--module-cache DIR") {
		t.Fatalf("a world-writable cache: %v", err)
	}
	r, err = New(Options{CacheDir: cache})
	if err != nil {
		t.Errorf("a CacheDir given: %v", err)
	} else if err := firstUse(t, r); err != nil {
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
	r, err = New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := firstUse(t, r); err == nil || !strings.Contains(err.Error(), "owner uid 65534") {
		t.Fatalf("a cache under another user's directory: %v", err)
	}
}
