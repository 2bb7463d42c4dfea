//go:build linux

package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
)

// tree makes, in a new directory (its physical path returned):
//
//	f          a regular file, "hello\n", 0640
//	d/         a directory, 04755 set on it is kept as bits
//	real/g     a file
//	alias      -> real
//	l          -> alias/g (relative, through a linked directory)
//	abs        -> DIR/f
//	chain      -> l
//	dangling   -> nothing
//	nodir      -> missing/x
//	loop1      -> loop2, loop2 -> loop1
func tree(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "f"), []byte("hello\n"), 0o640))
	must(os.Chmod(filepath.Join(dir, "f"), 0o640))
	must(os.Mkdir(filepath.Join(dir, "d"), 0o755))
	must(os.Mkdir(filepath.Join(dir, "real"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "real", "g"), []byte("g"), 0o644))
	for name, target := range map[string]string{
		"alias": "real", "l": "alias/g", "abs": filepath.Join(dir, "f"), "chain": "l",
		"dangling": "nothing", "nodir": "missing/x", "loop1": "loop2", "loop2": "loop1",
	} {
		must(os.Symlink(target, filepath.Join(dir, name)))
	}
	return dir
}

func TestNativeStat(t *testing.T) {
	n := local.New()
	dir := tree(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	stat := func(p string, follow bool) connectors.FileStat {
		t.Helper()
		st, err := n.Stat(ctx, p, follow)
		if err != nil {
			t.Fatalf("Stat(%s, %v): %v", p, follow, err)
		}
		return st
	}
	j := func(p string) string { return filepath.Join(dir, p) }

	if st := stat(j("f"), false); st != (connectors.FileStat{Path: j("f"), Exists: true, Type: "file", Mode: 0o640, Owner: me.Username, Group: g.Name, Size: 6}) {
		t.Errorf("regular file: %+v", st)
	}
	sum, err := n.SHA256(ctx, j("f"))
	if want := sha256.Sum256([]byte("hello\n")); err != nil || sum != hex.EncodeToString(want[:]) {
		t.Errorf("SHA256 = %q, %v", sum, err)
	}
	if _, err := n.SHA256(ctx, j("d")); err == nil {
		t.Errorf("SHA256 of a directory: no error")
	}
	if _, err := n.SHA256(ctx, j("abs")); err == nil {
		t.Errorf("SHA256 through a link: no error")
	}
	if err := os.Chmod(j("d"), 0o4755|fs.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if st := stat(j("d"), false); st.Type != "directory" || st.Mode != 0o4755 || !st.Exists {
		t.Errorf("directory: %+v, want a directory of mode 04755", st)
	}
	if st := stat(j("l"), false); st.Type != "link" || st.Target != "alias/g" || st.Size != int64(len("alias/g")) || st.Mode != 0o777 || st.Path != j("l") {
		t.Errorf("link, not followed: %+v", st)
	}
	// Followed, the directory where the links end is resolved physically.
	for _, name := range []string{"l", "chain"} {
		if st := stat(j(name), true); st.Path != j("real/g") || st.Type != "file" || st.Size != 1 {
			t.Errorf("%s followed: %+v, want the file %s", name, st, j("real/g"))
		}
	}
	if st := stat(j("abs"), true); st.Path != j("f") || st.Type != "file" {
		t.Errorf("absolute link followed: %+v", st)
	}
	if st := stat(j("f"), true); st.Path != j("f") {
		t.Errorf("a file followed: %+v", st)
	}
	if st := stat(j("dangling"), true); st.Exists || st.Path != j("nothing") {
		t.Errorf("dangling link followed: %+v, want the missing %s", st, j("nothing"))
	}
	if st := stat(j("dangling"), false); st.Type != "link" || st.Target != "nothing" {
		t.Errorf("dangling link: %+v", st)
	}
	if st := stat(j("missing"), false); st != (connectors.FileStat{Path: j("missing")}) {
		t.Errorf("missing: %+v", st)
	}
	if st := stat(j("f/below"), false); st.Exists {
		t.Errorf("below a file: %+v", st)
	}
	if st := stat(j("loop1"), false); st.Type != "link" {
		t.Errorf("a loop, not followed: %+v", st)
	}
	// What the shell answers with a message, Native leaves to it.
	for _, p := range []string{"loop1", "nodir"} {
		if st, err := n.Stat(ctx, j(p), true); err == nil {
			t.Errorf("%s followed: %+v, want an error", p, st)
		}
	}
	for _, p := range []string{"relative", dir + "/./f", dir + "/", ""} {
		if _, err := n.Stat(ctx, p, false); err == nil {
			t.Errorf("Stat(%q): no error for a path that is not absolute and clean", p)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := n.Stat(cancelled, j("f"), false); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context: %v", err)
	}
}

// asOther runs f on a thread whose file-system user is nobody (65534)
// when the test runs as root, so that permissions apply; the thread ends
// with f. Without root, permissions apply already.
func asOther(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		f()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread is thrown away
		unix.Setfsuid(65534)
		unix.Setfsgid(65534)
		f()
	}()
	<-done
}

// A file the user cannot reach is an error (the builtins then ask the
// shell), not a missing file.
func TestNativePermissionDenied(t *testing.T) {
	n := local.New()
	dir := tree(t)
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(locked, "x"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o600)
	if os.Geteuid() != 0 {
		os.Chmod(locked, 0)
		os.Chmod(filepath.Join(dir, "secret"), 0)
		t.Cleanup(func() { os.Chmod(locked, 0o700) })
	}
	ctx := t.Context()
	var errs [4]error
	asOther(t, func() {
		_, errs[0] = n.Stat(ctx, filepath.Join(locked, "x"), false)
		_, errs[1] = n.SHA256(ctx, filepath.Join(dir, "secret"))
		_, errs[2] = n.ReadFile(ctx, filepath.Join(dir, "secret"), 100)
		_, errs[3] = n.ReadFile(ctx, filepath.Join(locked, "x"), 100)
	})
	for i, err := range errs {
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("call %d: %v, want a permission error", i, err)
		}
	}
}

func TestNativeReadFile(t *testing.T) {
	n := local.New()
	dir := tree(t)
	ctx := t.Context()
	if b, err := n.ReadFile(ctx, filepath.Join(dir, "abs"), 6); string(b) != "hello\n" || err != nil {
		t.Errorf("ReadFile through a link = %q, %v", b, err)
	}
	for _, p := range []string{"missing", "dangling", "f/below"} {
		if _, err := n.ReadFile(ctx, filepath.Join(dir, p), 100); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%s): %v, want fs.ErrNotExist", p, err)
		}
	}
	if _, err := n.ReadFile(ctx, filepath.Join(dir, "f"), 5); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile beyond max: %v, want an error", err)
	}
	if _, err := n.ReadFile(ctx, filepath.Join(dir, "d"), 100); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a directory: %v, want an error", err)
	}
}

