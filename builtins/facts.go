package builtins

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/spell"
)

// A factDef describes one fact: its arguments, documentation and how to
// read it.
type factDef struct {
	Name    string
	Args    []string // an argument whose name ends in "?" may be left out (trailing ones only): it is ""
	Doc     string
	Example string
	read    func(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error)
	// Paths are files a fact without them among its arguments reads: a
	// write to one of them, or below, drops the fact from the cache.
	Paths []string
}

// FactDoc documents one fact for the reference.
type FactDoc struct {
	Name    string
	Args    []string
	Doc     string // Markdown
	Example string // Starlark
}

// FactDocs returns the documentation of every fact, sorted by name.
func FactDocs() []FactDoc {
	var out []FactDoc
	for _, f := range factDefs() {
		out = append(out, FactDoc{Name: f.Name, Args: slices.Clone(f.Args), Doc: f.Doc, Example: f.Example})
	}
	return out
}

// factDefs returns every fact, sorted by name. It builds the table once:
// fact() looks a name up on every call. The result is shared; do not
// modify it.
var factDefs = sync.OnceValue(buildFactDefs)

func buildFactDefs() []factDef {
	defs := []factDef{
		{Name: "arch", Doc: "The machine architecture, as `uname -m` prints it (`x86_64`, `aarch64`).",
			Example: `if fact("arch") == "aarch64":
    print("arm")`, read: readArch},
		{Name: "file", Args: []string{"path"}, Doc: "A struct describing path: `.exists`, `.type` (`file`, `directory`, `link`, `other`), `.mode` (`\"0644\"`), `.owner`, `.group`, `.size`, `.sha256` (regular files only), `.target` (links only). The path is not followed if it is a symlink.",
			Example: `f = fact("file", "/etc/motd")
if f.exists and f.type == "file":
    print(f.sha256)`, read: readFileFact},
		{Name: "hostname", Doc: "The host name, as `uname -n` prints it.",
			Example: `print(fact("hostname"))`, read: readHostname},
		{Name: "os", Doc: "The fields of /etc/os-release as a dict with lower-case keys (`id`, `version_id`, `pretty_name`, ...); `{\"id\": \"darwin\"}` style from `uname -s` where there is no os-release.",
			Example: `if fact("os")["id"] in ("debian", "ubuntu"):
    print("apt")`, read: readOS},
		{Name: "which", Args: []string{"command"}, Doc: "The path of command as `command -v` finds it, or None.",
			Example: `if fact("which", "nginx") == None:
    print("nginx is not installed")`, read: readWhich},
	}
	defs = append(defs, systemFacts()...)
	defs = append(defs, hostFacts()...)
	defs = append(defs, postgresqlFacts()...)
	defs = append(defs, dockerFacts()...)
	defs = append(defs, pkgsysFacts()...)
	defs = append(defs, mysqlFacts()...)
	defs = append(defs, srvFilesFacts()...)
	defs = append(defs, pkgLangFacts()...)
	defs = append(defs, fwsshFacts()...)
	sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	return defs
}

var factSpec = &Spec{
	Name: "fact",
	Doc: "Reads a fact about the host. Facts run also under `--dry`, never count as changes, " +
		"and are cached per host for the run; an operation that changes what a fact describes " +
		"drops it from the cache. The reference lists every fact (`star-deploy docs`). " +
		"Of the control arguments, the privilege ones (`sudo=`, `sudo_user=`, `su_user=`, `doas=`, " +
		"`doas_user=`) read the fact as that user, and a fact whose output exceeds `max_output=` fails " +
		"rather than be read in part; the others are accepted and ignored, so that an " +
		"operation can pass its `**control` on.",
	Params: []Param{
		{"name", "str", "", "The fact's name."},
		{"*args", "str", "", "The fact's arguments, e.g. the path of `file`."},
	},
	Control: true,
	Returns: "the fact's value (see the list of facts)",
	Example: `if fact("os")["id"] == "debian":
    print(fact("file", "/etc/motd").sha256)`,
	Effects: EffectReadHost,
	Fn:      factFn,
}

func factFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, _, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	if len(kw) > 0 {
		return nil, fmt.Errorf("fact: unexpected keyword argument %s", kw[0][0])
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("fact: missing the fact's name, one of %s", strings.Join(factNames(), ", "))
	}
	var strs []string
	for i, a := range args {
		str, ok := a.(starlark.String)
		if !ok {
			return nil, fmt.Errorf("fact: argument %d must be a string, got %s", i+1, a.Type())
		}
		strs = append(strs, string(str))
	}
	name, fargs := strs[0], strs[1:]
	for _, def := range factDefs() {
		if def.Name != name {
			continue
		}
		required := len(def.Args)
		for required > 0 && strings.HasSuffix(def.Args[required-1], "?") {
			required--
		}
		if len(fargs) < required || len(fargs) > len(def.Args) {
			return nil, fmt.Errorf("fact: %s takes %s argument(s) (%s), got %d", name, argCount(required, len(def.Args)), strings.Join(def.Args, ", "), len(fargs))
		}
		for len(fargs) < len(def.Args) {
			fargs = append(fargs, "") // an optional argument left out
		}
		return h.readFact(contextFrom(thread), def, ctl, fargs)
	}
	return nil, fmt.Errorf("fact: unknown fact %q%s; known facts: %s", name, spell.Suffix(name, factNames()), strings.Join(factNames(), ", "))
}

// argCount says how many arguments a fact takes: "2", or "1 to 3".
func argCount(min, max int) string {
	if min == max {
		return strconv.Itoa(max)
	}
	return fmt.Sprintf("%d to %d", min, max)
}

func factNames() []string {
	var names []string
	for _, d := range factDefs() {
		names = append(names, d.Name)
	}
	return names
}

// readFact reads a fact through the cache. The key holds the fact, its
// arguments and the privilege it was read with.
func (h *Host) readFact(ctx context.Context, def factDef, ctl Control, args []string) (starlark.Value, error) {
	key := factKey(def.Name, append(slices.Clip(args), def.Paths...), ctl)
	return h.fact(key, func() (starlark.Value, error) {
		pc := probeControl(ctl)
		v, err := def.read(ctx, h, pc, args)
		if err != nil {
			return nil, fmt.Errorf("fact %s on %s: %w", def.Name, h.Name, err)
		}
		return v, nil
	})
}

// nativeExists is test -e p on a connectors.Native host (stat(2) of p,
// through its links, succeeds); false when the shell must answer.
func (h *Host) nativeExists(ctx context.Context, ctl Control, p string) (exists, ok bool) {
	n, ok := h.native(ctx, ctl)
	if !ok {
		return false, false
	}
	h.traceNative(ctl, "test -e "+connectors.Quote(p))
	st, err := n.Stat(ctx, p, true)
	return st.Exists, err == nil
}

// nativeContent is the content fact's probe ([ -e p ] || exit 3; cat p) on
// a connectors.Native host: None for a missing file, its content for a
// regular file within max_output.
func nativeContent(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, bool) {
	n, ok := h.native(ctx, ctl)
	if !ok {
		return nil, false
	}
	h.traceNative(ctl, "read "+connectors.Quote(args[0]))
	b, err := n.ReadFile(ctx, args[0], outputLimit(ctl))
	switch {
	case err == nil:
		return starlark.String(b), true
	case errors.Is(err, fs.ErrNotExist):
		return starlark.None, true
	}
	return nil, false
}

// factKey is the cache key of the fact name with args, read with ctl's
// privileges.
func factKey(name string, args []string, ctl Control) string {
	return name + "\x00" + strings.Join(args, "\x00") + "\x00" + ctl.privilegeKey()
}

