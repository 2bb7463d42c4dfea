package builtins

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// pkgsysFacts are the facts behind the package-manager operations beyond
// the installed packages: apt's sources and keys, rpm's repositories and
// keys, the package inside a .deb or .rpm file, and pacman's packages.
func pkgsysFacts() []factDef {
	return []factDef{
		{Name: "apt_sources", Doc: "The apt sources of /etc/apt/sources.list and /etc/apt/sources.list.d (`*.list` one-line files and `*.sources` deb822 files), as a list of structs, one per type, URI and suite: `.type` (`deb`, `deb-src`), `.url`, `.distribution` (the suite), `.components` (a list), `.options` (a dict: `signed-by`, `arch`, `trusted`, ...; deb822 field names are given their one-line names, `Architectures` as `arch`), `.enabled` (False for a deb822 stanza with `Enabled: no`) and `.file`. Commented-out lines are not sources.",
			Example: `for s in fact("apt_sources"):
    if "ppa.launchpadcontent.net" in s.url:
        print(s.file, s.url, s.distribution)`, read: readAptSources},
		{Name: "apt_keys", Doc: "The OpenPGP keys apt trusts or may be told to (`signed-by`): those in /etc/apt/trusted.gpg, /etc/apt/trusted.gpg.d and /etc/apt/keyrings, binary or ASCII-armored, parsed in Go (gpg need not be on the host). A dict from the primary key's long key ID (16 upper-case hex digits, as `gpg --list-keys --keyid-format long` shows) to a struct with `.fingerprint` (upper-case hex), `.uids` (the user IDs), `.subkeys` (their key IDs), `.created` (Unix time) and `.file` (the keyring that holds it). Version 3 keys are left out.",
			Example: `keys = fact("apt_keys")
if not any([k.fingerprint.endswith("6ED0E7B82643E131") for k in keys.values()]):
    print("no Debian archive key")`, read: readAptKeys},
		{Name: "deb_package", Args: []string{"path"}, Doc: "The package inside the .deb file at path (on the host), from `dpkg-deb -f`: a struct with `.name`, `.version` and `.architecture`; None when there is no such file.",
			Example: `d = fact("deb_package", "/tmp/app_1.0_all.deb")
if d != None and fact("packages").get(d.name) == d.version:
    print("installed")`, read: readDebPackage},
		{Name: "rpm_package", Args: []string{"path"}, Doc: "The package inside the .rpm file at path (on the host), from `rpm -qp`: a struct with `.name`, `.version` (VERSION-RELEASE, as the `packages` fact has it), `.epoch` (None when it has none) and `.arch`; None when there is no such file.",
			Example: `r = fact("rpm_package", "/tmp/epel-release-latest-9.noarch.rpm")
if r != None:
    print(r.name, r.version)`, read: readRpmPackage},
		{Name: "rpm_repos", Doc: "The repositories of the `.repo` files in /etc/yum.repos.d (dnf, yum) and /etc/zypp/repos.d (zypper), as a dict from the repository ID (the `[section]`) to a struct with `.name`, `.baseurl` (None when absent; several URLs are joined with spaces), `.enabled` (True unless `enabled=0`), `.gpgcheck` (None when the file does not say), `.gpgkey` (or None), `.options` (every key of the section, as strings) and `.file`.",
			Example: `repos = fact("rpm_repos")
if "epel" in repos and repos["epel"].enabled:
    print("EPEL is on")`, read: readRpmRepos},
		{Name: "rpm_keys", Doc: "The OpenPGP keys imported into the rpm database (`rpm --import`), each a `gpg-pubkey` pseudo-package: a dict from its version, the key ID in lower-case hex (the short, 8-digit one, or the whole fingerprint with rpm 6), to a struct with `.release` (the key's creation time in hex) and `.summary` (`Fedora (40) <fedora-40-primary@fedoraproject.org> public key`). Empty where rpm is missing or holds no key.",
			Example: `if not any([k.endswith("a15b79cc") for k in fact("rpm_keys")]):
    print("the Fedora 40 key is not imported")`, read: readRpmKeys},
		{Name: "pacman_packages", Doc: "The packages pacman has installed (Arch Linux, Manjaro), from `pacman -Q`: a dict from name to version (`6.0.2-3`, with the epoch as `1:` when there is one). Empty where pacman is missing.",
			Example: `if "nginx" not in fact("pacman_packages"):
    print("no nginx")`, read: readPacmanPackages},
	}
}

