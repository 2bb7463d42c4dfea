package builtins

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// pkgLangFacts are the facts of the language and desktop package managers
// that pip.star, npm.star, gem.star, pipx.star, snap.star and flatpak.star
// decide with: what pip, npm, gem, pipx, snap and flatpak have installed.
// Each is one command, parsed in Go; a host without the tool has none
// installed (an empty dict), so that a dry run before the tool's own install
// reports the packages as missing.
func pkgLangFacts() []factDef {
	return []factDef{
		{Name: "pip_packages", Args: []string{"pip"}, Doc: "The Python packages that the pip command `pip` (`pip3`, `/srv/venv/bin/pip`, `python3 -m pip`, inserted into the command line as it is) lists, from `pip list --format=json`, as a dict from the name, normalized as PEP 503 does (lower case, runs of `-_.` made one `-`: `Odd_Name.pkg` is `odd-name-pkg`), to the version. Empty when the command does not exist (exit status 127: no such pip, no such virtualenv).",
			Example: `if "flask" not in fact("pip_packages", "/srv/venv/bin/pip"):
    print("no flask in /srv/venv")`, read: readPipPackages},
		{Name: "npm_packages", Args: []string{"directory"}, Doc: "The npm packages installed globally (directory `\"\"`, `npm ls -g`) or in the project at directory (`npm ls` there), from `npm ls --json --depth=0`, as a dict from the package name (`@scope/name` for a scoped one) to its version. Only the top level: packages that the project's package.json lists but are not installed are left out, extraneous ones (installed, not listed) are in. Empty when npm is not installed or directory does not exist.",
			Example: `g = fact("npm_packages", "")
print(g.get("typescript", "no global typescript"))
print(fact("npm_packages", "/srv/app"))`, read: readNpmPackages},
		{Name: "gem_packages", Doc: "The Ruby gems that `gem list --local` lists, as a dict from the name to the list of its installed versions, newest first as gem prints them (`[\"1.1.0\", \"1.0.0\"]`); a default gem's version is listed without its `default:` mark and a platform gem's without its platform. Empty when gem is not installed.",
			Example: `if "1.1.0" not in fact("gem_packages").get("rake", []):
    print("no rake 1.1.0")`, read: readGemPackages},
		{Name: "pipx_packages", Args: []string{"pipx"}, Doc: "The applications that the pipx command `pipx` (`pipx`, or with its environment: `PIPX_HOME=/opt/pipx pipx`, inserted into the command line as it is) has installed, from `pipx list --json`, as a dict from the package name, normalized as PEP 503 does, to its version. pipx installs for the user it runs as (root under `sudo=True`) unless PIPX_HOME says otherwise. Empty when pipx is not installed.",
			Example: `print(fact("pipx_packages", "pipx").get("black", "no black"))`, read: readPipxPackages},
		{Name: "snap_packages", Doc: "The snaps that `snap list` lists, as a dict from the name to a struct with `.version`, `.revision`, `.tracking` (the channel as snap list prints it: `latest/stable`, `4.0/stable/…` when it tracks a branch, `-` for a snap installed from a file), `.publisher` and `.notes` (`-`, `classic`, `base`, ...). Empty when snap is not installed.",
			Example: `s = fact("snap_packages").get("lxd")
if s != None:
    print(s.tracking)`, read: readSnapPackages},
		{Name: "flatpak_packages", Doc: "The applications and runtimes installed with flatpak (system-wide and for the user), from `flatpak list --columns=application,branch,origin`, as a dict from the ID (`org.videolan.VLC`) to a struct with `.branches` and `.origins` (the remotes they came from), sorted lists since one ID can be installed in several branches. Empty when flatpak is not installed.",
			Example: `if "org.videolan.VLC" in fact("flatpak_packages"):
    print("VLC is installed")`, read: readFlatpakPackages},
	}
}

// toolProbe runs script, which runs a package tool, and returns its stdout.
// ok is false when the tool is not there: the script exited with 127
// (command not found). Exit statuses other than 0 and those in accept
// fail.
func (h *Host) toolProbe(ctx context.Context, ctl Control, script string, accept ...int) (out string, ok bool, err error) {
	res, err := h.run(ctx, script, ctl, "")
	if err != nil {
		return "", false, err
	}
	if err := whole(res); err != nil {
		return "", false, err
	}
	switch {
	case res.ExitCode == 127:
		return "", false, nil
	case res.ExitCode == 0 || slices.Contains(accept, res.ExitCode):
		return string(res.Stdout), true, nil
	}
	return "", false, &connectors.ExitError{Target: h.Name, Script: short(script), Result: res}
}

