package fileowner

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDir(t *testing.T) {
	base := t.TempDir()
	if ok, _, _ := Dir(base); !ok {
		t.Errorf("%s, made by this test: not usable", base)
	}
	missing := filepath.Join(base, "a", "b")
	if ok, at, _ := Dir(missing); !ok || at != base {
		t.Errorf("%s, not made yet: %v at %s; want usable, decided at %s", missing, ok, at, base)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(base, link); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := Dir(link); ok {
		t.Error("a symbolic link to a directory: usable")
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := Dir(file); ok {
		t.Error("a file: usable as a directory")
	}
	if ok, _, _ := Dir(filepath.Join(file, "x")); ok {
		t.Error("under a file: usable")
	}
	if err := os.Chmod(base, 0o770); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := Dir(base); ok {
		t.Error("a group-writable directory: usable")
	}
	// Nor one still to be made under it: another user could make it first.
	if ok, at, _ := Dir(missing); ok || at != base {
		t.Errorf("not made yet, under a group-writable directory: %v at %s", ok, at)
	}
	if err := os.Chmod(base, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the cases of another owner need chown; CI runs them")
		return
	}
	if err := os.Chown(base, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if ok, at, owner := Dir(missing); ok || at != base || owner != 65534 {
		t.Errorf("under another user's directory: %v at %s owner %d", ok, at, owner)
	}
	if fi, err := os.Stat(file); err != nil || !Mine(fi) {
		t.Errorf("a file of the running user's, mode 0600: Mine false (%v)", err)
	}
	if err := os.Chown(file, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || Mine(fi) {
		t.Errorf("a file of another user's: Mine true (%v)", err)
	}
}
