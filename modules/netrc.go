package modules

import (
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Credentials returns the user name and password (or token) to send to the
// git+https:// or git+http:// server host (a host name, without port);
// ok false sends none. They go in an Authorization header and nowhere
// else: not in the lock file, the cache or a message.
type Credentials func(host string) (user, password string, ok bool)

// Netrc returns the Credentials of a netrc file, the one curl and the git
// command read for https: the "machine HOST" entry of the host, else the
// "default" entry, each with its "login" and "password" (quoted with "..."
// when they hold blanks). path "" is $NETRC, else ~/.netrc. The file is
// read once, at the first call; a missing file, or one that cannot be
// read or parsed, has no credentials.
func Netrc(path string) Credentials {
	var once sync.Once
	var entries map[string][2]string
	return func(host string) (string, string, bool) {
		once.Do(func() { entries, _ = readNetrc(netrcPath(path)) })
		e, ok := entries["machine "+host]
		if !ok {
			e, ok = entries["default"]
		}
		return e[0], e[1], ok
	}
}

// netrcPath is the netrc file Netrc(path) reads.
func netrcPath(path string) string {
	if path != "" {
		return path
	}
	if p := os.Getenv("NETRC"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".netrc")
}

// readNetrc parses a netrc file into "machine HOST" and "default" entries
// of login and password; the first entry of a machine wins, as for curl.
// macdef bodies (up to an empty line) are skipped.
func readNetrc(path string) (map[string][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	entries := map[string][2]string{}
	var key string
	var cur [2]string
	flush := func() {
		if _, seen := entries[key]; key != "" && !seen {
			entries[key] = cur
		}
		key, cur = "", [2]string{}
	}
	toks, err := netrcTokens(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := 0; i < len(toks); i++ {
		arg := func() string {
			if i+1 < len(toks) {
				i++
				return toks[i]
			}
			return ""
		}
		switch toks[i] {
		case "machine":
			flush()
			key = "machine " + arg()
		case "default":
			flush()
			key = "default"
		case "login":
			cur[0] = arg()
		case "password":
			cur[1] = arg()
		case "account":
			arg()
		case "\x00macdef":
			// netrcTokens dropped the body.
		}
	}
	flush()
	return entries, nil
}

// netrcTokens splits a netrc file into its tokens: words split by blanks,
// or "..." with \" and \\ escapes. A macdef and its body, up to an empty
// line, become the one token "\x00macdef".
func netrcTokens(s string) ([]string, error) {
	var toks []string
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t\r\n")
		switch {
		case s == "":
		case s[0] == '"':
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`a quoted token has no closing "`)
			}
			toks, s = append(toks, b.String()), s[i+1:]
		default:
			end := strings.IndexAny(s, " \t\r\n")
			if end < 0 {
				end = len(s)
			}
			tok := s[:end]
			s = s[end:]
			if tok == "macdef" {
				if i := strings.Index(s, "\n\n"); i >= 0 {
					s = s[i+2:]
				} else {
					s = ""
				}
				tok = "\x00macdef"
			}
			toks = append(toks, tok)
		}
	}
	return toks, nil
}

// httpAuth is the transport.AuthMethod of an http(s) URL: basic
// authentication with Options.Credentials' entry for its host; nil (none)
// without one.
func (r *Resolver) httpAuth(url string) transport.AuthMethod {
	if r.opts.Credentials == nil {
		return nil
	}
	u, err := neturl.Parse(url)
	if err != nil {
		return nil
	}
	if user, password, ok := r.opts.Credentials(u.Hostname()); ok {
		return &githttp.BasicAuth{Username: user, Password: password}
	}
	return nil
}

// authHint adds to a fetch or listing error of an http(s) url that the
// server asked for credentials what to do about it; helped says they came
// from Options.Helper.
func (r *Resolver) authHint(err error, url string, helped bool) error {
	if !errors.Is(err, transport.ErrAuthenticationRequired) && !errors.Is(err, transport.ErrAuthorizationFailed) {
		return err
	}
	host := url
	if u, perr := neturl.Parse(url); perr == nil {
		host = u.Hostname()
	}
	switch {
	case helped:
		return fmt.Errorf("%w (the server refused the credentials git's credential helper gave for %s)", err, host)
	case r.httpAuth(url) != nil:
		return fmt.Errorf("%w (the server refused the credentials for %s)", err, host)
	case r.opts.CredentialsFrom != "":
		return fmt.Errorf("%w: give credentials for %s in %s", err, host, r.opts.CredentialsFrom)
	}
	return fmt.Errorf("%w (the server asks for credentials, and none are set for %s)", err, host)
}

// NetrcHelp is the CredentialsFrom of Netrc("") with GitCredentials as the
// Helper, for messages.
func NetrcHelp() string {
	return "~/.netrc (or the file $NETRC names): machine HOST login USER password TOKEN, or in a credential helper of git (credential.helper)"
}