// pep503 normalizes a Python package name as PEP 503 does.
func pep503(name string) string {
	return strings.ToLower(pep503Runs().ReplaceAllString(name, "-"))
}

var pep503Runs = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[-_.]+`) })

func readPipPackages(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	return h.toolVersions(ctx, ctl, args[0]+" list --format=json --disable-pip-version-check", parsePipList)
}

// toolVersions runs script with toolProbe and reads its output with parse
// into a dict from name to version: empty where the tool is missing.
func (h *Host) toolVersions(ctx context.Context, ctl Control, script string, parse func(string) (map[string]string, error), accept ...int) (starlark.Value, error) {
	out, ok, err := h.toolProbe(ctx, ctl, script, accept...)
	if err != nil || !ok {
		return starlark.NewDict(0), err
	}
	m, err := parse(out)
	if err != nil {
		return nil, err
	}
	return stringDict(m), nil
}

// parsePipList parses `pip list --format=json`: a list of objects with
// name and version.
func parsePipList(out string) (map[string]string, error) {
	var list []struct{ Name, Version string }
	if strings.TrimSpace(out) == "" {
		return map[string]string{}, nil
	}
	if err := json.Unmarshal([]byte(jsonStart(out)), &list); err != nil {
		return nil, fmt.Errorf("pip list --format=json: %w", err)
	}
	m := map[string]string{}
	for _, p := range list {
		m[pep503(p.Name)] = p.Version
	}
	return m, nil
}

// jsonStart drops what a tool printed before its JSON (a warning on
// stdout), so that the JSON parses.
func jsonStart(out string) string {
	if i := strings.IndexAny(out, "[{"); i > 0 {
		return out[i:]
	}
	return out
}

// npmProbe lists the top-level npm packages of directory %s ("-g": the
// global ones) as JSON; a missing directory prints nothing.
const npmProbe = `d=%s
if [ "$d" = -g ]; then exec npm ls -g --json --depth=0; fi
cd -- "$d" 2>/dev/null || exit 0
exec npm ls --json --depth=0`

func readNpmPackages(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	dir := args[0]
	if dir == "" {
		dir = "-g"
	} else if !strings.HasPrefix(dir, "/") {
		return nil, fmt.Errorf("npm_packages: directory must be an absolute path, or \"\" for the global packages, got %q", dir)
	}
	// npm ls exits 1 when the tree has problems (a dependency missing,
	// one extraneous) and still prints it.
	return h.toolVersions(ctx, ctl, fmt.Sprintf(npmProbe, connectors.Quote(dir)), parseNpmLs, 1)
}

// parseNpmLs parses `npm ls --json --depth=0`. An error other than the
// problems of the tree (ELSPROBLEMS) fails; an empty output is no packages.
func parseNpmLs(out string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(out) == "" {
		return m, nil
	}
	var tree struct {
		Dependencies map[string]struct {
			Version string
			Missing bool
		}
		Error *struct{ Code, Summary string }
	}
	if err := json.Unmarshal([]byte(jsonStart(out)), &tree); err != nil {
		return nil, fmt.Errorf("npm ls --json: %w", err)
	}
	if tree.Error != nil && tree.Error.Code != "ELSPROBLEMS" {
		return nil, fmt.Errorf("npm ls: %s: %s", tree.Error.Code, tree.Error.Summary)
	}
	for name, d := range tree.Dependencies {
		if !d.Missing {
			m[name] = d.Version
		}
	}
	return m, nil
}

func readGemPackages(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, ok, err := h.toolProbe(ctx, ctl, "gem list --local")
	if err != nil || !ok {
		return starlark.NewDict(0), err
	}
	return structDict(parseGemList(out), func(versions []string) starlark.Value { return strList(versions) }), nil
}

var gemLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\S+) \((.*)\)$`) })