// filesProbe prints "==> PATH" and then the file of each glob that is a
// regular file, base64-encoded when encode is set.
func filesProbe(encode bool, globs ...string) string {
	cat := `cat -- "$f"; echo`
	if encode {
		cat = `base64 <"$f"`
	}
	return `for f in ` + strings.Join(globs, " ") + `; do
  [ -f "$f" ] || continue
  printf '==> %s\n' "$f"; ` + cat + `
done`
}

// splitFiles splits filesProbe's output into the files, in order.
func splitFiles(out string) (names, bodies []string) {
	var bs []*strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		if name, ok := strings.CutPrefix(line, "==> "); ok {
			names = append(names, strings.TrimRight(name, "\r\n"))
			bs = append(bs, &strings.Builder{})
			continue
		}
		if len(bs) > 0 {
			bs[len(bs)-1].WriteString(line)
		}
	}
	for _, b := range bs {
		bodies = append(bodies, b.String())
	}
	return names, bodies
}

const aptSourcesProbe = "/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources"

func readAptSources(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, filesProbe(false, strings.Fields(aptSourcesProbe)...))
	if err != nil {
		return nil, err
	}
	return valueList(parseAptSources(out)), nil
}

// aptSource is one source: one type, URI and suite.
type aptSource struct {
	Type, URL, Distribution string
	Components              []string
	Options                 map[string]string
	Enabled                 bool
	File                    string
}

func (s aptSource) value() starlark.Value {
	return newStruct("apt_source", starlark.StringDict{
		"type":         starlark.String(s.Type),
		"url":          starlark.String(s.URL),
		"distribution": starlark.String(s.Distribution),
		"components":   strList(s.Components),
		"options":      stringDict(s.Options),
		"enabled":      starlark.Bool(s.Enabled),
		"file":         starlark.String(s.File),
	})
}

// parseAptSources parses the output of the apt_sources probe.
func parseAptSources(out string) []aptSource {
	var srcs []aptSource
	names, bodies := splitFiles(out)
	for i, name := range names {
		if strings.HasSuffix(name, ".sources") {
			srcs = append(srcs, parseDeb822Sources(name, bodies[i])...)
			continue
		}
		for _, line := range strings.Split(bodies[i], "\n") {
			if s, ok := parseSourceLine(name, line); ok {
				srcs = append(srcs, s)
			}
		}
	}
	return srcs
}

// parseSourceLine parses one line of the one-line format,
// `deb [opt=val ...] URI SUITE [COMPONENT...]` (sources.list(5)).
func parseSourceLine(file, line string) (aptSource, bool) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimSpace(line)
	typ, rest, _ := strings.Cut(line, " ")
	if typ != "deb" && typ != "deb-src" {
		if t, r, ok := strings.Cut(line, "\t"); ok && (t == "deb" || t == "deb-src") {
			typ, rest = t, r
		} else {
			return aptSource{}, false
		}
	}
	rest = strings.TrimSpace(rest)
	opts := map[string]string{}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return aptSource{}, false
		}
		for _, o := range strings.Fields(rest[1:end]) {
			k, v, _ := strings.Cut(o, "=")
			opts[k] = v
		}
		rest = rest[end+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 2 {
		return aptSource{}, false
	}
	return aptSource{Type: typ, URL: f[0], Distribution: f[1], Components: append([]string{}, f[2:]...), Options: opts, Enabled: true, File: file}, true
}

