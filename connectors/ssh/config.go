package ssh

// This file resolves one host's settings the way ssh(1) does: connector
// data (our command line) first, then the user and port of the inventory
// address, then the OpenSSH client config, then defaults. Every value is
// taken from the first place that sets it ("first value wins"), except
// IdentityFile, which accumulates.
//
// The config is read by a small parser of our own rather than by
// github.com/kevinburke/ssh_config: that library has no Match, resolves
// Include against the process's home directory and looks keys up one at a
// time per alias, while OpenSSH evaluates the file once, line by line, with
// Match criteria that depend on values set by earlier lines. The parser
// below follows OpenSSH's readconf.c: the same tokenizer (quotes, "=",
// comments), the same pattern matching, Include semantics and validation
// of the keywords we honour even inside blocks that do not apply. Keywords
// we do not use are skipped without a word, as there are many and OpenSSH
// itself checks them.

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// configEnv is what resolution takes from the machine, so tests can set
// it. Zero values fall back to the running process as noted.
type configEnv struct {
	User       string                           // local user name: default User, %u, Match localuser
	Home       string                           // local home directory: ~, %d, the default files under ~/.ssh
	ConfigFile string                           // default config file; "" means Home/.ssh/config
	LocalHost  string                           // local host name for %l, %L and %C; "" means os.Hostname
	UID        string                           // local user id for %i; "" means os.Getuid
	LookupEnv  func(name string) (string, bool) // for ${VAR} and IdentityAgent $VAR; nil means os.LookupEnv
}

// defaultConfigEnv describes the running process. Unlike ssh(1), which
// takes the home directory from the password database, ~ follows $HOME, as
// everywhere else in Go.
func defaultConfigEnv() configEnv {
	env := configEnv{Home: os.Getenv("HOME"), User: os.Getenv("USER")}
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
	identityAgent  opt[string]   // raw
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

	path, explicit := env.ConfigFile, false
	if path == "" {
		path = filepath.Join(env.Home, ".ssh", "config")
	}
	if v := data["ssh_config_file"]; v != "" {
		path, explicit = v, true
		if !strings.EqualFold(v, "none") {
			if path, err = expandTilde(v, env.Home); err != nil {
				return settings{}, fmt.Errorf("ssh_config_file: %w", err)
			}
		}
	}
	if !strings.EqualFold(path, "none") {
		r := &configReader{env: env, hostArg: host, o: o}
		active := true
		if err := r.readFile(path, &active, readFlags{explicit: explicit, checkPerm: !explicit}, 0); err != nil {
			return settings{}, err
		}
	}
	return o.finish(addr, host, data, env)
}

// fromData records the connector data that takes the place of ssh(1)'s
// command-line options. Empty values count as unset.
func (o *sshOptions) fromData(data map[string]string) error {
	if v := data["ssh_hostname"]; v != "" {
		o.hostname.set(v, "ssh_hostname")
	}
	if v := data["ssh_port"]; v != "" {
		p, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("ssh_port: want a port number from 1 to 65535, got %q", v)
		}
		o.port.set(p, "ssh_port")
	}
	if v := data["ssh_user"]; v != "" {
		o.user.set(v, "ssh_user")
	}
	if v := data["ssh_key"]; v != "" {
		o.addIdentity(v, "ssh_key")
	}
	if v := data["ssh_proxy_jump"]; v != "" {
		hops, err := parseJump(v)
		if err != nil {
			return fmt.Errorf("ssh_proxy_jump: %w", err)
		}
		o.proxyJump.set(hops, "ssh_proxy_jump")
	}
	if v := data["ssh_strict_host_key_checking"]; v != "" {
		s, err := parseStrictness(v)
		if err != nil {
			return fmt.Errorf("ssh_strict_host_key_checking: %w", err)
		}
		o.strict.set(s, "ssh_strict_host_key_checking")
	}
	if v := data["ssh_known_hosts_file"]; v != "" {
		o.knownHosts.set([]string{v}, "ssh_known_hosts_file")
	}
	if v := data["ssh_connect_timeout"]; v != "" {
		d, err := parseDataSeconds(v)
		if err != nil {
			return fmt.Errorf("ssh_connect_timeout: %w", err)
		}
		o.connectTimeout.set(d, "ssh_connect_timeout")
	}
	if v := data["ssh_keepalive_interval"]; v != "" {
		d, err := parseDataSeconds(v)
		if err != nil {
			return fmt.Errorf("ssh_keepalive_interval: %w", err)
		}
		o.aliveInterval.set(d, "ssh_keepalive_interval")
	}
	return nil
}

