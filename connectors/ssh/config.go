package ssh

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sshconfig "github.com/kevinburke/ssh_config"
)

// configEnv is what resolution takes from the machine, so tests can set it.
type configEnv struct {
	User string // the local user name
	Home string // the local home directory
}

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

// Defaults that differ from OpenSSH's are ours on purpose: a deploy tool
// cannot ask "yes/no" for every new host, so StrictHostKeyChecking defaults
// to accept-new (OpenSSH: ask), and a connection attempt gives up after 10s
// (OpenSSH: the TCP timeout).
const (
	defaultStrictness     = "accept-new"
	defaultConnectTimeout = 10 * time.Second
	defaultRetries        = 2
	defaultKeepalive      = 15 * time.Second
	defaultKeepaliveMax   = 3
)

// resolveSettings resolves an inventory address ("db1", "deploy@10.0.0.5",
// "host:2222", "[::1]:2222", an alias of ~/.ssh/config) with the host's
// connector data. Precedence, like OpenSSH's command line over its config:
// connector data > user and port written in addr > ssh_config > defaults.
// It reads the config file but does no network I/O.
func resolveSettings(addr string, data map[string]string, env configEnv) (settings, error) {
	s := settings{Alias: addr}
	userPart, host, port, err := splitAddr(addr)
	if err != nil {
		return s, err
	}

	cfgPath := filepath.Join(env.Home, ".ssh", "config")
	explicit := false
	if p := data["ssh_config_file"]; p != "" {
		cfgPath, explicit = expandTilde(p, env.Home), true
	}
	cfg, err := loadConfig(cfgPath, explicit)
	if err != nil {
		return s, err
	}
	get := func(key string) string {
		if cfg == nil {
			return ""
		}
		v, _ := cfg.Get(host, key)
		return strings.TrimSpace(v)
	}
	getAll := func(key string) []string {
		if cfg == nil {
			return nil
		}
		v, _ := cfg.GetAll(host, key)
		return v
	}
	where := func(key string) string { return fmt.Sprintf("%s in %s (Host %s)", key, cfgPath, host) }

	// Host name and port, user.
	s.Hostname = host
	if hn := get("HostName"); hn != "" {
		s.Hostname = strings.ReplaceAll(hn, "%h", host)
	}
	s.Port = 22
	if p := get("Port"); p != "" {
		if s.Port, err = parsePort(p); err != nil {
			return s, fmt.Errorf("%s: %w", where("Port"), err)
		}
	}
	if port != "" {
		if s.Port, err = parsePort(port); err != nil {
			return s, fmt.Errorf("host %q: %w", addr, err)
		}
	}
	s.User = env.User
	if u := get("User"); u != "" {
		s.User = u
	}
	if userPart != "" {
		s.User = userPart
	}

	// Connector data wins.
	if v := data["ssh_hostname"]; v != "" {
		s.Hostname = v
	}
	if v := data["ssh_port"]; v != "" {
		if s.Port, err = parsePort(v); err != nil {
			return s, fmt.Errorf("ssh_port: %w", err)
		}
	}
	if v := data["ssh_user"]; v != "" {
		s.User = v
	}
	expand := func(p string) string {
		r := strings.NewReplacer("%%", "%", "%h", s.Hostname, "%p", strconv.Itoa(s.Port), "%r", s.User, "%u", env.User, "%d", env.Home, "%n", host)
		return expandTilde(r.Replace(p), env.Home)
	}

	// Identities.
	if v := data["ssh_key"]; v != "" {
		s.IdentityFiles = []string{expand(v)}
	}
	for _, f := range getAll("IdentityFile") {
		if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "none") {
			s.IdentityFiles = append(s.IdentityFiles, expand(f))
		}
	}
	if len(s.IdentityFiles) == 0 {
		for _, n := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk"} {
			s.IdentityFiles = append(s.IdentityFiles, filepath.Join(env.Home, ".ssh", n))
		}
	}
	if s.IdentitiesOnly, err = parseYesNo(get("IdentitiesOnly"), false); err != nil {
		return s, fmt.Errorf("%s: %w", where("IdentitiesOnly"), err)
	}
	if a := get("IdentityAgent"); a != "" {
		if a == "SSH_AUTH_SOCK" {
			a = ""
		} else if a != "none" {
			a = expand(strings.Trim(a, `"`))
		}
		s.IdentityAgent = a
	}
	s.Password = data["ssh_password"]
	s.KeyPassphrase = data["ssh_key_password"]
	if s.AllowAgent, err = dataBool(data, "ssh_allow_agent", true); err != nil {
		return s, err
	}
	if s.ForwardAgent, err = dataBool(data, "ssh_forward_agent", false); err != nil {
		return s, err
	}

	// Jumps.
	jump := get("ProxyJump")
	if v := data["ssh_proxy_jump"]; v != "" {
		jump = v
	}
	if jump != "" && !strings.EqualFold(jump, "none") {
		for _, hop := range strings.Split(jump, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				s.ProxyJump = append(s.ProxyJump, strings.TrimPrefix(hop, "ssh://"))
			}
		}
	}

	// Host keys.
	s.StrictHostKeyChecking = defaultStrictness
	strict, strictWhere := get("StrictHostKeyChecking"), where("StrictHostKeyChecking")
	if v := data["ssh_strict_host_key_checking"]; v != "" {
		strict, strictWhere = v, "ssh_strict_host_key_checking"
	}
	if strict != "" {
		switch strings.ToLower(strict) {
		case "yes", "ask", "true":
			s.StrictHostKeyChecking = "yes"
		case "accept-new":
			s.StrictHostKeyChecking = "accept-new"
		case "no", "off", "false":
			s.StrictHostKeyChecking = "no"
		default:
			return s, fmt.Errorf("%s: want yes, accept-new or no, got %q", strictWhere, strict)
		}
	}
	if v := data["ssh_known_hosts_file"]; v != "" {
		s.KnownHostsFiles = []string{expand(v)}
	} else if v := get("UserKnownHostsFile"); v != "" {
		for _, f := range strings.Fields(v) {
			s.KnownHostsFiles = append(s.KnownHostsFiles, expand(f))
		}
	} else {
		s.KnownHostsFiles = []string{filepath.Join(env.Home, ".ssh", "known_hosts"), filepath.Join(env.Home, ".ssh", "known_hosts2")}
	}
	s.HostKeyAlias = get("HostKeyAlias")

	// Timing.
	s.ConnectTimeout = defaultConnectTimeout
	if v := get("ConnectTimeout"); v != "" {
		if s.ConnectTimeout, err = parseSeconds(v); err != nil {
			return s, fmt.Errorf("%s: %w", where("ConnectTimeout"), err)
		}
	}
	if v := data["ssh_connect_timeout"]; v != "" {
		if s.ConnectTimeout, err = parseSeconds(v); err != nil {
			return s, fmt.Errorf("ssh_connect_timeout: %w", err)
		}
	}
	s.ConnectRetries = defaultRetries
	if v := data["ssh_connect_retries"]; v != "" {
		if s.ConnectRetries, err = strconv.Atoi(v); err != nil || s.ConnectRetries < 0 {
			return s, fmt.Errorf("ssh_connect_retries: want a number of retries (0 or more), got %q", v)
		}
	}
	s.KeepaliveInterval = defaultKeepalive
	if v := get("ServerAliveInterval"); v != "" {
		if s.KeepaliveInterval, err = parseSeconds(v); err != nil {
			return s, fmt.Errorf("%s: %w", where("ServerAliveInterval"), err)
		}
	}
	if v := data["ssh_keepalive_interval"]; v != "" {
		if s.KeepaliveInterval, err = parseSeconds(v); err != nil {
			return s, fmt.Errorf("ssh_keepalive_interval: %w", err)
		}
	}
	s.KeepaliveCountMax = defaultKeepaliveMax
	if v := get("ServerAliveCountMax"); v != "" {
		if s.KeepaliveCountMax, err = strconv.Atoi(v); err != nil || s.KeepaliveCountMax < 1 {
			return s, fmt.Errorf("%s: want a count of 1 or more, got %q", where("ServerAliveCountMax"), v)
		}
	}
	return s, nil
}