func readArch(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	if u, ok := h.nativeUname(ctx, ctl); ok {
		return starlark.String(strings.TrimSpace(u.Machine)), nil
	}
	out, err := h.probe(ctx, ctl, "uname -m")
	return starlark.String(strings.TrimSpace(out)), err
}

func readHostname(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	if u, ok := h.nativeUname(ctx, ctl); ok {
		return starlark.String(strings.TrimSpace(u.Nodename)), nil
	}
	out, err := h.probe(ctx, ctl, "uname -n")
	return starlark.String(strings.TrimSpace(out)), err
}

// nativeUname is uname(2) on a connectors.Native host; false when the
// shell must answer.
func (h *Host) nativeUname(ctx context.Context, ctl Control) (connectors.Uname, bool) {
	n, ok := h.native(ctx, ctl)
	if !ok {
		return connectors.Uname{}, false
	}
	h.traceNative(ctl, "uname")
	u, err := n.Uname(ctx)
	return u, err == nil
}

func readWhich(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	res, err := h.run(ctx, "command -v "+connectors.Quote(args[0]), ctl, "")
	if err != nil {
		return nil, err
	}
	p := strings.TrimSpace(string(res.Stdout))
	if res.ExitCode != 0 || p == "" {
		return starlark.None, nil
	}
	return starlark.String(p), nil
}

func readOS(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	if out, ok := h.nativeOS(ctx, ctl); ok {
		return stringDict(parseOSRelease(out)), nil
	}
	out, err := h.probe(ctx, ctl, "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || echo ID=$(uname -s | tr A-Z a-z)")
	if err != nil {
		return nil, err
	}
	return stringDict(parseOSRelease(out)), nil
}

// nativeOS is the os fact's probe on a connectors.Native host: the first
// of the os-release files that exists, else "ID=" and uname -s in lower
// case. False when the shell must answer (a file there that cannot be
// read, or larger than max_output).
func (h *Host) nativeOS(ctx context.Context, ctl Control) (string, bool) {
	n, ok := h.native(ctx, ctl)
	if !ok {
		return "", false
	}
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		h.traceNative(ctl, "read "+p)
		b, err := n.ReadFile(ctx, p, outputLimit(ctl))
		if err == nil {
			return string(b), true
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", false
		}
	}
	u, ok := h.nativeUname(ctx, ctl)
	return "ID=" + asciiLower(u.Sysname) + "\n", ok
}

// asciiLower is tr A-Z a-z.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// outputLimit is the most bytes of output a probe under ctl may parse.
func outputLimit(ctl Control) int64 {
	return (&connectors.CapBuffer{Max: ctl.MaxOutput}).Limit()
}

// parseOSRelease parses os-release(5) lines KEY=value with optional quotes.
func parseOSRelease(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || line == "" || line[0] == '#' {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
			if line[len(k)+1] == '"' {
				v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
			}
		}
		out[strings.ToLower(k)] = v
	}
	return out
}

// fileInfo is the file fact.
type fileInfo struct {
	Exists bool
	Type   string // file, directory, link, other
	Mode   fs.FileMode
	Owner  string
	Group  string
	Size   int64
	SHA256 string
	Target string // of a link
}

// The probe prints "type|mode|owner|group|size" with GNU/busybox stat, or
// BSD stat, then the sha256 of a regular file on its own line (cut from
// sha256sum's line by the shell, not by cut: a process fewer). Exit 3
// means the path does not exist.
const fileProbe = `p=%s
if [ ! -e "$p" ] && [ ! -L "$p" ]; then exit 3; fi
stat -c '%%F|%%a|%%U|%%G|%%s' -- "$p" 2>/dev/null || stat -f '%%HT|%%Lp|%%Su|%%Sg|%%z' -- "$p" || exit 4
if [ -L "$p" ]; then
  readlink "$p"
elif [ -f "$p" ]; then
  h=$({ sha256sum -- "$p" 2>/dev/null || shasum -a 256 -- "$p"; })
  printf '%%s\n' "${h%%%% *}"
fi`

