package builtins

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// systemFacts are the facts behind the stdlib operations: accounts,
// packages, services, git checkouts, mounts, kernel parameters and file
// contents. Each reads with one command and parses in Go, so a probe is one
// round trip.
func systemFacts() []factDef {
	return []factDef{
		{Name: "users", Doc: "The accounts of `getent passwd` as a dict from name to a struct with `.uid`, `.gid`, `.group` (primary group name), `.groups` (supplementary group names, sorted), `.home`, `.shell` and `.comment`.",
			Example: `if "app" not in fact("users"):
    print("no app user yet")`, read: readUsers},
		{Name: "groups", Doc: "The groups of `getent group` as a dict from name to a struct with `.gid` and `.members` (a list of user names).",
			Example: `print(fact("groups")["sudo"].members)`, read: readGroups},
		{Name: "packages", Doc: "The installed packages as a dict from name to version, read from the host's package database: dpkg (Debian, Ubuntu), rpm (Fedora, RHEL) or apk (Alpine); empty when there is none.",
			Example: `if "nginx" in fact("packages"):
    print("nginx", fact("packages")["nginx"])`, read: readPackages},
		{Name: "package_manager", Doc: "The package manager the host has: `apt`, `dnf`, `yum`, `apk`, or None.",
			Example: `print(fact("package_manager"))`, read: readPackageManager},
		{Name: "init_system", Doc: "The service manager the host runs: `systemd` (when systemd is PID 1), `openrc`, `sysvinit` (`service`/`/etc/init.d`), or None.",
			Example: `if fact("init_system") == "systemd":
    print("systemd host")`, read: readInitSystem},
		{Name: "systemd_unit", Args: []string{"unit"}, Doc: "The state of a systemd unit from `systemctl show`: a struct with `.load_state` (`loaded`, `not-found`), `.active_state` (`active`, `inactive`, `failed`, ...), `.sub_state`, `.unit_file_state` (`enabled`, `disabled`, `static`, ...), and the booleans `.exists`, `.active` and `.enabled`. A bare name means NAME.service.",
			Example: `u = fact("systemd_unit", "nginx")
print(u.active, u.enabled)`, read: readSystemdUnit},
		{Name: "git", Args: []string{"path"}, Doc: "The git checkout at path: a struct with `.commit` (HEAD's full hash), `.branch` (None when detached) and `.remote` (origin's URL, or None); None when path is not a git work tree.",
			Example: `g = fact("git", "/srv/app")
if g != None:
    print(g.commit)`, read: readGit},
		{Name: "mounts", Doc: "The mounted file systems from /proc/mounts as a dict from mount point to a struct with `.device`, `.type` and `.options` (a list).",
			Example: `if "/data" not in fact("mounts"):
    print("/data is not mounted")`, read: readMounts},
		{Name: "sysctl", Args: []string{"key"}, Doc: "The value of a kernel parameter (`net.ipv4.ip_forward`) as `sysctl -n` prints it, with runs of whitespace made single spaces; None when the key does not exist.",
			Example: `if fact("sysctl", "net.ipv4.ip_forward") != "1":
    print("forwarding is off")`, read: readSysctl},
		{Name: "content", Args: []string{"path"}, Doc: "The content of the file at path as a string, or None when it does not exist. Meant for configuration files: the whole file is read.",
			Example: `text = fact("content", "/etc/hostname")
print(text.strip() if text else "no hostname file")`, read: readContent},
		{Name: "sha256", Args: []string{"path"}, Doc: "The SHA-256 of the file at path (hex), or None when it does not exist or is not a regular file.",
			Example: `if fact("sha256", "/usr/local/bin/app") != "9f86d0...":
    print("app differs")`, read: readSHA256},
		{Name: "tree", Args: []string{"path"}, Doc: "The entries under the directory path, recursively, as a dict from the path relative to it (`conf/app.ini`) to its type (`file`, `directory`, `link`, `other`); None when path is not a directory. Names with a newline are not supported.",
			Example: `for p, typ in fact("tree", "/srv/site").items():
    print(p, typ)`, read: readTree},
		{Name: "crontab", Args: []string{"user"}, Doc: "The crontab of user as `crontab -l` prints it, or \"\" when the user has none.",
			Example: `print(fact("crontab", "root"))`, read: readCrontab},
	}
}

