package builtins

// Facts of the server, files and git operations of the second wave:
// file attributes (lsattr) and git configuration.

import (
	"context"
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

func srvFilesFacts() []factDef {
	return []factDef{
		{Name: "file_flags", Args: []string{"path"}, Doc: "The Linux file attributes of path as `lsattr -d` prints them, as a list of their letters in lsattr's order (`[\"i\", \"e\"]`: immutable, extents); None when path does not exist. Fails where the file system has no attributes (lsattr: \"Operation not supported\") or lsattr (e2fsprogs) is missing.",
			Example: `if "i" in (fact("file_flags", "/etc/resolv.conf") or []):
    print("resolv.conf is immutable")`, read: readFileFlags},
		{Name: "git_config", Args: []string{"scope"}, Doc: "The git configuration of scope, `git config --list`: `\"system\"` (/etc/gitconfig), `\"global\"` (the ~/.gitconfig of the user the probe runs as) or the absolute path of a repository (its own config, `--local`), as a dict from key to the list of its values in file order. Keys are as git prints them: section and name lower-case (`user.name`), a subsection as written (`remote.origin.url`). A missing config file is an empty dict; None when git is not installed or the path is not a repository.",
			Example: `c = fact("git_config", "/srv/app")
if c != None and c.get("core.filemode") == ["false"]:
    print("file modes are ignored")`, read: readGitConfig},
	}
}

// fileFlagsProbe prints lsattr's line for the path, or exits 3 when the
// path does not exist (a dangling link exists). It opens with ": lsattr"
// so that fakes and logs tell it from the file fact's probe.
const fileFlagsProbe = `: lsattr; p=%s; [ -e "$p" ] || [ -L "$p" ] || exit 3; command -v lsattr >/dev/null 2>&1 || { echo 'lsattr is not installed (the e2fsprogs package)' >&2; exit 4; }; lsattr -d -- "$p"`

func readFileFlags(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	out, found, err := h.probeFound(ctx, ctl, fmt.Sprintf(fileFlagsProbe, connectors.Quote(args[0])), func(res connectors.Result) error {
		return fmt.Errorf("cannot read the attributes of %s: %s", args[0], strings.TrimSpace(string(res.Stderr)))
	})
	if !found {
		return starlark.None, err
	}
	flags, err := parseLsattr(out)
	if err != nil {
		return nil, fmt.Errorf("attributes of %s: %w", args[0], err)
	}
	return strList(flags), nil
}

// parseLsattr returns the attribute letters of the first line of `lsattr
// -d PATH` ("----i---------e------- /etc/x"), in the order printed.
func parseLsattr(out string) ([]string, error) {
	line, _, _ := strings.Cut(out, "\n")
	field, _, ok := strings.Cut(line, " ")
	if !ok || field == "" {
		return nil, fmt.Errorf("cannot parse lsattr's output %q", short(out))
	}
	flags := []string{}
	for _, r := range field {
		switch {
		case r == '-':
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			flags = append(flags, string(r))
		default:
			return nil, fmt.Errorf("cannot parse lsattr's output %q", short(out))
		}
	}
	return flags, nil
}

// gitConfigProbe lists a configuration with -z; exit 3: no git, 4: not a
// repository. A missing global or system file makes git exit 128 with
// nothing listed, which is an empty configuration.
const gitConfigProbe = `: git config; command -v git >/dev/null 2>&1 || exit 3; %s`

func readGitConfig(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	scope := args[0]
	var list string
	switch {
	case scope == "system" || scope == "global":
		list = "git config --" + scope + " --list -z 2>/dev/null; exit 0"
	case strings.HasPrefix(scope, "/"):
		q := connectors.Quote(scope)
		list = "[ -d " + q + " ] && git -C " + q + " rev-parse --git-dir >/dev/null 2>&1 || exit 4; git -C " + q + " config --local --list -z"
	default:
		return nil, fmt.Errorf("git_config: scope must be \"system\", \"global\" or the absolute path of a repository, got %q", scope)
	}
	out, code, err := h.probeExit(ctx, ctl, fmt.Sprintf(gitConfigProbe, list))
	if err != nil {
		return nil, err
	}
	switch code {
	case 0:
	case 3, 4:
		return starlark.None, nil
	default:
		return nil, fmt.Errorf("git config --list in %s exited with status %d", scope, code)
	}
	return structDict(parseGitConfigList(out), func(values []string) starlark.Value { return strList(values) }), nil
}

// parseGitConfigList parses `git config --list -z`: entries end in NUL,
// each "key\nvalue" (a key alone when it has no value, which is "").
func parseGitConfigList(out string) map[string][]string {
	m := map[string][]string{}
	for _, e := range strings.Split(out, "\x00") {
		if e == "" {
			continue
		}
		k, v, _ := strings.Cut(e, "\n")
		m[k] = append(m[k], v)
	}
	return m
}