// deb822Options names the deb822 fields whose one-line option name is not
// their name in lower case (sources.list(5)).
var deb822Options = map[string]string{"architectures": "arch", "languages": "lang", "targets": "target"}

// parseDeb822Sources parses a .sources file: stanzas of fields, separated
// by blank lines; a field continues on lines that start with a space.
func parseDeb822Sources(file, body string) []aptSource {
	var srcs []aptSource
	var stanzas []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			stanzas = append(stanzas, cur)
		}
		cur, last = map[string]string{}, ""
	}
	for _, line := range strings.Split(body, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			cur[last] = strings.TrimSpace(v)
		}
	}
	flush()
	for _, st := range stanzas {
		opts := map[string]string{}
		for k, v := range st {
			switch k {
			case "types", "uris", "suites", "components", "enabled":
				continue
			}
			if n, ok := deb822Options[k]; ok {
				k = n
			}
			opts[k] = strings.TrimPrefix(v, "\n")
		}
		enabled := !strings.EqualFold(st["enabled"], "no")
		comps := strings.Fields(st["components"])
		for _, typ := range strings.Fields(st["types"]) {
			for _, uri := range strings.Fields(st["uris"]) {
				for _, suite := range strings.Fields(st["suites"]) {
					srcs = append(srcs, aptSource{Type: typ, URL: uri, Distribution: suite, Components: append([]string{}, comps...), Options: opts, Enabled: enabled, File: file})
				}
			}
		}
	}
	return srcs
}

const aptKeysProbe = "/etc/apt/trusted.gpg /etc/apt/trusted.gpg.d/* /etc/apt/keyrings/*"

func readAptKeys(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, filesProbe(true, strings.Fields(aptKeysProbe)...))
	if err != nil {
		return nil, err
	}
	keys, err := parseAptKeys(out)
	if err != nil {
		return nil, err
	}
	return keyedDict(keys, func(k pgpKey) string { return k.KeyID }), nil
}

// pgpKey is a primary OpenPGP public key of a keyring.
type pgpKey struct {
	KeyID, Fingerprint string
	UIDs, Subkeys      []string
	Created            int64
	File               string
}

func (k pgpKey) value() starlark.Value {
	return newStruct("apt_key", starlark.StringDict{
		"fingerprint": starlark.String(k.Fingerprint),
		"uids":        strList(k.UIDs),
		"subkeys":     strList(k.Subkeys),
		"created":     starlark.MakeInt64(k.Created),
		"file":        starlark.String(k.File),
	})
}

// parseAptKeys decodes the apt_keys probe's base64 files and parses their
// keys, sorted by key ID. A file that is no keyring is passed over.
func parseAptKeys(out string) ([]pgpKey, error) {
	var keys []pgpKey
	names, bodies := splitFiles(out)
	for i, name := range names {
		data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(bodies[i]), ""))
		if err != nil {
			return nil, fmt.Errorf("%s: the probe's base64 does not decode: %w", name, err)
		}
		for _, k := range parseKeyring(data) {
			k.File = name
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].KeyID < keys[j].KeyID })
	return keys, nil
}

