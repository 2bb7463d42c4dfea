package modules

import (
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"strings"
)

// Prefix starts every remote load and every key.
const Prefix = "git+"

// schemes are the git URL schemes a source may use.
var schemes = []string{"https", "http", "ssh", "file"}

// Spec is one parsed remote load, git+URL@REF//PATH.
type Spec struct {
	Source string // git+URL@REF (git+URL when REF is empty): what the lock file pins
	URL    string // the repository: https://host/org/repo, ssh://git@host/org/repo, file:///srv/repo
	Ref    string // a tag, a branch or a commit; "" is the repository's HEAD
	Path   string // the file in the repository, slash-separated, cleaned
}

// Key is the module's key: its Source and Path, git+URL@REF//PATH.
func (s Spec) Key() string { return s.Source + "//" + s.Path }

// Parse parses a remote load, git+URL@REF//PATH. An @ after the URL's
// host starts REF (which may hold slashes: release/2); one before it is
// user information (git@host).
func Parse(name string) (Spec, error) {
	src, p, ok := splitPath(name)
	if !ok {
		return Spec{}, fmt.Errorf("want git+URL@REF//PATH.star, e.g. git+https://git.example.com/ops/modules@v1.4.0//nginx.star")
	}
	s, err := ParseSource(src)
	if err != nil {
		return Spec{}, err
	}
	clean := path.Clean(p)
	if p == "" || strings.HasPrefix(p, "/") || !fs.ValidPath(clean) {
		return Spec{}, fmt.Errorf("//%s: want a path inside the repository, such as //nginx.star", p)
	}
	s.Path = clean
	return s, nil
}

// splitPath splits git+URL@REF//PATH at the // that follows the URL's
// scheme and host.
func splitPath(name string) (source, p string, ok bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return "", "", false
	}
	scheme := strings.Index(rest, "://")
	if scheme < 0 {
		return "", "", false
	}
	i := strings.Index(rest[scheme+3:], "//")
	if i < 0 {
		return "", "", false
	}
	cut := len(Prefix) + scheme + 3 + i
	return name[:cut], name[cut+2:], true
}

// ParseSource parses a source without a path, git+URL@REF, as the config
// file's modules name them.
func ParseSource(source string) (Spec, error) {
	rest, ok := strings.CutPrefix(source, Prefix)
	if !ok {
		return Spec{}, fmt.Errorf("%s: want git+URL@REF, e.g. git+https://git.example.com/ops/modules@v1.4.0", source)
	}
	u, ref := rest, ""
	if scheme := strings.Index(rest, "://"); scheme >= 0 {
		if slash := strings.Index(rest[scheme+3:], "/"); slash >= 0 {
			if at := strings.LastIndex(rest, "@"); at > scheme+3+slash {
				u, ref = rest[:at], rest[at+1:]
			}
		}
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %v", source, err)
	}
	known := false
	for _, s := range schemes {
		known = known || parsed.Scheme == s
	}
	switch {
	case !known:
		return Spec{}, fmt.Errorf("%s: unknown scheme %q; sources are git+https://, git+http://, git+ssh:// or git+file://", source, parsed.Scheme)
	case parsed.Scheme == "file" && (parsed.Host != "" || !path.IsAbs(parsed.Path)):
		return Spec{}, fmt.Errorf("%s: a git+file:// source names an absolute path: git+file:///srv/git/modules", source)
	case parsed.Scheme != "file" && parsed.Host == "":
		return Spec{}, fmt.Errorf("%s: no host", source)
	case strings.HasSuffix(source, "@") || strings.ContainsAny(ref, " \t\n") || strings.Contains(ref, ".."):
		return Spec{}, fmt.Errorf("%s: bad REF %q: name a tag, a branch or a commit after @", source, ref)
	}
	if _, hasPassword := parsed.User.Password(); hasPassword || parsed.User != nil && strings.HasPrefix(parsed.Scheme, "http") {
		return Spec{}, fmt.Errorf("%s://…@%s%s: credentials in the URL would be written to the lock file and shown in messages; use a git+ssh:// source with an SSH key", parsed.Scheme, parsed.Host, parsed.Path)
	}
	s := Spec{URL: u, Ref: ref, Source: Prefix + u}
	if ref != "" {
		s.Source += "@" + ref
	}
	return s, nil
}