// account is one line of passwd.
type account struct {
	name, comment, home, shell string
	uid, gid                   int
}

// group is one line of the group database.
type group struct {
	name    string
	gid     int
	members []string
}

const accountsProbe = `{ getent passwd 2>/dev/null || cat /etc/passwd; } && echo '--' && { getent group 2>/dev/null || cat /etc/group; }`

// accountsFact caches the raw account databases, so that the users and
// groups facts (server.user reads both) cost one round trip together.
var accountsFact = factDef{Name: "accounts", read: func(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, accountsProbe)
	return starlark.String(out), err
}}

func readAccounts(ctx context.Context, h *Host, ctl Control) ([]account, []group, error) {
	v, err := h.readFact(ctx, accountsFact, ctl, nil)
	if err != nil {
		return nil, nil, err
	}
	passwd, groupText, _ := strings.Cut(string(v.(starlark.String)), "--\n")
	return parsePasswd(passwd), parseGroup(groupText), nil
}

// colonRecord is one line of a colon-separated database: its fields, and
// the numbers colonRecords parsed from some of them.
type colonRecord struct {
	fields []string
	nums   []int
}

// colonRecords splits a colon-separated database (passwd, group) into its
// lines, keeping those with at least n fields whose fields at the indexes
// numeric are whole numbers; the rest are not records and are passed over.
func colonRecords(s string, n int, numeric ...int) []colonRecord {
	var out []colonRecord
lines:
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, ":")
		if len(f) < n {
			continue
		}
		r := colonRecord{fields: f, nums: make([]int, len(numeric))}
		for i, k := range numeric {
			v, err := strconv.Atoi(f[k])
			if err != nil {
				continue lines
			}
			r.nums[i] = v
		}
		out = append(out, r)
	}
	return out
}

func parsePasswd(s string) []account {
	var out []account
	for _, r := range colonRecords(s, 7, 2, 3) {
		f := r.fields
		out = append(out, account{name: f[0], uid: r.nums[0], gid: r.nums[1], comment: f[4], home: f[5], shell: f[6]})
	}
	return out
}

func parseGroup(s string) []group {
	var out []group
	for _, r := range colonRecords(s, 4, 2) {
		g := group{name: r.fields[0], gid: r.nums[0], members: []string{}}
		for _, m := range strings.Split(r.fields[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.members = append(g.members, m)
			}
		}
		out = append(out, g)
	}
	return out
}

func readUsers(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	accounts, groups, err := readAccounts(ctx, h, ctl)
	if err != nil {
		return nil, err
	}
	byGID := map[int]string{}
	supp := map[string][]string{}
	for _, g := range groups {
		if _, dup := byGID[g.gid]; !dup {
			byGID[g.gid] = g.name
		}
		for _, m := range g.members {
			supp[m] = append(supp[m], g.name)
		}
	}
	d := starlark.NewDict(len(accounts))
	for _, a := range accounts {
		gs := supp[a.name]
		sort.Strings(gs)
		var primary starlark.Value = starlark.None
		if n, ok := byGID[a.gid]; ok {
			primary = starlark.String(n)
		}
		_ = d.SetKey(starlark.String(a.name), newStruct("user", starlark.StringDict{
			"uid":     starlark.MakeInt(a.uid),
			"gid":     starlark.MakeInt(a.gid),
			"group":   primary,
			"groups":  strList(gs),
			"home":    starlark.String(a.home),
			"shell":   starlark.String(a.shell),
			"comment": starlark.String(a.comment),
		}))
	}
	return d, nil
}

func readGroups(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	_, groups, err := readAccounts(ctx, h, ctl)
	if err != nil {
		return nil, err
	}
	d := starlark.NewDict(len(groups))
	for _, g := range groups {
		_ = d.SetKey(starlark.String(g.name), newStruct("group", starlark.StringDict{
			"gid":     starlark.MakeInt(g.gid),
			"members": strList(g.members),
		}))
	}
	return d, nil
}