// finish applies the defaults and expands ~, %tokens and ${VAR}s, the way
// ssh(1) does once the config is read.
func (o *sshOptions) finish(addr, host string, data map[string]string, env configEnv) (settings, error) {
	s := settings{Alias: addr}
	var err error

	s.Hostname = host
	if o.hostname.ok {
		if s.Hostname, err = expandHostname(o.hostname.v, host); err != nil {
			return s, fmt.Errorf("%s: HostName: %w", o.hostname.from, err)
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
		return s, fmt.Errorf("cannot tell the local user name: set ssh_user or write user@%s", host)
	}
	s.HostKeyAlias = strings.ToLower(o.hostKeyAlias.v)

	if o.proxyJump.ok {
		if len(o.proxyJump.v) > 0 { // none: nil, direct
			s.ProxyJump = o.proxyJump.v
		}
	} else if o.proxyCommand.ok && !strings.EqualFold(o.proxyCommand.v, "none") {
		return s, fmt.Errorf("%s: ProxyCommand is not supported by the native SSH connector; use ProxyJump, or set ssh_proxy_jump (\"none\" to connect directly)", o.proxyCommand.from)
	}

	tokens := o.tokens(host, s, env)
	expandPath := func(p, from, key string) (string, error) {
		p, err := expandTilde(p, env.Home)
		if err == nil {
			p, err = expandTokens(p, tokens, env.lookupEnv)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", from, key, err)
		}
		return p, nil
	}

	for _, f := range o.identityFiles {
		if strings.EqualFold(f.v, "none") {
			continue // counts as configured: no default keys either
		}
		p, err := expandPath(f.v, f.from, "IdentityFile")
		if err != nil {
			return s, err
		}
		s.IdentityFiles = append(s.IdentityFiles, p)
	}
	if len(o.identityFiles) == 0 {
		for _, n := range defaultIdentities {
			s.IdentityFiles = append(s.IdentityFiles, joinHome(env.Home, ".ssh/"+n))
		}
	}
	s.IdentitiesOnly = o.identitiesOnly.v

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
		if s.IdentityAgent, err = expandPath(a, o.identityAgent.from, "IdentityAgent"); err != nil {
			return s, err
		}
	}
	s.Password = data["ssh_password"]
	s.KeyPassphrase = data["ssh_key_password"]
	if s.AllowAgent, err = dataBool(data, "ssh_allow_agent", true); err != nil {
		return s, err
	}
	if s.ForwardAgent, err = dataBool(data, "ssh_forward_agent", false); err != nil {
		return s, err
	}

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
			return s, fmt.Errorf("%s: UserKnownHostsFile none leaves nowhere to check or record host keys; name a file, or say StrictHostKeyChecking no (ssh_strict_host_key_checking=no) to skip the check", o.knownHosts.from)
		}
	default:
		for _, f := range o.knownHosts.v {
			p, err := expandPath(f, o.knownHosts.from, "UserKnownHostsFile")
			if err != nil {
				return s, err
			}
			s.KnownHostsFiles = append(s.KnownHostsFiles, p)
		}
	}

	s.ConnectTimeout = defaultConnectTimeout
	if o.connectTimeout.ok {
		s.ConnectTimeout = o.connectTimeout.v
	}
	s.ConnectRetries = defaultRetries
	if v := data["ssh_connect_retries"]; v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return s, fmt.Errorf("ssh_connect_retries: want a number of retries, 0 or more, got %q", v)
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
	return s, nil
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

