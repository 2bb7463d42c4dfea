package ssh

// This file resolves one host's settings the way ssh(1) does: connector
// data (our command line) first, then the user and port of the inventory
// address, then the OpenSSH client config files, then defaults. Every
// value is taken from the first place that sets it ("first value wins"),
// except IdentityFile, which accumulates. The files are those ssh(1) reads
// without -F: ~/.ssh/config, then the system-wide /etc/ssh/ssh_config;
// ssh_config_file (-F) replaces both, and none reads neither.
// config_reader.go reads them.
//
// The files are read by a reader of our own rather than by
// github.com/kevinburke/ssh_config. That library has since gained Match
// (host, originalhost, user, localuser, all; not exec), but it still does
// not fit: it answers one key at a time for an alias (Get(alias, key))
// instead of evaluating the files once, line by line, so a Match cannot
// see the HostName or User that earlier lines set, as ssh(1)'s does; it
// has no final pass (Match final, which Fedora's system config uses); it
// refuses a whole file over a Match exec that applies to other hosts
// only; it resolves Include and ~ against the process's home directory,
// not an injectable one; and it does not check the values of the keywords
// we honour inside blocks that do not apply, as ssh(1) does. Our reader
// follows readconf.c instead: the same tokenizer (quotes, "=", comments),
// pattern matching, Include semantics, final pass and validation.

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// configEnv is what resolution takes from the machine, so tests can set
// it. Zero values fall back to the running process as noted.
type configEnv struct {
	User         string                           // local user name: default User, %u, Match localuser
	Home         string                           // local home directory: ~, %d, the default files under ~/.ssh
	ConfigFile   string                           // user config file; "" means Home/.ssh/config
	SystemConfig string                           // system-wide config, read after ConfigFile; "" reads none, so tests never read the machine's
	LocalHost    string                           // local host name for %l, %L and %C; "" means os.Hostname
	UID          string                           // local user id for %i; "" means os.Getuid
	LookupEnv    func(name string) (string, bool) // for ${VAR} and IdentityAgent $VAR; nil means os.LookupEnv
}

// defaultConfigEnv describes the running process, whose system-wide
// config is /etc/ssh/ssh_config. Unlike ssh(1), which
// takes the home directory from the password database, ~ follows $HOME, as
// everywhere else in Go.
func defaultConfigEnv() configEnv {
	env := configEnv{Home: os.Getenv("HOME"), User: os.Getenv("USER"), SystemConfig: systemConfigFile}
	if u, err := user.Current(); err == nil {
		if env.User == "" {
			env.User = u.Username
		}
		if env.Home == "" {
			env.Home = u.HomeDir
		}
	}
	return env
}