func TestNativeChmodChown(t *testing.T) {
	n := local.New()
	dir := tree(t)
	ctx := t.Context()
	f := filepath.Join(dir, "f")
	if err := n.Chmod(ctx, filepath.Join(dir, "abs"), 0o2750); err != nil {
		t.Fatal(err)
	}
	if st, _ := n.Stat(ctx, f, false); st.Mode != 0o2750 {
		t.Errorf("mode after Chmod through a link: %o", st.Mode)
	}
	me, _ := user.Current()
	g, _ := user.LookupGroupId(me.Gid)
	if err := n.Chown(ctx, f, me.Username, g.Name); err != nil {
		t.Errorf("Chown to oneself: %v", err)
	}
	if err := n.Chown(ctx, f, "", g.Name); err != nil {
		t.Errorf("Chown of the group only: %v", err)
	}
	if err := n.Chown(ctx, f, "no-such-user-here", ""); err == nil {
		t.Errorf("Chown to an unknown user: no error")
	}
}

func TestNativeSweep(t *testing.T) {
	n := local.New()
	dir := t.TempDir()
	run := connectors.Run{ID: "aaaaaaaaaaaa", Start: time.Now()}
	old := time.Now().Add(-time.Hour)
	files := map[string]bool{ // name: removed
		".star-deploy-bbbbbbbbbbbb-conf.123456": true,
		".star-deploy-aaaaaaaaaaaa-conf.123456": false, // this run's
		".star-deploy-cccccccccccc-new.123456":  false, // not older than the run
		".star-deploy-zzzzzzzzzzzz-conf.123456": false, // not a run id
		"conf":                                  false,
	}
	for name := range files {
		p := filepath.Join(dir, name)
		os.WriteFile(p, nil, 0o600)
		if !strings.Contains(name, "-new.") {
			os.Chtimes(p, old, old)
		}
	}
	os.Mkdir(filepath.Join(dir, ".star-deploy-dddddddddddd-dir.123456"), 0o700)
	os.Symlink("conf", filepath.Join(dir, ".star-deploy-eeeeeeeeeeee-link.123456"))
	n.Sweep(t.Context(), dir, run)
	for name, removed := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); removed != errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: removed is %v, want %v", name, !removed, removed)
		}
	}
	for _, name := range []string{".star-deploy-dddddddddddd-dir.123456", ".star-deploy-eeeeeeeeeeee-link.123456"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s was removed: only regular files are", name)
		}
	}
	n.Sweep(t.Context(), filepath.Join(dir, "missing"), run) // no panic, nothing to report
}