func readFileFact(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	if fi, _, ok := h.nativeStat(ctx, ctl, args[0], false); ok {
		return fi.value(), nil
	}
	fi, _, err := h.statPath(ctx, ctl, args[0], "")
	if err != nil {
		return nil, err
	}
	return fi.value(), nil
}

// followProbe goes in the file probe of a write that follows links (the
// before of statPath): while $p is a symbolic link it follows it, then
// resolves the directory of where it ended, and prints "target PATH" before
// the probe of that path. Exit 5: a loop; 6: that directory is missing.
const followProbe = `n=0
while [ -L "$p" ]; do
  n=$((n + 1)); [ "$n" -le 40 ] || { echo "too many levels of symbolic links" >&2; exit 5; }
  l=$(readlink -- "$p") || exit 4
  case $l in /*) p=$l ;; *) p=${p%/*}/$l ;; esac
done
if [ "$n" -gt 0 ]; then
  d=$(cd -P -- "${p%/*}/" 2>/dev/null && pwd -P) || { echo "the directory of its target $p does not exist" >&2; exit 6; }
  p=${d%/}/${p##*/}
  printf 'target %s\n' "$p"
fi
`

// statPath reads the file fact of p, uncached, and returns the path the
// probe described: p, or where p's links lead when before follows them
// (followProbe). The script before, if any, runs first in the same command
// (it must not print but "target PATH", nor exit but as followProbe does),
// after the line "p=PATH" that the probe starts with.
func (h *Host) statPath(ctx context.Context, ctl Control, p, before string) (fileInfo, string, error) {
	head := "p=" + connectors.Quote(p) + "\n"
	rest := strings.TrimPrefix(fmt.Sprintf(fileProbe, connectors.Quote(p)), head)
	res, err := h.run(ctx, head+before+rest, ctl, "")
	if err != nil {
		return fileInfo{}, "", err
	}
	final, out := p, string(res.Stdout)
	if t, ok := strings.CutPrefix(out, "target "); ok {
		final, out, _ = strings.Cut(t, "\n")
	}
	switch res.ExitCode {
	case 0:
	case 3:
		return fileInfo{}, final, nil
	case 5, 6:
		return fileInfo{}, "", fmt.Errorf("follow the link %s: %s; pass follow=False to replace the link", p, connectors.LastLine(res.Stderr))
	default:
		return fileInfo{}, "", &connectors.ExitError{Target: h.Name, Script: "stat " + p, Result: res}
	}
	fi, err := parseStat(final, out)
	return fi, final, err
}

// nativeStat is statPath (with followProbe when follow) on a
// connectors.Native host, and false when the shell must answer: the native
// stat failed, or found what the probe's output would not carry as it is
// (a '|' or a newline in a name). A link's target is cut as parseStat cuts
// readlink's output: trailing white space off, the first line kept.
func (h *Host) nativeStat(ctx context.Context, ctl Control, p string, follow bool) (fileInfo, string, bool) {
	n, ok := h.native(ctx, ctl)
	if !ok {
		return fileInfo{}, "", false
	}
	var st connectors.FileStat
	var sum string
	var err error
	sh, hashes := n.(connectors.NativeStatHash)
	if hashes {
		h.traceNative(ctl, "stat+sha256 "+connectors.Quote(p))
		st, sum, err = sh.StatHash(ctx, p, follow)
	} else {
		h.traceNative(ctl, "stat "+connectors.Quote(p))
		st, err = n.Stat(ctx, p, follow)
	}
	if err != nil || strings.ContainsAny(st.Owner+st.Group, "|\n") || strings.Contains(st.Path, "\n") {
		return fileInfo{}, "", false
	}
	if !st.Exists {
		return fileInfo{}, st.Path, true
	}
	fi := fileInfo{Exists: true, Type: st.Type, Mode: st.Mode, Owner: st.Owner, Group: st.Group, Size: st.Size}
	if st.Type == "file" {
		if !hashes {
			h.traceNative(ctl, "sha256 "+connectors.Quote(st.Path))
			if sum, err = n.SHA256(ctx, st.Path); err != nil {
				return fileInfo{}, "", false
			}
		}
		fi.SHA256 = sum
	}
	if st.Type == "link" {
		fi.Target, _, _ = strings.Cut(strings.TrimRightFunc(st.Target, unicode.IsSpace), "\n")
	}
	return fi, st.Path, true
}

