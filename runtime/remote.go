package runtime

import (
	"fmt"
	"strings"
)

// remotePrefix starts remote loads and the keys of remote modules.
const remotePrefix = "git+"

// isRemote reports whether load(name) in the module from is a remote
// module's: a git+ load, an @NAME// load other than the stdlib's, or a
// relative load from a remote module.
func isRemote(from, name string) bool {
	if strings.HasPrefix(name, stdlibPrefix) {
		return false
	}
	if strings.HasPrefix(name, remotePrefix) || strings.HasPrefix(from, remotePrefix) {
		return true
	}
	alias, _, ok := strings.Cut(strings.TrimPrefix(name, "@"), "//")
	return strings.HasPrefix(name, "@") && ok && alias != "" && !strings.Contains(alias, "/")
}

// resolveRemote returns the key of a remote load through Options.Remote,
// refusing it (ErrSandbox) when remote loads are off or the key has none of
// the prefixes of Options.RemoteAllow.
func (r *Runner) resolveRemote(from, name string) (string, error) {
	if r.opts.Remote == nil && strings.HasPrefix(name, "@") {
		return "", fmt.Errorf("load(%q): unknown module prefix; use @stdlib//NAME.star or a path relative to %s", name, from)
	}
	if r.opts.Remote == nil || len(r.opts.RemoteAllow) == 0 {
		return "", refusef("load(%q): remote modules are off here (the app allows them with Options.Remote and Options.RemoteAllow)", name)
	}
	key, err := r.opts.Remote.Resolve(from, name)
	if err != nil {
		return "", fmt.Errorf("load(%q): %w", name, err)
	}
	if !strings.HasPrefix(key, remotePrefix) {
		return "", fmt.Errorf("internal error: load(%q): the key %q of Options.Remote does not start with %s", name, key, remotePrefix)
	}
	for _, p := range r.opts.RemoteAllow {
		if strings.HasPrefix(key, p) {
			return key, nil
		}
	}
	return "", refusef("load(%q): %s is not an allowed source here (allowed: %s)", name, key, strings.Join(r.opts.RemoteAllow, ", "))
}