func (e configEnv) lookupEnv(name string) (string, bool) {
	if e.LookupEnv != nil {
		return e.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

func (e configEnv) localHost() string {
	if e.LocalHost != "" {
		return e.LocalHost
	}
	h, _ := os.Hostname()
	return h
}

func (e configEnv) uid() string {
	if e.UID != "" {
		return e.UID
	}
	return strconv.Itoa(os.Getuid())
}

// Defaults that differ from OpenSSH's are ours on purpose: a deploy tool
// cannot ask "yes/no" for every new host, so StrictHostKeyChecking defaults
// to accept-new (OpenSSH: ask); a connection attempt gives up after 10s
// (OpenSSH: the system's TCP timeout); and keepalives are on, every 15s
// (OpenSSH: off), so that a dead host fails its commands instead of hanging.
const (
	defaultStrictness     = "accept-new"
	defaultConnectTimeout = 10 * time.Second
	defaultRetries        = 2
	defaultKeepalive      = 15 * time.Second
	defaultKeepaliveMax   = 3
	maxIncludeDepth       = 16 // OpenSSH's READCONF_MAX_DEPTH
	systemConfigFile      = "/etc/ssh/ssh_config"
)

// defaultIdentities are the keys ssh(1) tries when no IdentityFile is
// configured, in its order.
var defaultIdentities = []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"}

// opt is one option value and where it came from ("ssh_port",
// "the address", "/home/me/.ssh/config:12"), for error messages.
type opt[T any] struct {
	v    T
	ok   bool
	from string
}

// set records v unless a value is already set: the first one wins.
func (o *opt[T]) set(v T, from string) {
	if !o.ok {
		*o = opt[T]{v: v, ok: true, from: from}
	}
}

// sshOptions are the options collected so far, before defaults and %
// expansion (OpenSSH's Options struct, for the keywords we honour).
type sshOptions struct {
	hostname       opt[string] // raw, may contain %h
	port           opt[int]
	user           opt[string]
	identityFiles  []opt[string] // raw, in order, without duplicates
	identitiesOnly opt[bool]
	identityAgent  opt[string] // raw
	forwardAgent   opt[bool]
	proxyJump      opt[[]string] // hops; an empty list is "none"
	proxyCommand   opt[string]
	strict         opt[string]   // normalised: yes, accept-new or no
	knownHosts     opt[[]string] // raw; ["none"] for none
	hostKeyAlias   opt[string]
	connectTimeout opt[time.Duration]
	aliveInterval  opt[time.Duration]
	aliveCountMax  opt[int]
}

func (o *sshOptions) addIdentity(p, from string) {
	for _, f := range o.identityFiles {
		if f.v == p {
			return // ssh(1) ignores duplicates too
		}
	}
	o.identityFiles = append(o.identityFiles, opt[string]{v: p, ok: true, from: from})
}

// resolveSettings resolves an inventory address ("db1", "deploy@10.0.0.5",
// "host:2222", "[::1]:2222", an alias of ~/.ssh/config) with the host's
// connector data. Precedence, like OpenSSH's command line over its config:
// connector data > user and port written in addr > ssh config > defaults.
// It reads the config files but does no network I/O.
func resolveSettings(addr string, data map[string]string, env configEnv) (settings, error) {
	addrUser, host, addrPort, err := splitAddr(addr)
	if err != nil {
		return settings{}, err
	}
	if env.Home == "" {
		return settings{}, errors.New("cannot tell the home directory for ~/.ssh: set $HOME")
	}
	o := &sshOptions{}
	if err := o.fromData(data); err != nil {
		return settings{}, err
	}
	if addrUser != "" {
		o.user.set(addrUser, "the address")
	}
	if addrPort != 0 {
		o.port.set(addrPort, "the address")
	}

	files, err := configFiles(data, env)
	if err != nil {
		return settings{}, err
	}
	if err := newConfigReader(env, host, o).read(files); err != nil {
		return settings{}, err
	}
	return o.finish(addr, host, data, env)
}

// configFiles lists the config files to read, as ssh(1) does: the file
// named by ssh_config_file (-F) alone, or else the user's and then the
// system-wide one. Only a named file must exist; only the user's is
// checked for permissions (includes always are).
func configFiles(data map[string]string, env configEnv) ([]configFile, error) {
	if v := data["ssh_config_file"]; v != "" {
		if strings.EqualFold(v, "none") {
			return nil, nil
		}
		p, err := expandTilde(v, env.Home)
		if err != nil {
			return nil, fmt.Errorf("ssh_config_file: %w", err)
		}
		return []configFile{{path: p, fl: readFlags{explicit: true}}}, nil
	}
	user := env.ConfigFile
	if user == "" {
		user = filepath.Join(env.Home, ".ssh", "config")
	}
	var files []configFile
	if !strings.EqualFold(user, "none") {
		files = append(files, configFile{path: user, fl: readFlags{checkPerm: true}})
	}
	if env.SystemConfig != "" {
		files = append(files, configFile{path: env.SystemConfig, fl: readFlags{includeDir: filepath.Dir(env.SystemConfig)}})
	}
	return files, nil
}

// fromData records the connector data that takes the place of ssh(1)'s
// command-line options. Empty values count as unset.
func (o *sshOptions) fromData(data map[string]string) error {
	if v := data["ssh_key"]; v != "" {
		o.addIdentity(v, "ssh_key")
	}
	for _, err := range []error{
		fromKey(data, "ssh_hostname", &o.hostname, asData),
		fromKey(data, "ssh_port", &o.port, parseDataPort),
		fromKey(data, "ssh_user", &o.user, asData),
		fromKey(data, "ssh_proxy_jump", &o.proxyJump, parseJump),
		fromKey(data, "ssh_strict_host_key_checking", &o.strict, parseStrictness),
		fromKey(data, "ssh_known_hosts_file", &o.knownHosts, func(v string) ([]string, error) { return []string{v}, nil }),
		fromKey(data, "ssh_connect_timeout", &o.connectTimeout, parseDataSeconds),
		fromKey(data, "ssh_keepalive_interval", &o.aliveInterval, parseDataSeconds),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// fromKey sets field to data[key] through parse, unless the key is unset
// or empty; the error names the key.
func fromKey[T any](data map[string]string, key string, field *opt[T], parse func(string) (T, error)) error {
	v := data[key]
	if v == "" {
		return nil
	}
	x, err := parse(v)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	field.set(x, key)
	return nil
}

// asData keeps a data value as written.
func asData(v string) (string, error) { return v, nil }

func parseDataPort(v string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("want a port number from 1 to 65535, got %q", v)
	}
	return p, nil
}

// finish applies the defaults and expands ~, %tokens and ${VAR}s, the way
// ssh(1) does once the config is read.
func (o *sshOptions) finish(addr, host string, data map[string]string, env configEnv) (settings, error) {
	s := settings{Alias: addr}
	if err := o.finishAddress(&s, host, env); err != nil {
		return s, err
	}
	tokens := o.tokens(host, s, env)
	expand := func(p, from, key string) (string, error) {
		p, err := expandTilde(p, env.Home)
		if err == nil {
			p, err = expandTokens(p, tokens, env.lookupEnv)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", from, key, err)
		}
		return p, nil
	}
	if err := o.finishAuth(&s, data, env, expand); err != nil {
		return s, err
	}
	if err := o.finishHostKeys(&s, env, expand); err != nil {
		return s, err
	}
	return s, o.finishTimes(&s, data)
}

// pathExpander expands ~, %tokens and ${VAR}s in the value of key, set at
// from.
type pathExpander func(p, from, key string) (string, error)

// finishAddress settles where to connect: host name, port, user, host key
// alias and jump hosts.
func (o *sshOptions) finishAddress(s *settings, host string, env configEnv) error {
	var err error
	s.Hostname = host
	if o.hostname.ok {
		if s.Hostname, err = expandHostname(o.hostname.v, host); err != nil {
			return fmt.Errorf("%s: HostName: %w", o.hostname.from, err)
		}
	}
	if net.ParseIP(s.Hostname) == nil {
		s.Hostname = strings.ToLower(s.Hostname) // as ssh(1), which leaves addresses alone
	}
	s.Port = 22
	if o.port.ok {
		s.Port = o.port.v
	}
	s.User = env.User
	if o.user.ok {
		s.User = o.user.v
	}
	if s.User == "" {
		return fmt.Errorf("cannot tell the local user name: set ssh_user or write user@%s", host)
	}
	s.HostKeyAlias = strings.ToLower(o.hostKeyAlias.v)

	if o.proxyJump.ok {
		if len(o.proxyJump.v) > 0 { // none: nil, direct
			s.ProxyJump = o.proxyJump.v
		}
	} else if o.proxyCommand.ok && !strings.EqualFold(o.proxyCommand.v, "none") {
		return fmt.Errorf("%s: ProxyCommand is not supported by the native SSH connector; use ProxyJump, or set ssh_proxy_jump (\"none\" to connect directly)", o.proxyCommand.from)
	}
	return nil
}

// finishAuth settles the identity files, the agent and the secrets.
func (o *sshOptions) finishAuth(s *settings, data map[string]string, env configEnv, expand pathExpander) error {
	for _, f := range o.identityFiles {
		if strings.EqualFold(f.v, "none") {
			continue // counts as configured: no default keys either
		}
		p, err := expand(f.v, f.from, "IdentityFile")
		if err != nil {
			return err
		}
		s.IdentityFiles = append(s.IdentityFiles, p)
	}
	if len(o.identityFiles) == 0 {
		for _, n := range defaultIdentities {
			s.IdentityFiles = append(s.IdentityFiles, joinHome(env.Home, ".ssh/"+n))
		}
	}
	s.IdentitiesOnly = o.identitiesOnly.v

	var err error
	switch a := o.identityAgent.v; {
	case !o.identityAgent.ok, a == "SSH_AUTH_SOCK":
		s.IdentityAgent = "" // $SSH_AUTH_SOCK
	case a == "none":
		s.IdentityAgent = "none"
	case strings.HasPrefix(a, "$") && !strings.HasPrefix(a, "${"):
		// The legacy form names a variable; an unset one means no agent.
		if v, ok := env.lookupEnv(a[1:]); ok && v != "" {
			s.IdentityAgent = v
		} else {
			s.IdentityAgent = "none"
		}
	default:
		if s.IdentityAgent, err = expand(a, o.identityAgent.from, "IdentityAgent"); err != nil {
			return err
		}
	}
	s.Password = data["ssh_password"]
	s.KeyPassphrase = data["ssh_key_password"]
	if s.AllowAgent, err = connectors.DataBool(data, "ssh_allow_agent", true); err != nil {
		return err
	}
	if s.ForwardAgent, err = connectors.DataBool(data, "ssh_forward_agent", o.forwardAgent.v); err != nil {
		return err
	}
	persistent, err := connectors.DataBool(data, "ssh_persistent_shell", true)
	if err != nil {
		return err
	}
	s.SessionPerCommand = !persistent
	if s.ShellPerl, err = connectors.DataBool(data, "ssh_shell_perl", true); err != nil {
		return err
	}
	if s.PerlFiles, err = connectors.DataBool(data, "ssh_perl_files", true); err != nil {
		return err
	}
	s.ShellSpares, err = connectors.DataBool(data, "ssh_shell_spares", true)
	return err
}

// finishHostKeys settles host key checking and the known_hosts files.
func (o *sshOptions) finishHostKeys(s *settings, env configEnv, expand pathExpander) error {
	s.StrictHostKeyChecking = defaultStrictness
	if o.strict.ok {
		s.StrictHostKeyChecking = o.strict.v
	}
	s.KnownHostsFiles = []string{} // "none": checked below
	switch {
	case !o.knownHosts.ok:
		s.KnownHostsFiles = []string{joinHome(env.Home, ".ssh/known_hosts"), joinHome(env.Home, ".ssh/known_hosts2")}
	case len(o.knownHosts.v) == 1 && strings.EqualFold(o.knownHosts.v[0], "none"):
		if s.StrictHostKeyChecking != "no" {
			return fmt.Errorf("%s: UserKnownHostsFile none leaves nowhere to check or record host keys; name a file, or say StrictHostKeyChecking no (ssh_strict_host_key_checking=no) to skip the check", o.knownHosts.from)
		}
	default:
		for _, f := range o.knownHosts.v {
			p, err := expand(f, o.knownHosts.from, "UserKnownHostsFile")
			if err != nil {
				return err
			}
			s.KnownHostsFiles = append(s.KnownHostsFiles, p)
		}
	}
	return nil
}

// finishTimes settles the connect timeout, retries and keepalives.
func (o *sshOptions) finishTimes(s *settings, data map[string]string) error {
	s.ConnectTimeout = defaultConnectTimeout
	if o.connectTimeout.ok {
		s.ConnectTimeout = o.connectTimeout.v
	}
	s.ConnectRetries = defaultRetries
	if v := data["ssh_connect_retries"]; v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return fmt.Errorf("ssh_connect_retries: want a number of retries, 0 or more, got %q", v)
		}
		s.ConnectRetries = n
	}
	s.KeepaliveInterval = defaultKeepalive
	if o.aliveInterval.ok {
		s.KeepaliveInterval = o.aliveInterval.v
	}
	s.KeepaliveCountMax = defaultKeepaliveMax
	if o.aliveCountMax.ok {
		s.KeepaliveCountMax = o.aliveCountMax.v
	}
	return nil
}

// tokens returns the values of ssh(1)'s % tokens for path options
// (ssh_config(5) TOKENS). Only the ones used are computed.
func (o *sshOptions) tokens(hostArg string, s settings, env configEnv) func(c byte) (string, bool) {
	jump := ""
	if n := len(s.ProxyJump); n > 0 {
		_, jump, _, _ = splitAddr(s.ProxyJump[n-1])
	}
	port := strconv.Itoa(s.Port)
	return func(c byte) (string, bool) {
		switch c {
		case 'C':
			sum := sha1.Sum([]byte(env.localHost() + s.Hostname + port + s.User + jump))
			return hex.EncodeToString(sum[:]), true
		case 'L':
			h, _, _ := strings.Cut(env.localHost(), ".")
			return h, true
		case 'i':
			return env.uid(), true
		case 'k':
			if s.HostKeyAlias != "" {
				return s.HostKeyAlias, true
			}
			return hostArg, true
		case 'l':
			return env.localHost(), true
		case 'n':
			return hostArg, true
		case 'p':
			return port, true
		case 'd':
			return env.Home, true
		case 'h':
			return s.Hostname, true
		case 'r':
			return s.User, true
		case 'u':
			return env.User, true
		case 'j':
			return jump, true
		}
		return "", false
	}
}

// expandTokens replaces %x tokens in s and, unless lookupEnv is nil,
// ${VAR}s, as ssh(1)'s percent_dollar_expand.
func expandTokens(s string, tokens func(byte) (string, bool), lookupEnv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case lookupEnv != nil && s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("%q: ${ without a closing }", s)
			}
			name := s[i+2 : i+2+end]
			v, ok := lookupEnv(name)
			if name == "" || !ok {
				return "", fmt.Errorf("%q: environment variable ${%s} is not set", s, name)
			}
			b.WriteString(v)
			i += 2 + end
		case s[i] == '%':
			if i+1 == len(s) {
				return "", fmt.Errorf("%q ends in a lone %%; write %%%% for a literal %%", s)
			}
			i++
			if s[i] == '%' {
				b.WriteByte('%')
				continue
			}
			v, ok := tokens(s[i])
			if !ok {
				return "", fmt.Errorf("%q: unknown token %%%c; the tokens are %%C %%d %%h %%i %%j %%k %%L %%l %%n %%p %%r %%u, and %%%% for a literal %%", s, s[i])
			}
			b.WriteString(v)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// expandHostname expands HostName, which knows only %h and %%.
func expandHostname(s, host string) (string, error) {
	return expandTokens(s, func(c byte) (string, bool) {
		if c == 'h' {
			return host, true
		}
		return "", false
	}, nil)
}

// splitAddr splits an inventory address "[user@]host[:port]" (IPv6 hosts
// in brackets when a port follows; an "ssh://" prefix is allowed).
func splitAddr(addr string) (user, host string, port int, err error) {
	rest := strings.TrimSuffix(strings.TrimPrefix(addr, "ssh://"), "/")
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		user, rest = rest[:i], rest[i+1:]
		if user == "" {
			return "", "", 0, fmt.Errorf("host %q: empty user name before @", addr)
		}
	}
	host = rest
	portStr := ""
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", 0, fmt.Errorf("host %q: missing ] after the IPv6 address", addr)
		}
		host = rest[1:end]
		switch after := rest[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			portStr = after[1:]
		default:
			return "", "", 0, fmt.Errorf("host %q: unexpected %q after ]; write [address]:port", addr, after)
		}
	case strings.Count(rest, ":") == 1:
		host, portStr, _ = strings.Cut(rest, ":")
	}
	if portStr != "" {
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 1 || p > 65535 {
			return "", "", 0, fmt.Errorf("host %q: want a port number from 1 to 65535 after the colon, got %q", addr, portStr)
		}
		port = p
	} else if strings.HasSuffix(rest, ":") && host != "" {
		return "", "", 0, fmt.Errorf("host %q: empty port after the colon", addr)
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("host %q: no host name", addr)
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return "", "", 0, fmt.Errorf("host %q: a host name cannot contain spaces or /", addr)
	}
	return user, host, port, nil
}

