package builtins

import (
	"fmt"
	"path"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// tempFileSpec gives shell() commands of the stdlib (and of deploy
// scripts) what put has for its own temporary files: a name of the run
// (connectors.TempTemplate) and the sweep of what earlier runs left in the
// directory (connectors.SweepScript), so that a download or copy killed
// between making its temporary file and renaming it leaves a file that a
// later run removes.
var tempFileSpec = &Spec{
	Name: "temp_file",
	Doc: "Returns shell commands (POSIX sh) that set `$tmp` to a new, empty temporary file (mode 0600, made by " +
		"`mktemp`) in `dest`'s directory, named for this run as put's temporary files are " +
		"(`.star-deploy-<run id>-<base name>.XXXXXX`), and exit 1 when it cannot be made. " +
		"They first remove what earlier runs left in that directory, as put does: files of that naming from other runs, " +
		"regular files only, last changed before this run started (nothing under --dry). " +
		"The caller writes `$tmp`, renames it over `dest` and removes it when it fails; " +
		"one killed (or whose connection is lost) before that leaves a file that the next run's sweep, of put or of " +
		"`temp_file`, removes. The commands run as the `shell()` that they go into (with its `sudo=`), which must be " +
		"able to write the directory.",
	Params:  []Param{{"dest", "str", "", "Absolute path of the file that `$tmp` will be renamed to."}},
	Returns: "the shell commands, a string ending in a newline",
	Example: `shell(temp_file("/srv/app.tar.gz") + 'curl -fsSL -o "$tmp" https://example.com/app.tar.gz && mv -f "$tmp" /srv/app.tar.gz || { rm -f "$tmp"; exit 1; }')`,
	Effects: EffectPure,
	Fn: func(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		var dest string
		if err := s.Unpack(args, kw, &dest); err != nil {
			return nil, err
		}
		if !path.IsAbs(dest) || path.Base(dest) == "/" || path.Base(dest) == "." || path.Base(dest) == ".." {
			return nil, fmt.Errorf("temp_file: dest must be an absolute path of a file (/srv/app.tar.gz), got %q", dest)
		}
		h, err := HostFrom(thread, s.Name)
		if err != nil {
			return nil, err
		}
		ctx := contextFrom(thread)
		dest = path.Clean(dest)
		script := ""
		if run, ok := connectors.RunFrom(ctx); ok && !h.Dry {
			script = connectors.SweepScript(path.Dir(dest), run)
		}
		script += "tmp=$(mktemp " + connectors.Quote(connectors.TempTemplate(ctx, dest)) + ") || exit 1\n"
		return starlark.String(script), nil
	},
}