// parseKeyring parses the public keys of a binary or ASCII-armored keyring
// (RFC 4880, RFC 9580): each primary key (tag 6) with the user IDs (tag 13)
// and subkeys (tag 14) that follow it. It stops at the first packet it
// cannot frame and keeps what it read.
func parseKeyring(data []byte) []pgpKey {
	if bytes.Contains(data, []byte("-----BEGIN PGP ")) {
		var all []pgpKey
		for _, block := range dearmor(data) {
			all = append(all, parseKeyring(block)...)
		}
		return all
	}
	var keys []pgpKey
	for len(data) > 0 {
		tag, body, rest, ok := nextPacket(data)
		if !ok {
			break
		}
		data = rest
		switch tag {
		case 6:
			id, fpr, created, ok := keyIdentity(body)
			if !ok {
				keys = append(keys, pgpKey{}) // a v3 key: its uids and subkeys are dropped with it
				continue
			}
			keys = append(keys, pgpKey{KeyID: id, Fingerprint: fpr, Created: created, UIDs: []string{}, Subkeys: []string{}})
		case 13:
			if n := len(keys); n > 0 {
				keys[n-1].UIDs = append(keys[n-1].UIDs, string(body))
			}
		case 14:
			if id, _, _, ok := keyIdentity(body); ok && len(keys) > 0 {
				keys[len(keys)-1].Subkeys = append(keys[len(keys)-1].Subkeys, id)
			}
		}
	}
	out := keys[:0]
	for _, k := range keys {
		if k.KeyID != "" {
			out = append(out, k)
		}
	}
	return out
}

// nextPacket frames the first packet of data, in the old or the new
// format. Partial body lengths (only data packets use them) are not framed.
func nextPacket(data []byte) (tag int, body, rest []byte, ok bool) {
	if len(data) < 2 || data[0]&0x80 == 0 {
		return 0, nil, nil, false
	}
	var n, hdr int
	if data[0]&0x40 == 0 { // old format
		tag = int(data[0]>>2) & 0x0f
		switch data[0] & 3 {
		case 0:
			n, hdr = int(data[1]), 2
		case 1:
			if len(data) < 3 {
				return 0, nil, nil, false
			}
			n, hdr = int(binary.BigEndian.Uint16(data[1:3])), 3
		case 2:
			if len(data) < 5 {
				return 0, nil, nil, false
			}
			n, hdr = int(binary.BigEndian.Uint32(data[1:5])), 5
		default:
			n, hdr = len(data)-1, 1
		}
	} else {
		tag = int(data[0] & 0x3f)
		switch o := data[1]; {
		case o < 192:
			n, hdr = int(o), 2
		case o < 224:
			if len(data) < 3 {
				return 0, nil, nil, false
			}
			n, hdr = (int(o)-192)<<8+int(data[2])+192, 3
		case o == 255:
			if len(data) < 6 {
				return 0, nil, nil, false
			}
			n, hdr = int(binary.BigEndian.Uint32(data[2:6])), 6
		default:
			return 0, nil, nil, false
		}
	}
	if n < 0 || hdr+n > len(data) {
		return 0, nil, nil, false
	}
	return tag, data[hdr : hdr+n], data[hdr+n:], true
}

// keyIdentity computes the long key ID and fingerprint of a public key
// packet's body: SHA-1 for version 4 keys, SHA-256 for versions 5 and 6.
func keyIdentity(body []byte) (id, fpr string, created int64, ok bool) {
	if len(body) < 6 {
		return "", "", 0, false
	}
	created = int64(binary.BigEndian.Uint32(body[1:5]))
	var sum []byte
	switch body[0] {
	case 4:
		h := sha1.New()
		h.Write([]byte{0x99, byte(len(body) >> 8), byte(len(body))})
		h.Write(body)
		sum = h.Sum(nil)
		id = strings.ToUpper(hex.EncodeToString(sum[len(sum)-8:]))
	case 5, 6:
		h := sha256.New()
		prefix := byte(0x9a)
		if body[0] == 6 {
			prefix = 0x9b
		}
		h.Write([]byte{prefix})
		_ = binary.Write(h, binary.BigEndian, uint32(len(body)))
		h.Write(body)
		sum = h.Sum(nil)
		id = strings.ToUpper(hex.EncodeToString(sum[:8]))
	default:
		return "", "", 0, false
	}
	return id, strings.ToUpper(hex.EncodeToString(sum)), created, true
}