// packagesProbe prints "deb", "rpm" or "apk" and then one package per
// line in that database's format.
const packagesProbe = `if command -v dpkg-query >/dev/null 2>&1; then
  echo deb; dpkg-query -W -f '${db:Status-Abbrev}|${Package}|${Version}\n'
elif command -v rpm >/dev/null 2>&1; then
  echo rpm; rpm -qa --queryformat '%{NAME}|%{VERSION}-%{RELEASE}\n'
elif command -v apk >/dev/null 2>&1; then
  echo apk; apk info -v 2>/dev/null
else
  echo none
fi`

func readPackages(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, packagesProbe)
	if err != nil {
		return nil, err
	}
	return stringDict(parsePackages(out)), nil
}

var apkName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(.+)-([^-]+-r\d+)$`) })

// parsePackages parses packagesProbe's output into name -> version.
func parsePackages(out string) map[string]string {
	kind, rest, _ := strings.Cut(out, "\n")
	pkgs := map[string]string{}
	for _, line := range strings.Split(rest, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		switch strings.TrimSpace(kind) {
		case "deb":
			f := strings.Split(line, "|")
			// Status-Abbrev is the wanted action then the state: "ii"
			// and "hi" (held) are installed; "rc" (removed, its
			// configuration left) is not.
			if len(f) == 3 && len(f[0]) >= 2 && f[0][1] == 'i' {
				pkgs[f[1]] = f[2]
			}
		case "rpm":
			if n, v, ok := strings.Cut(line, "|"); ok {
				pkgs[n] = v
			}
		case "apk":
			if m := apkName().FindStringSubmatch(line); m != nil {
				pkgs[m[1]] = m[2]
			}
		}
	}
	return pkgs
}

func readPackageManager(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, `for m in apt-get dnf yum apk; do if command -v $m >/dev/null 2>&1; then echo $m; exit 0; fi; done`)
	if err != nil {
		return nil, err
	}
	switch m := strings.TrimSpace(out); m {
	case "":
		return starlark.None, nil
	case "apt-get":
		return starlark.String("apt"), nil
	default:
		return starlark.String(m), nil
	}
}

func readInitSystem(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, `if [ -d /run/systemd/system ]; then echo systemd
elif command -v rc-service >/dev/null 2>&1; then echo openrc
elif command -v service >/dev/null 2>&1 || [ -d /etc/init.d ]; then echo sysvinit
fi`)
	if err != nil {
		return nil, err
	}
	if s := strings.TrimSpace(out); s != "" {
		return starlark.String(s), nil
	}
	return starlark.None, nil
}

// unitName adds .service to a bare unit name, as systemctl does.
func unitName(u string) string {
	if strings.Contains(u, ".") {
		return u
	}
	return u + ".service"
}

func readSystemdUnit(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	out, code, err := h.probeExit(ctx, ctl, "systemctl show --property=LoadState,ActiveState,SubState,UnitFileState -- "+connectors.Quote(unitName(args[0])))
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("systemctl show %s exited with status %d (is systemd running on the host? see fact(\"init_system\"))", args[0], code)
	}
	return ParseSystemdShow(out).value(), nil
}

// SystemdUnit is the part of `systemctl show` that the systemd operations
// decide on.
type SystemdUnit struct {
	LoadState, ActiveState, SubState, UnitFileState string
}

// ParseSystemdShow parses KEY=VALUE lines of `systemctl show`.
func ParseSystemdShow(out string) SystemdUnit {
	var u SystemdUnit
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "LoadState":
			u.LoadState = v
		case "ActiveState":
			u.ActiveState = v
		case "SubState":
			u.SubState = v
		case "UnitFileState":
			u.UnitFileState = v
		}
	}
	return u
}

func (u SystemdUnit) value() starlark.Value {
	return newStruct("systemd_unit", starlark.StringDict{
		"load_state":      starlark.String(u.LoadState),
		"active_state":    starlark.String(u.ActiveState),
		"sub_state":       starlark.String(u.SubState),
		"unit_file_state": starlark.String(u.UnitFileState),
		"exists":          starlark.Bool(u.LoadState != "" && u.LoadState != "not-found"),
		"active":          starlark.Bool(u.ActiveState == "active" || u.ActiveState == "reloading" || u.ActiveState == "activating"),
		"enabled":         starlark.Bool(u.UnitFileState == "enabled" || u.UnitFileState == "enabled-runtime" || u.UnitFileState == "alias"),
	})
}

const gitProbe = `cd %s 2>/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 3
git rev-parse --verify -q HEAD || echo
git symbolic-ref --short -q HEAD || echo
git config --get remote.origin.url || echo`

func readGit(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	out, found, err := h.probeFound(ctx, ctl, fmt.Sprintf(gitProbe, connectors.Quote(args[0])), exitedf("git in %s exited with status %d", args[0]))
	if !found {
		return starlark.None, err
	}
	lines := strings.Split(out, "\n")
	for len(lines) < 3 {
		lines = append(lines, "")
	}
	opt := func(s string) starlark.Value {
		if s = strings.TrimSpace(s); s == "" {
			return starlark.None
		}
		return starlark.String(s)
	}
	return newStruct("git", starlark.StringDict{
		"commit": opt(lines[0]),
		"branch": opt(lines[1]),
		"remote": opt(lines[2]),
	}), nil
}

func readMounts(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, "cat /proc/mounts")
	if err != nil {
		return nil, err
	}
	d := starlark.NewDict(16)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		_ = d.SetKey(starlark.String(unescapeMount(f[1])), newStruct("mount", starlark.StringDict{
			"device":  starlark.String(unescapeMount(f[0])),
			"type":    starlark.String(f[2]),
			"options": strList(strings.Split(f[3], ",")),
		}))
	}
	return d, nil
}

// unescapeMount decodes the octal escapes (\040 for a space) of /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readSysctl(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	key := args[0]
	if !validSysctlKey(key) {
		return nil, fmt.Errorf("sysctl: %q is not a kernel parameter name (letters, digits, '.', '_', '-', '/')", key)
	}
	out, code, err := h.probeExit(ctx, ctl, "cat /proc/sys/"+strings.ReplaceAll(key, ".", "/")+" 2>/dev/null")
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return starlark.None, nil
	}
	return starlark.String(strings.Join(strings.Fields(out), " ")), nil
}

func validSysctlKey(k string) bool {
	if k == "" || strings.Contains(k, "..") {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return false
		}
	}
	return true
}

func readContent(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	if v, ok := nativeContent(ctx, h, ctl, args); ok {
		return v, nil
	}
	p := connectors.Quote(args[0])
	out, found, err := h.probeFound(ctx, ctl, "[ -e "+p+" ] || exit 3; cat -- "+p, exitedf("cannot read %s (cat exited with status %d)", args[0]))
	if !found {
		return starlark.None, err
	}
	return starlark.String(out), nil
}

func readSHA256(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	fi, err := h.file(ctx, ctl, args[0])
	if err != nil || fi.SHA256 == "" {
		return starlark.None, err
	}
	return starlark.String(fi.SHA256), nil
}

func readCrontab(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	out, code, err := h.probeExit(ctx, ctl, "crontab -l -u "+connectors.Quote(args[0])+" 2>/dev/null")
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return starlark.String(""), nil
	}
	return starlark.String(out), nil
}

// treeProbe lists the tree in one pass of find (GNU and busybox), a shell
// naming each batch of entries' types.
const treeProbe = `cd %s 2>/dev/null || exit 3
find . -mindepth 1 -exec sh -c 'for p; do
  if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; else t=other; fi
  printf "%%s %%s\n" "$t" "$p"
done' sh {} +`

func readTree(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	if n, ok := h.native(ctx, ctl); ok {
		h.traceNative(ctl, "tree "+connectors.Quote(args[0]))
		if types, err := n.Tree(ctx, args[0], outputLimit(ctl)); err == nil {
			if types == nil {
				return starlark.None, nil
			}
			return stringDict(types), nil
		}
	}
	out, found, err := h.probeFound(ctx, ctl, fmt.Sprintf(treeProbe, connectors.Quote(args[0])), exitedf("cannot list %s (find exited with status %d)", args[0]))
	if !found {
		return starlark.None, err
	}
	types := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if typ, p, ok := strings.Cut(line, " ./"); ok {
			types[p] = typ
		}
	}
	return stringDict(types), nil
}