// parseConvtime parses an ssh_config time ("30", "30s", "1m30s", "1h",
// "2d", "1w"), as OpenSSH's convtime.
func parseConvtime(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var total time.Duration
	for v != "" {
		i := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(v[:i], 10, 32)
		if err != nil {
			return 0, false
		}
		unit := time.Second
		v = v[i:]
		if v != "" {
			switch v[0] {
			case 's', 'S':
			case 'm', 'M':
				unit = time.Minute
			case 'h', 'H':
				unit = time.Hour
			case 'd', 'D':
				unit = 24 * time.Hour
			case 'w', 'W':
				unit = 7 * 24 * time.Hour
			default:
				return 0, false
			}
			v = v[1:]
		}
		total += time.Duration(n) * unit
		if total > (1<<31-1)*time.Second {
			return 0, false
		}
	}
	return total, true
}

func dataBool(data map[string]string, key string, def bool) (bool, error) {
	v := strings.TrimSpace(data[key])
	switch strings.ToLower(v) {
	case "":
		return def, nil
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: want true or false, got %q", key, v)
	}
	return b, nil
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

// configReader evaluates ssh config files for one host.
type configReader struct {
	env     configEnv
	hostArg string // the host as named, for Host, Match originalhost and %n
	o       *sshOptions
}

// readFlags are OpenSSH's SSHCONF_* flags for one file.
type readFlags struct {
	explicit   bool // named by ssh_config_file: a missing file is an error
	checkPerm  bool // refuse files others can write (~/.ssh/config, Includes)
	neverMatch bool // included from a block that does not apply: parse only
}

func (r *configReader) readFile(path string, active *bool, fl readFlags, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("ssh config %s: more than %d nested Includes (a loop?)", path, maxIncludeDepth)
	}
	what := "ssh config"
	if fl.explicit {
		what = "ssh_config_file"
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !fl.explicit {
			return nil
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	if fl.checkPerm {
		if err := checkConfigPerm(f); err != nil {
			return err
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if err := r.line(path, i+1, line, active, fl, depth); err != nil {
			return err
		}
	}
	return nil
}

// checkConfigPerm refuses a config file that someone else could have
// written, as ssh(1) does for ~/.ssh/config and included files.
func checkConfigPerm(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("ssh config: %w", err)
	}
	bad := fi.Mode().Perm()&0o022 != 0
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Getuid() {
		bad = true
	}
	if bad {
		return fmt.Errorf("ssh config %s: bad owner or permissions: it must belong to you and not be writable by others (chmod go-w %s)", f.Name(), f.Name())
	}
	return nil
}

// line processes one config line (readconf.c process_config_line_depth).
func (r *configReader) line(file string, n int, text string, active *bool, fl readFlags, depth int) error {
	at := fmt.Sprintf("%s:%d", file, n)
	text = strings.TrimRight(text, " \t\r\n\f")
	text = strings.TrimLeft(text, " \t\r\n")
	if text == "" || text[0] == '#' {
		return nil
	}
	end := strings.IndexAny(text, " \t=\"")
	if end < 0 {
		end = len(text)
	}
	keyword, rest := text[:end], strings.TrimLeft(text[end:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	if rest == "" {
		return fmt.Errorf("%s: no value after %s", at, keyword)
	}
	args, err := splitArgs(rest)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", at, keyword, err)
	}
	// one returns the single argument of keyword.
	one := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("%s: %s takes one value, got %d (quote a value that contains spaces)", at, keyword, len(args))
		}
		return args[0], nil
	}
	on := *active && !fl.neverMatch

	switch strings.ToLower(keyword) {
	case "host":
		*active = false
		if fl.neverMatch {
			return nil
		}
		for _, p := range args {
			neg := strings.HasPrefix(p, "!")
			if matchPattern(r.hostArg, strings.TrimPrefix(p, "!")) {
				if neg {
					*active = false
					break
				}
				*active = true
			}
		}
	case "match":
		m, err := r.match(at, args, fl.neverMatch)
		if err != nil {
			return err
		}
		*active = m && !fl.neverMatch
	case "include":
		for _, a := range args {
			pat := a
			if !strings.HasPrefix(a, "~") && !filepath.IsAbs(a) {
				pat = "~/.ssh/" + a // relative to ~/.ssh, as for ssh(1)'s user config
			}
			if pat, err = expandTilde(pat, r.env.Home); err != nil {
				return fmt.Errorf("%s: Include: %w", at, err)
			}
			files, err := filepath.Glob(pat)
			if err != nil {
				return fmt.Errorf("%s: Include %s: %w", at, a, err)
			}
			was := *active
			for _, f := range files {
				sub := readFlags{checkPerm: true, neverMatch: fl.neverMatch || !was}
				if err := r.readFile(f, active, sub, depth+1); err != nil {
					return err
				}
				*active = was // Host and Match lines inside do not leak out
			}
		}
	case "hostname":
		v, err := one()
		if err != nil {
			return err
		}
		if on {
			r.o.hostname.set(v, at)
		}
	case "user":
		v, err := one()
		if err != nil {
			return err
		}
		if on {
			r.o.user.set(v, at)
		}
	case "hostkeyalias":
		v, err := one()
		if err != nil {
			return err
		}
		if on {
			r.o.hostKeyAlias.set(v, at)
		}
	case "port":
		v, err := one()
		if err != nil {
			return err
		}
		p, err := strconv.Atoi(v)
		if err != nil {
			p, err = net.LookupPort("tcp", v) // ssh(1) takes service names too
		}
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%s: %s %s: want a port number from 1 to 65535", at, keyword, v)
		}
		if on {
			r.o.port.set(p, at)
		}
	case "identityfile":
		v, err := one()
		if err != nil {
			return err
		}
		if on {
			r.o.addIdentity(v, at)
		}
	case "identitiesonly":
		v, err := one()
		if err != nil {
			return err
		}
		b, ok := parseFlag(v)
		if !ok {
			return fmt.Errorf("%s: %s %s: want yes or no", at, keyword, v)
		}
		if on {
			r.o.identitiesOnly.set(b, at)
		}
	case "identityagent":
		v, err := one()
		if err != nil {
			return err
		}
		if on {
			r.o.identityAgent.set(v, at)
		}
	case "proxyjump":
		// The whole rest of the line, as ssh(1) reads it.
		v, _, _ := strings.Cut(rest, "#")
		hops, err := parseJump(v)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", at, keyword, err)
		}
		if on && !r.o.proxyCommand.ok {
			r.o.proxyJump.set(hops, at)
		}
	case "proxycommand":
		if on && !r.o.proxyJump.ok {
			r.o.proxyCommand.set(rest, at)
		}
	case "stricthostkeychecking":
		v, err := one()
		if err != nil {
			return err
		}
		s, err := parseStrictness(v)
		if err != nil {
			return fmt.Errorf("%s: %s: %w (ask counts as yes)", at, keyword, err)
		}
		if on {
			r.o.strict.set(s, at)
		}
	case "userknownhostsfile":
		for i, a := range args {
			if strings.EqualFold(a, "none") && (i > 0 || len(args) > 1) {
				return fmt.Errorf("%s: %s: none must stand alone", at, keyword)
			}
		}
		if on {
			r.o.knownHosts.set(args, at)
		}
	case "connecttimeout", "serveraliveinterval":
		v, err := one()
		if err != nil {
			return err
		}
		if strings.EqualFold(v, "none") {
			return nil // unset, as in ssh(1): a later line may still set it
		}
		d, ok := parseConvtime(v)
		if !ok {
			return fmt.Errorf("%s: %s %s: want seconds, or a time such as 30s, 5m or 1h30m", at, keyword, v)
		}
		if !on {
			return nil
		}
		if strings.EqualFold(keyword, "connecttimeout") {
			r.o.connectTimeout.set(d, at)
		} else {
			r.o.aliveInterval.set(d, at)
		}
	case "serveralivecountmax":
		v, err := one()
		if err != nil {
			return err
		}
		c, err := strconv.Atoi(v)
		if err != nil || c < 0 {
			return fmt.Errorf("%s: %s %s: want a count, 0 or more", at, keyword, v)
		}
		if on {
			r.o.aliveCountMax.set(c, at)
		}
	}
	return nil
}