// dearmor returns the binary contents of each ASCII-armored block in data:
// the base64 lines after the headers' blank line, up to the checksum line.
func dearmor(data []byte) [][]byte {
	var out [][]byte
	lines := strings.Split(strings.ReplaceAll(string(data), "\r", ""), "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "-----BEGIN PGP ") {
			continue
		}
		i++
		for i < len(lines) && strings.TrimSpace(lines[i]) != "" && strings.Contains(lines[i], ": ") {
			i++ // armor headers (Version: ..., Comment: ...)
		}
		var b64 strings.Builder
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "-----END PGP "); i++ {
			l := strings.TrimSpace(lines[i])
			if strings.HasPrefix(l, "=") && len(l) == 5 {
				continue // the CRC-24 checksum
			}
			b64.WriteString(l)
		}
		if raw, err := base64.StdEncoding.DecodeString(b64.String()); err == nil {
			out = append(out, raw)
		}
	}
	return out
}

func readDebPackage(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	p := connectors.Quote(args[0])
	out, found, err := h.probeFound(ctx, ctl, "[ -f "+p+" ] || exit 3; dpkg-deb -f "+p+" Package Version Architecture", exitedf("dpkg-deb -f %s exited with status %d: is it a .deb file, and is dpkg-deb on the host?", args[0]))
	if !found {
		return starlark.None, err
	}
	f := parseControlFields(out)
	if f["Package"] == "" || f["Version"] == "" {
		return nil, fmt.Errorf("%s: dpkg-deb printed no Package or Version: %q", args[0], out)
	}
	return newStruct("deb_package", starlark.StringDict{
		"name":         starlark.String(f["Package"]),
		"version":      starlark.String(f["Version"]),
		"architecture": starlark.String(f["Architecture"]),
	}), nil
}

// parseControlFields parses "Field: value" lines of a Debian control file.
func parseControlFields(out string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			f[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return f
}

func readRpmPackage(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	p := connectors.Quote(args[0])
	out, found, err := h.probeFound(ctx, ctl, "[ -f "+p+" ] || exit 3; rpm -qp --nosignature --qf '%{NAME}|%{EPOCH}|%{VERSION}-%{RELEASE}|%{ARCH}\\n' -- "+p, exitedf("rpm -qp %s exited with status %d: is it an .rpm file, and is rpm on the host?", args[0]))
	if !found {
		return starlark.None, err
	}
	r, ok := parseRpmQuery(out)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected output of rpm -qp: %q", args[0], out)
	}
	return r, nil
}

// parseRpmQuery parses NAME|EPOCH|VERSION-RELEASE|ARCH; rpm prints the
// epoch of a package that has none as "(none)".
func parseRpmQuery(out string) (starlark.Value, bool) {
	f := strings.Split(strings.TrimSpace(strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]), "|")
	if len(f) != 4 || f[0] == "" {
		return nil, false
	}
	var epoch starlark.Value = starlark.None
	if f[1] != "(none)" && f[1] != "" {
		epoch = starlark.String(f[1])
	}
	return newStruct("rpm_package", starlark.StringDict{
		"name":    starlark.String(f[0]),
		"epoch":   epoch,
		"version": starlark.String(f[2]),
		"arch":    starlark.String(f[3]),
	}), true
}

const rpmReposProbe = "/etc/yum.repos.d/*.repo /etc/zypp/repos.d/*.repo"

func readRpmRepos(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, filesProbe(false, strings.Fields(rpmReposProbe)...))
	if err != nil {
		return nil, err
	}
	return keyedDict(parseRpmRepos(out), func(r rpmRepo) string { return r.ID }), nil
}

// rpmRepo is one [section] of a .repo file.
type rpmRepo struct {
	ID, File string
	Options  map[string]string
}