// parseGemList parses `gem list --local`: lines "name (1.1.0, 1.0.0)",
// "name (default: 0.1.0)" and "name (2.0.0 x86_64-linux)".
func parseGemList(out string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		g := gemLine().FindStringSubmatch(strings.TrimSpace(line))
		if g == nil {
			continue
		}
		var versions []string
		for _, v := range strings.Split(g[2], ",") {
			v = strings.TrimPrefix(strings.TrimSpace(v), "default: ")
			if f := strings.Fields(v); len(f) > 0 {
				versions = append(versions, f[0])
			}
		}
		m[g[1]] = versions
	}
	return m
}

func readPipxPackages(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	return h.toolVersions(ctx, ctl, args[0]+" list --json", parsePipxList)
}

// parsePipxList parses `pipx list --json`: its venvs, each with the main
// package's name and version.
func parsePipxList(out string) (map[string]string, error) {
	var list struct {
		Venvs map[string]struct {
			Metadata struct {
				MainPackage struct {
					Package        string `json:"package"`
					PackageVersion string `json:"package_version"`
				} `json:"main_package"`
			}
		}
	}
	m := map[string]string{}
	if strings.TrimSpace(out) == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(jsonStart(out)), &list); err != nil {
		return nil, fmt.Errorf("pipx list --json: %w", err)
	}
	for venv, v := range list.Venvs {
		name := v.Metadata.MainPackage.Package
		if name == "" {
			name = venv
		}
		m[pep503(name)] = v.Metadata.MainPackage.PackageVersion
	}
	return m, nil
}

// A snap is one line of `snap list`.
type snap struct {
	Name, Version, Revision, Tracking, Publisher, Notes string
}

func readSnapPackages(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, ok, err := h.toolProbe(ctx, ctl, "snap list")
	if err != nil || !ok {
		return starlark.NewDict(0), err
	}
	return keyedDict(parseSnapList(out), func(s snap) string { return s.Name }), nil
}

func (s snap) value() starlark.Value {
	return newStruct("snap", starlark.StringDict{
		"version":   starlark.String(s.Version),
		"revision":  starlark.String(s.Revision),
		"tracking":  starlark.String(s.Tracking),
		"publisher": starlark.String(s.Publisher),
		"notes":     starlark.String(s.Notes),
	})
}

// parseSnapList parses `snap list`: a header line, then one line a snap
// with six columns that snap fills with "-" when empty.
func parseSnapList(out string) []snap {
	var snaps []snap
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || (f[0] == "Name" && f[1] == "Version") {
			continue
		}
		snaps = append(snaps, snap{Name: f[0], Version: f[1], Revision: f[2], Tracking: f[3], Publisher: f[4], Notes: strings.Join(f[5:], " ")})
	}
	return snaps
}

func readFlatpakPackages(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, ok, err := h.toolProbe(ctx, ctl, "flatpak list --columns=application,branch,origin")
	if err != nil || !ok {
		return starlark.NewDict(0), err
	}
	return structDict(parseFlatpakList(out), func(r flatpakRefs) starlark.Value {
		return newStruct("flatpak", starlark.StringDict{
			"branches": strList(r.branches),
			"origins":  strList(r.origins),
		})
	}), nil
}

// flatpakRefs are the branches and origins of one flatpak ID.
type flatpakRefs struct{ branches, origins []string }

// parseFlatpakList parses `flatpak list --columns=application,branch,origin`
// as it prints to a pipe: no header, the columns separated by tabs. A
// terminal's layout (a header "Application ID", columns padded with
// spaces) is read too.
func parseFlatpakList(out string) map[string]flatpakRefs {
	m := map[string]flatpakRefs{}
	for _, line := range strings.Split(out, "\n") {
		var f []string
		if strings.Contains(line, "\t") {
			f = strings.Split(line, "\t")
		} else {
			f = strings.Fields(line)
		}
		if len(f) == 0 || strings.TrimSpace(f[0]) == "" || strings.HasPrefix(line, "Application ID") {
			continue
		}
		id := strings.TrimSpace(f[0])
		r := m[id]
		if len(f) > 1 && !slices.Contains(r.branches, strings.TrimSpace(f[1])) {
			r.branches = append(r.branches, strings.TrimSpace(f[1]))
			slices.Sort(r.branches)
		}
		if len(f) > 2 && !slices.Contains(r.origins, strings.TrimSpace(f[2])) {
			r.origins = append(r.origins, strings.TrimSpace(f[2]))
			slices.Sort(r.origins)
		}
		m[id] = r
	}
	return m
}
