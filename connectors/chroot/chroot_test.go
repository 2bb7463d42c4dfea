package chroot_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/chroot"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

func open(t *testing.T, root string) connectors.Connector {
	t.Helper()
	r := connectors.NewRegistry(chroot.NewFactory())
	tg, err := r.Target("@chroot"+root, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Factories()[0].Open(t.Context(), tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSuite runs the conformance suite in a debootstrapped Debian tree.
func TestSuite(t *testing.T) {
	root := sshtest.RootFS(t)
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		return open(t, root), sshtest.ScratchIn(t, root)
	})
}

// TestInsideRoot checks that commands see the tree as / and that files
// are read and written inside it, symbolic links resolved within it.
func TestInsideRoot(t *testing.T) {
	root := sshtest.RootFS(t)
	c := open(t, root)
	scratch := sshtest.ScratchIn(t, root)
	ctx := t.Context()

	res, err := c.Run(ctx, connectors.Command{Script: ". /etc/os-release && echo $ID; id -u; pwd; test -e " + scratch + " && echo seen"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", err, res)
	}
	if got := string(res.Stdout); got != "debian\n0\n/\nseen\n" {
		t.Errorf("stdout %q, want debian, uid 0, cwd / and the scratch directory", got)
	}

	// An absolute link inside the tree points into the tree, not at
	// this machine's files.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, scratch, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(root, filepath.Dir(outside))) }) // t.TempDir's own directory, mirrored
	if err := c.Put(ctx, scratch+"/abs/f", strings.NewReader("inside"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Put through a link wrote this machine's %s/f (stat: %v)", outside, err)
	}
	b, err := os.ReadFile(filepath.Join(root, outside, "f"))
	if err != nil || string(b) != "inside" {
		t.Errorf("the file inside the tree: %q, %v", b, err)
	}
	res, err = c.Run(ctx, connectors.Command{Script: "cat " + scratch + "/abs/f; stat -c %a " + scratch + "/abs/f"})
	if err != nil || string(res.Stdout) != "inside640\n" {
		t.Errorf("the command's view: %q, %v", res.Stdout, err)
	}
	var got bytes.Buffer
	if err := c.Get(ctx, scratch+"/abs/f", &got); err != nil || got.String() != "inside" {
		t.Errorf("Get through the link: %q, %v", got.String(), err)
	}
	// ".." stops at the root.
	got.Reset()
	if err := c.Get(ctx, "/../../../etc/debian_version", &got); err != nil || got.Len() == 0 {
		t.Errorf("Get /../../../etc/debian_version: %q, %v", got.String(), err)
	}
	// A relative path is relative to the chroot's /.
	got.Reset()
	if err := c.Get(ctx, strings.TrimPrefix(scratch, "/")+"/abs/f", &got); err != nil || got.String() != "inside" {
		t.Errorf("Get of a relative path: %q, %v", got.String(), err)
	}
}

func TestParse(t *testing.T) {
	f := chroot.NewFactory()
	for _, tc := range []struct{ addr, name, dir, err string }{
		{"srv/root", "@chroot/srv/root", "/srv/root", ""},
		{"/srv/root/", "@chroot/srv/root", "/srv/root", ""},
		{"", "", "", "@chroot needs a directory"},
		{"/", "", "", "use @local"},
	} {
		tg, err := f.Parse(tc.addr, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) error %v, want %q", tc.addr, err, tc.err)
			}
			continue
		}
		if err != nil || tg.Name != tc.name || tg.Addr != tc.dir {
			t.Errorf("Parse(%q) = %+v, %v", tc.addr, tg, err)
		}
	}
	if _, err := f.Parse("srv", map[string]string{"chroot_x": "1"}); err == nil {
		t.Error("Parse with a data key: no error")
	}
	if _, err := f.Open(t.Context(), connectors.Target{Name: "@chroot/nonexistent", Addr: "/nonexistent-star-deploy"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing directory: %v", err)
	}
}