// parseStat parses the output of fileProbe about p.
func parseStat(p, out string) (fileInfo, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	parts := strings.Split(lines[0], "|")
	if len(parts) != 5 {
		return fileInfo{}, fmt.Errorf("stat %s: unexpected output %q", p, lines[0])
	}
	mode, err1 := strconv.ParseUint(parts[1], 8, 32)
	size, err2 := strconv.ParseInt(parts[4], 10, 64)
	if err1 != nil || err2 != nil {
		return fileInfo{}, fmt.Errorf("stat %s: unexpected output %q", p, lines[0])
	}
	fi := fileInfo{Exists: true, Mode: fs.FileMode(mode), Owner: parts[2], Group: parts[3], Size: size}
	switch t := strings.ToLower(parts[0]); {
	case strings.Contains(t, "regular"):
		fi.Type = "file"
	case strings.Contains(t, "directory"):
		fi.Type = "directory"
	case strings.Contains(t, "symbolic"):
		fi.Type = "link"
	default:
		fi.Type = "other"
	}
	if fi.Type == "file" && len(lines) > 1 {
		fi.SHA256 = strings.TrimSpace(lines[1])
	}
	if fi.Type == "link" && len(lines) > 1 {
		fi.Target = lines[1]
	}
	return fi, nil
}

// file returns the cached file fact of p as read with ctl's privileges.
func (h *Host) file(ctx context.Context, ctl Control, p string) (fileInfo, error) {
	v, err := h.readFact(ctx, factDef{Name: "file", read: readFileFact}, ctl, []string{p})
	if err != nil {
		return fileInfo{}, err
	}
	return fileInfoFrom(v), nil
}

func (fi fileInfo) value() starlark.Value {
	d := starlark.StringDict{
		"exists": starlark.Bool(fi.Exists),
		"type":   starlark.None,
		"mode":   starlark.None,
		"owner":  starlark.None,
		"group":  starlark.None,
		"size":   starlark.None,
		"sha256": starlark.None,
		"target": starlark.None,
	}
	if fi.Exists {
		d["type"] = starlark.String(fi.Type)
		d["mode"] = starlark.String(formatMode(fi.Mode))
		d["owner"] = starlark.String(fi.Owner)
		d["group"] = starlark.String(fi.Group)
		d["size"] = starlark.MakeInt64(fi.Size)
		if fi.SHA256 != "" {
			d["sha256"] = starlark.String(fi.SHA256)
		}
		if fi.Target != "" {
			d["target"] = starlark.String(fi.Target)
		}
	}
	return starlarkstruct.FromStringDict(starlark.String("file"), d)
}

func fileInfoFrom(v starlark.Value) fileInfo {
	s := v.(*starlarkstruct.Struct)
	str := func(name string) string {
		a, _ := s.Attr(name)
		if x, ok := a.(starlark.String); ok {
			return string(x)
		}
		return ""
	}
	ex, _ := s.Attr("exists")
	fi := fileInfo{Exists: bool(ex.(starlark.Bool)), Type: str("type"), Owner: str("owner"), Group: str("group"), SHA256: str("sha256"), Target: str("target")}
	if m, err := strconv.ParseUint(str("mode"), 8, 32); err == nil {
		fi.Mode = fs.FileMode(m)
	}
	if sz, _ := s.Attr("size"); sz != nil {
		if n, ok := sz.(starlark.Int); ok {
			fi.Size, _ = n.Int64()
		}
	}
	return fi
}
