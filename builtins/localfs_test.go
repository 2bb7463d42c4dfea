package builtins_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
)

// TestHostWithoutLocalFS: on a host with no LocalFS, the builtins that read
// or write local files fail with an error saying so (put src= used to call
// a nil function), and nothing reaches the host.
func TestHostWithoutLocalFS(t *testing.T) {
	conn, err := local.NewFactory().Open(t.Context(), connectors.Target{Scheme: "local", Name: "@local"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	for _, c := range []struct{ script, want string }{
		{"put(" + strconv.Quote(dest) + ", src = 'src.txt')", "local files are not available here"},
		{"template('src.tmpl', " + strconv.Quote(dest) + ")", "local files are not available here"},
		{"get(" + strconv.Quote(filepath.Join(dir, "src")) + ", " + strconv.Quote(dest) + ")", "writing local files is not allowed here"},
		{"local_tree('.')", "listing local directories is not available here"},
	} {
		h := &builtins.Host{Name: "@local", Conn: conn}
		thread := &starlark.Thread{Name: "test"}
		builtins.WithHost(thread, t.Context(), h)
		_, err := starlark.ExecFileOptions(&syntax.FileOptions{}, thread, filepath.Join(dir, "s.star"), c.script, builtins.Predeclared(^builtins.Effect(0)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.script, err, c.want)
		}
		if _, err := os.Lstat(dest); err == nil {
			t.Errorf("%s: created %s", c.script, dest)
		}
	}
}