// match evaluates the criteria of a Match line (readconf.c
// match_cfg_line). Criteria we cannot evaluate (exec, canonical, final,
// ...) are an error only when the line would otherwise apply, so a config
// that uses them for other hosts keeps working.
func (r *configReader) match(at string, args []string, neverMatch bool) (bool, error) {
	if len(args) == 0 {
		return false, fmt.Errorf("%s: Match needs criteria: all, host, originalhost, user or localuser", at)
	}
	result, attributes, passes := true, 0, 0
	var unsupported []string
	for i := 0; i < len(args); i++ {
		crit := args[i]
		neg := strings.HasPrefix(crit, "!")
		name := strings.ToLower(strings.TrimPrefix(crit, "!"))
		if name == "all" {
			if attributes > passes || i != len(args)-1 { // only "canonical all" or "final all"
				return false, fmt.Errorf("%s: Match all cannot be combined with other criteria", at)
			}
			if neg {
				result = false
			}
			break
		}
		attributes++
		if name == "canonical" || name == "final" {
			passes++
			unsupported = append(unsupported, crit)
			continue
		}
		if i+1 == len(args) {
			return false, fmt.Errorf("%s: Match %s needs a value", at, crit)
		}
		i++
		arg := args[i]
		var ok bool
		switch name {
		case "host":
			h := r.hostArg
			if r.o.hostname.ok {
				var err error
				if h, err = expandHostname(r.o.hostname.v, r.hostArg); err != nil {
					return false, fmt.Errorf("%s: HostName: %w", r.o.hostname.from, err)
				}
			}
			ok = matchPatternList(strings.ToLower(h), arg, true)
		case "originalhost":
			ok = matchPatternList(strings.ToLower(r.hostArg), arg, true)
		case "user":
			u := r.env.User
			if r.o.user.ok {
				u = r.o.user.v
			}
			ok = matchPatternList(u, arg, false)
		case "localuser":
			ok = matchPatternList(r.env.User, arg, false)
		case "exec", "tagged", "command", "version", "sessiontype", "localnetwork":
			unsupported = append(unsupported, crit+" "+strconv.Quote(arg))
			continue
		default:
			return false, fmt.Errorf("%s: unknown Match criterion %q; write all, host, originalhost, user or localuser", at, crit)
		}
		if ok == neg {
			result = false
		}
	}
	if result && len(unsupported) > 0 && !neverMatch {
		return false, fmt.Errorf("%s: Match %s: not supported by star-deploy's SSH connector, which evaluates all, host, originalhost, user and localuser; put these settings under Host or Match host patterns, or in connector data", at, strings.Join(unsupported, " "))
	}
	return result, nil
}