func TestNativeUname(t *testing.T) {
	u, err := local.New().Uname(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for flag, got := range map[string]string{"-s": u.Sysname, "-n": u.Nodename, "-m": u.Machine} {
		out, err := exec.Command("uname", flag).Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSpace(string(out)); got != want {
			t.Errorf("uname %s: %q, want %q", flag, got, want)
		}
	}
}

// Tree lists what find lists, not through links, and refuses what the
// shell must answer: a directory it cannot read, a name with a newline.
func TestNativeTree(t *testing.T) {
	n := local.New()
	dir := tree(t)
	ctx := t.Context()
	got, err := n.Tree(ctx, dir, 1<<20)
	want := map[string]string{"f": "file", "d": "directory", "real": "directory", "real/g": "file", "alias": "link", "l": "link",
		"abs": "link", "chain": "link", "dangling": "link", "nodir": "link", "loop1": "link", "loop2": "link"}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("Tree = %v, %v\nwant %v", got, err, want)
	}
	if got, err := n.Tree(ctx, filepath.Join(dir, "alias"), 1<<20); err != nil || !maps.Equal(got, map[string]string{"g": "file"}) {
		t.Errorf("Tree(alias) = %v, %v: want the linked directory's entries", got, err)
	}
	for _, p := range []string{"f", "missing", "dangling", "l"} {
		if got, err := n.Tree(ctx, filepath.Join(dir, p), 1<<20); got != nil || err != nil {
			t.Errorf("Tree(%s) = %v, %v; want nil, nil (not a directory)", p, got, err)
		}
	}
	if _, err := n.Tree(ctx, "relative", 1<<20); err == nil {
		t.Error("a relative path was listed")
	}
	// find's output, "file ./f\n" and the rest, is 155 bytes. Within 156
	// Tree answers; from 155 down it leaves the limit to the shell, whose
	// output max_output may cut.
	if _, err := n.Tree(ctx, dir, 156); err != nil {
		t.Errorf("Tree within 156 bytes: %v", err)
	}
	if _, err := n.Tree(ctx, dir, 155); err == nil {
		t.Error("a listing of 155 bytes was answered within 155")
	}
	os.WriteFile(filepath.Join(dir, "d", "new\nline"), nil, 0o644)
	if _, err := n.Tree(ctx, dir, 1<<20); err == nil {
		t.Error("a name with a newline was listed")
	}
	// A directory the other user may enter, holding one it may not read
	// (t.TempDir's directories are 0700).
	open, err := os.MkdirTemp("", "tree-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(open, "inner"), 0o700); os.RemoveAll(open) })
	os.Chmod(open, 0o755)
	os.WriteFile(filepath.Join(open, "x"), nil, 0o644)
	os.Mkdir(filepath.Join(open, "inner"), 0o700)
	if os.Geteuid() != 0 {
		os.Chmod(filepath.Join(open, "inner"), 0)
	}
	var listed map[string]string
	asOther(t, func() { _, err = n.Tree(ctx, open, 1<<20); listed, _ = n.Tree(ctx, filepath.Join(open, "x"), 1<<20) })
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("an unreadable directory inside: %v, want a permission error", err)
	}
	if listed != nil {
		t.Errorf("a file listed as %v", listed)
	}
}