// parseJump parses a ProxyJump value: "none" (an empty, non-nil list) or
// comma-separated hops [user@]host[:port], each possibly an ssh:// URI.
func parseJump(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "none") {
		return []string{}, nil
	}
	var hops []string
	for hop := range strings.SplitSeq(v, ",") {
		hop = strings.TrimSpace(hop)
		if hop == "" {
			return nil, fmt.Errorf("empty hop in %q; write hops as user@host:port,user@host2", v)
		}
		if _, _, _, err := splitAddr(hop); err != nil {
			return nil, fmt.Errorf("jump %w", err)
		}
		hops = append(hops, strings.TrimSuffix(strings.TrimPrefix(hop, "ssh://"), "/"))
	}
	return hops, nil
}

// parseStrictness normalises StrictHostKeyChecking. "ask" becomes "yes":
// there is nobody to ask, so an unknown host fails as with "yes".
func parseStrictness(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "ask":
		return "yes", nil
	case "accept-new":
		return "accept-new", nil
	case "no", "false", "off":
		return "no", nil
	}
	return "", fmt.Errorf("want yes, accept-new or no, got %q", v)
}

// parseDataSeconds parses a data duration: seconds ("10", "0.5") or a Go
// duration ("1m30s", "500ms").
func parseDataSeconds(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("want a number of seconds (10, 0.5) or a duration (1m30s, 500ms), got %q", v)
}

// expandTilde expands a leading ~ or ~user, as ssh(1)'s tilde_expand.
func expandTilde(p, home string) (string, error) {
	if !strings.HasPrefix(p, "~") {
		return p, nil
	}
	name, rest, _ := strings.Cut(p[1:], "/")
	if name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("%q: no user %q for ~%s", p, name, name)
		}
		home = u.HomeDir
	}
	if home == "" {
		return "", fmt.Errorf("%q: the home directory is not known", p)
	}
	return joinHome(home, strings.TrimLeft(rest, "/")), nil
}

// joinHome appends rel to home with exactly one slash, without cleaning
// the path (as ssh(1) does).
func joinHome(home, rel string) string {
	if rel == "" {
		return home
	}
	return strings.TrimSuffix(home, "/") + "/" + rel
}