func (r rpmRepo) value() starlark.Value {
	opt := func(k string) starlark.Value {
		if v, ok := r.Options[k]; ok {
			return starlark.String(v)
		}
		return starlark.None
	}
	var gpgcheck starlark.Value = starlark.None
	if v, ok := r.Options["gpgcheck"]; ok {
		gpgcheck = starlark.Bool(iniTrue(v))
	}
	enabled := true
	if v, ok := r.Options["enabled"]; ok {
		enabled = iniTrue(v)
	}
	return newStruct("rpm_repo", starlark.StringDict{
		"name":     opt("name"),
		"baseurl":  opt("baseurl"),
		"enabled":  starlark.Bool(enabled),
		"gpgcheck": gpgcheck,
		"gpgkey":   opt("gpgkey"),
		"options":  stringDict(r.Options),
		"file":     starlark.String(r.File),
	})
}

// iniTrue reads a dnf.conf(5) boolean: 1, yes, true, on.
func iniTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// parseRpmRepos parses .repo files (INI, dnf.conf(5)): `[id]` sections of
// `key=value` lines; a line that starts with whitespace continues the
// value before it (several baseurls), joined with a space. A later
// section of the same ID replaces an earlier one.
func parseRpmRepos(out string) []rpmRepo {
	byID := map[string]int{}
	var repos []rpmRepo
	names, bodies := splitFiles(out)
	for i, name := range names {
		cur, last := -1, ""
		for _, line := range strings.Split(bodies[i], "\n") {
			t := strings.TrimSpace(line)
			switch {
			case t == "" || t[0] == '#' || t[0] == ';':
				last = ""
			case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]"):
				id := strings.TrimSpace(t[1 : len(t)-1])
				r := rpmRepo{ID: id, File: name, Options: map[string]string{}}
				if j, dup := byID[id]; dup {
					repos[j] = r
					cur = j
				} else {
					byID[id] = len(repos)
					cur = len(repos)
					repos = append(repos, r)
				}
				last = ""
			case cur < 0:
			case (line[0] == ' ' || line[0] == '\t') && last != "":
				repos[cur].Options[last] += " " + t
			default:
				k, v, ok := strings.Cut(t, "=")
				if !ok {
					continue
				}
				last = strings.TrimSpace(k)
				repos[cur].Options[last] = strings.TrimSpace(v)
			}
		}
	}
	return repos
}

func readRpmKeys(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, `command -v rpm >/dev/null 2>&1 || exit 0; rpm -q gpg-pubkey --qf '%{VERSION}|%{RELEASE}|%{SUMMARY}\n' 2>/dev/null || true`)
	if err != nil {
		return nil, err
	}
	return structDict(parseRpmKeys(out), func(k [2]string) starlark.Value {
		return newStruct("rpm_key", starlark.StringDict{
			"release": starlark.String(k[0]),
			"summary": starlark.String(k[1]),
		})
	}), nil
}

// parseRpmKeys parses VERSION|RELEASE|SUMMARY lines of the gpg-pubkey
// packages; "package gpg-pubkey is not installed" is no key.
func parseRpmKeys(out string) map[string][2]string {
	keys := map[string][2]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(strings.TrimSpace(line), "|", 3)
		if len(f) != 3 || !isHex(f[0]) {
			continue
		}
		keys[strings.ToLower(f[0])] = [2]string{f[1], f[2]}
	}
	return keys
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	_, err := hex.DecodeString(strings.Repeat("0", len(s)%2) + s)
	return err == nil
}

func readPacmanPackages(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	// pacman -Q exits 1, printing nothing, when no package is installed.
	out, err := h.probe(ctx, ctl, `command -v pacman >/dev/null 2>&1 || exit 0; out=$(pacman -Q); s=$?
if [ $s != 0 ] && { [ $s != 1 ] || [ -n "$out" ]; }; then exit $s; fi
printf '%s\n' "$out"`)
	if err != nil {
		return nil, err
	}
	return stringDict(parsePacmanQ(out)), nil
}

// parsePacmanQ parses `pacman -Q`: "NAME VERSION" lines.
func parsePacmanQ(out string) map[string]string {
	pkgs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			pkgs[f[0]] = f[1]
		}
	}
	return pkgs
}