// splitAddr splits "user@host:port" (each part optional but host, IPv6 in
// brackets).
func splitAddr(addr string) (user, host, port string, err error) {
	rest := addr
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		user, rest = rest[:i], rest[i+1:]
		if user == "" {
			return "", "", "", fmt.Errorf("host %q: empty user before @", addr)
		}
	}
	host = rest
	if strings.HasPrefix(rest, "[") || strings.Count(rest, ":") == 1 {
		h, p, splitErr := net.SplitHostPort(rest)
		if splitErr != nil {
			if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
				return user, rest[1 : len(rest)-1], "", nil
			}
			return "", "", "", fmt.Errorf("host %q: %v", addr, splitErr)
		}
		host, port = h, p
	}
	if host == "" {
		return "", "", "", fmt.Errorf("host %q: no host name", addr)
	}
	return user, host, port, nil
}

// loadConfig parses the ssh config at path. A missing default file is no
// config; a missing file the user named is an error.
func loadConfig(path string, explicit bool) (*sshconfig.Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := sshconfig.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %v", path, err)
	}
	return cfg, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("want a port number from 1 to 65535, got %q", s)
	}
	return n, nil
}

func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("want a number of seconds, got %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func parseYesNo(s string, def bool) (bool, error) {
	switch strings.ToLower(s) {
	case "":
		return def, nil
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("want yes or no, got %q", s)
}

func dataBool(data map[string]string, key string, def bool) (bool, error) {
	v, ok := data[key]
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: want true or false, got %q", key, v)
	}
	return b, nil
}

func expandTilde(p, home string) string {
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}