// parseFlag parses a yes/no keyword value, case-insensitively.
func parseFlag(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, true
	case "no", "false":
		return false, true
	}
	return false, false
}

// splitArgs splits the arguments of a config line like OpenSSH's
// argv_split: whitespace-separated, "double" or 'single' quotes, \\ \" \'
// and "\ " escapes, and a # at the start of an argument ends the line.
func splitArgs(s string) ([]string, error) {
	var args []string
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				b.WriteByte(s[i])
				continue
			case quote == 0 && (c == ' ' || c == '\t'):
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			default:
				b.WriteByte(c)
				continue
			}
			break
		}
		if quote != 0 {
			return nil, errors.New("unterminated quote")
		}
		args = append(args, b.String())
	}
	return args, nil
}

// matchPatternList matches s against a comma-separated list of patterns
// (ssh's match_pattern_list): true when some pattern matches and no
// negated (!) one does. lower folds the patterns to lower case.
func matchPatternList(s, list string, lower bool) bool {
	positive := false
	for p := range strings.SplitSeq(list, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if lower {
			p = strings.ToLower(p)
		}
		if matchPattern(s, p) {
			if neg {
				return false
			}
			positive = true
		}
	}
	return positive
}

// matchPattern matches s against a pattern of * (any run) and ? (any one
// byte), case-sensitively, as ssh's match_pattern.
func matchPattern(s, p string) bool {
	// Iterative glob with single-star backtracking.
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
