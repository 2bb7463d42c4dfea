package ssh

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// The configuration tests resolve each case twice: with resolveSettings and
// with OpenSSH's `ssh -G`, which prints the configuration ssh would use
// without connecting anywhere. Both must agree on every key below. Where
// star-deploy differs from OpenSSH on purpose, the difference is spelled
// out in ourDefaults or in normaliseSSH, not skipped.

// comparedKeys are the `ssh -G` keys that settings covers.
var comparedKeys = []string{
	"hostname", "port", "user", "identityfile", "proxyjump",
	"stricthostkeychecking", "userknownhostsfile", "connecttimeout",
	"serveraliveinterval", "serveralivecountmax", "identitiesonly",
	"identityagent", "hostkeyalias", "forwardagent",
}

// ourDefaults is appended to the config that ssh -G reads: as the last
// block it sets only what nothing else set, which turns OpenSSH's defaults
// into ours where they differ on purpose (see the constants in config.go):
// accept-new instead of ask, a 10s connect timeout instead of none, and
// keepalives every 15s instead of none.
const ourDefaults = `
# star-deploy's deliberate differences from OpenSSH's defaults.
Match all
  StrictHostKeyChecking accept-new
  ConnectTimeout 10
  ServerAliveInterval 15
`

type configCase struct {
	name    string
	file    string            // under testdata/config; "" for no config at all
	addr    string            // inventory address
	data    map[string]string // connector data; @DIR@ is the copied testdata directory
	environ map[string]string // environment for ${VAR} (ours and ssh's)
	// want holds some keys in ssh -G's words, checked even where ssh is
	// missing. "~/" stands for the home directory, @USER@ for the local
	// user, @DIR@ for the testdata copy; identityfile lines are joined by
	// newlines, and "" means unset.
	want map[string]string
}

var defaultIdentityLines = "~/.ssh/id_rsa\n~/.ssh/id_ecdsa\n~/.ssh/id_ecdsa_sk\n~/.ssh/id_ed25519\n~/.ssh/id_ed25519_sk\n~/.ssh/id_xmss\n~/.ssh/id_dsa"

var configCases = []configCase{
	// No config at all: every default.
	{name: "defaults", addr: "plain", want: map[string]string{
		"hostname": "plain", "port": "22", "user": "@USER@", "identityfile": defaultIdentityLines,
		"proxyjump": "", "stricthostkeychecking": "accept-new",
		"userknownhostsfile": "~/.ssh/known_hosts ~/.ssh/known_hosts2", "connecttimeout": "10",
		"serveraliveinterval": "15", "serveralivecountmax": "3", "identitiesonly": "no",
		"identityagent": "", "hostkeyalias": "",
	}},
	{name: "defaults with user and port", addr: "bob@Plain.Example:2222", want: map[string]string{
		"hostname": "plain.example", "port": "2222", "user": "bob",
	}},

	// ForwardAgent of the config; ssh_forward_agent wins over it.
	{name: "forward agent", file: "forward.config", addr: "fwd-1", want: map[string]string{"forwardagent": "yes"}},
	{name: "forward agent off", file: "forward.config", addr: "other", want: map[string]string{"forwardagent": "no"}},
	{name: "forward agent data", file: "forward.config", addr: "fwd-1", data: map[string]string{"ssh_forward_agent": "no"}, want: map[string]string{"forwardagent": "no"}},

	// Host patterns and first-value-wins.
	{name: "pattern list", file: "patterns.config", addr: "web1", want: map[string]string{
		"user": "deploy", "port": "2201", "hostname": "10.0.0.1",
	}},
	{name: "negated pattern", file: "patterns.config", addr: "web9", want: map[string]string{
		"user": "fallback", "port": "2222", "hostname": "web9.lan",
	}},
	{name: "glob with dash", file: "patterns.config", addr: "db-main", want: map[string]string{
		"user": "deploy", "port": "2201", "hostname": "db-main.lan",
	}},
	{name: "suffix glob with %h in IdentityFile", file: "patterns.config", addr: "a.example.com", want: map[string]string{
		"user": "ops", "hostname": "a.example.com.lan", "identityfile": "~/.ssh/example_a.example.com.lan",
	}},
	{name: "negated suffix", file: "patterns.config", addr: "bad.example.com", want: map[string]string{
		"user": "fallback", "identityfile": defaultIdentityLines,
	}},
	{name: "patterns are case-sensitive", file: "patterns.config", addr: "mixed", want: map[string]string{
		"port": "2222", "hostname": "mixed.lan",
	}},
	{name: "host name is lower-cased", file: "patterns.config", addr: "Mixed", want: map[string]string{
		"port": "2299", "hostname": "mixed.lan",
	}},
	{name: "address user and port beat the config", file: "patterns.config", addr: "alice@web2:2000", want: map[string]string{
		"user": "alice", "port": "2000", "hostname": "web2.lan",
	}},
	{name: "IPv6 with port", file: "patterns.config", addr: "[::1]:2200", want: map[string]string{
		"hostname": "::1.lan", "port": "2200", "user": "fallback",
	}},
	{name: "user at IPv6", file: "", addr: "root@[fe80::1]", want: map[string]string{
		"hostname": "fe80::1", "port": "22", "user": "root",
	}},
	{name: "bare IPv6", file: "", addr: "::1", want: map[string]string{
		"hostname": "::1", "port": "22",
	}},

	// Match.
	{name: "match host sees HostName", file: "match.config", addr: "short", want: map[string]string{
		"hostname": "short.internal.example", "user": "internal", "port": "2202",
		"identityfile": "~/.ssh/short_key", "serveralivecountmax": "7", "connecttimeout": "33",
	}},
	{name: "match host after HostName %h", file: "match.config", addr: "api.dc1", want: map[string]string{
		"hostname": "api.dc1.internal.example", "user": "internal", "port": "2202",
		"identityfile": defaultIdentityLines,
	}},
	{name: "match user from the address", file: "match.config", addr: "alice@www.example.org", want: map[string]string{
		"user": "alice", "port": "2300",
	}},
	{name: "match user from ssh_user", file: "match.config", addr: "www.example.org", data: map[string]string{"ssh_user": "alice"}, want: map[string]string{
		"user": "alice", "port": "2300",
	}},
	{name: "match negated user list", file: "match.config", addr: "bob@www.example.org", want: map[string]string{
		"user": "bob", "port": "2301",
	}},
	{name: "match negated criteria", file: "match.config", addr: "plain", want: map[string]string{
		"port": "2302", "user": "@USER@",
	}},
	{name: "match negated originalhost", file: "match.config", addr: "v6-host", want: map[string]string{
		"port": "22",
	}},
	{name: "match host sees ssh_hostname", file: "match.config", addr: "short", data: map[string]string{"ssh_hostname": "Other.Example"}, want: map[string]string{
		"hostname": "other.example", "user": "@USER@", "port": "2302", "identityfile": "~/.ssh/short_key",
	}},

	// Include.
	{name: "include", file: "include.config", addr: "from-include", want: map[string]string{
		"user": "included", "hostname": "included.example", "serveraliveinterval": "42",
		"identityfile": "~/.ssh/from_20\n~/.ssh/after_include",
	}},
	{name: "include inside Host", file: "include.config", addr: "inc-x", want: map[string]string{
		"user": "inner", "proxyjump": "jump.example:2222", "identityfile": "~/.ssh/after_include",
	}},
	{name: "include inside Host, other host", file: "include.config", addr: "other", want: map[string]string{
		"user": "outer", "proxyjump": "", "serveraliveinterval": "42",
	}},

	// ProxyJump.
	{name: "proxy jump multi-hop", file: "proxyjump.config", addr: "multi", want: map[string]string{
		"proxyjump": "alice@jump1.example:2201,bob@jump2.example:2202,jump3",
	}},
	{name: "proxy jump IPv6", file: "proxyjump.config", addr: "v6jump", want: map[string]string{
		"proxyjump": "[fd00::1]:2222",
	}},
	{name: "proxy jump none", file: "proxyjump.config", addr: "nojump", want: map[string]string{"proxyjump": ""}},
	{name: "proxy command none first", file: "proxyjump.config", addr: "cmdfirst", want: map[string]string{"proxyjump": ""}},
	{name: "proxy jump with comment", file: "proxyjump.config", addr: "other", want: map[string]string{"proxyjump": "default-jump"}},
	{name: "ssh_proxy_jump none", file: "proxyjump.config", addr: "other", data: map[string]string{"ssh_proxy_jump": "none"}, want: map[string]string{"proxyjump": ""}},
	{name: "ssh_proxy_jump wins", file: "proxyjump.config", addr: "multi", data: map[string]string{"ssh_proxy_jump": "hop1,carol@hop2:2022"}, want: map[string]string{
		"proxyjump": "hop1,carol@hop2:2022",
	}},

	// Expansion.
	{name: "tokens", file: "expand.config", addr: "exp", want: map[string]string{
		"hostname": "exp.example.net", "user": "u1", "port": "2022",
		"identityfile":       "~/.ssh/id_exp.example.net_2022_u1\n~/keys/@USER@/exp/%literal",
		"userknownhostsfile": "~/.ssh/kh_exp.example.net ~/kh_exp_2022_u1_@USER@",
		"identityagent":      "~/.ssh/agent-u1.sock", "hostkeyalias": "exp-alias",
	}},
	{name: "tokens with address user and port", file: "expand.config", addr: "me@exp:99", want: map[string]string{
		"identityfile":       "~/.ssh/id_exp.example.net_99_me\n~/keys/@USER@/exp/%literal",
		"userknownhostsfile": "~/.ssh/kh_exp.example.net ~/kh_exp_99_me_@USER@",
	}},
	{name: "agent none, quoted path", file: "expand.config", addr: "exp2", want: map[string]string{
		"identityagent": "none", "userknownhostsfile": "/tmp/with space/known_hosts",
	}},
	{name: "agent SSH_AUTH_SOCK", file: "expand.config", addr: "exp3", want: map[string]string{"identityagent": ""}},

	// IdentityFile.
	{name: "identity files in order", file: "identity.config", addr: "id-one", want: map[string]string{
		"identityfile": "~/.ssh/first\n~/.ssh/last", "identitiesonly": "yes",
	}},
	{name: "identity files without duplicates", file: "identity.config", addr: "id-two", want: map[string]string{
		"identityfile": "~/.ssh/first\n~/.ssh/second\n~/.ssh/last", "identitiesonly": "yes",
	}},
	{name: "identity file none", file: "identity.config", addr: "only-none", want: map[string]string{"identityfile": ""}},
	{name: "ssh_key first", file: "identity.config", addr: "id-two", data: map[string]string{"ssh_key": "@DIR@/data_key"}, want: map[string]string{
		"identityfile": "@DIR@/data_key\n~/.ssh/first\n~/.ssh/second\n~/.ssh/last",
	}},

	// Syntax.
	{name: "equals, quotes, keyword case", file: "syntax.config", addr: "eq", want: map[string]string{
		"port": "2022", "user": "quoted user", "hostname": "eq.example",
	}},
	{name: "service name port", file: "syntax.config", addr: "svc", want: map[string]string{"port": "22"}},
	{name: "tabs and single quotes", file: "syntax.config", addr: "tabbed", want: map[string]string{"port": "2023", "user": "single"}},
	{name: "address port beats config", file: "syntax.config", addr: "eq:3000", want: map[string]string{"port": "3000"}},
	{name: "ssh_port beats address", file: "syntax.config", addr: "eq:3000", data: map[string]string{"ssh_port": "4000"}, want: map[string]string{"port": "4000"}},
	{name: "ssh_user beats address", file: "syntax.config", addr: "amy@eq", data: map[string]string{"ssh_user": "zed"}, want: map[string]string{"user": "zed"}},

	// Host keys.
	{name: "strict yes", file: "hostkeys.config", addr: "strict-yes", want: map[string]string{"stricthostkeychecking": "yes"}},
	{name: "strict ask is yes", file: "hostkeys.config", addr: "strict-ask", want: map[string]string{"stricthostkeychecking": "yes"}},
	{name: "strict off", file: "hostkeys.config", addr: "strict-off", want: map[string]string{"stricthostkeychecking": "no"}},
	{name: "strict accept-new", file: "hostkeys.config", addr: "strict-new", want: map[string]string{"stricthostkeychecking": "accept-new"}},
	{name: "known hosts none", file: "hostkeys.config", addr: "kh-none", want: map[string]string{
		"userknownhostsfile": "none", "stricthostkeychecking": "no",
	}},
	{name: "host key alias and known hosts list", file: "hostkeys.config", addr: "alias", want: map[string]string{
		"hostkeyalias": "shared-key", "userknownhostsfile": "~/.ssh/kh1 ~/.ssh/kh2",
	}},
	{name: "data beats host key config", file: "hostkeys.config", addr: "strict-yes", data: map[string]string{
		"ssh_strict_host_key_checking": "no", "ssh_known_hosts_file": "~/kh_%h",
	}, want: map[string]string{"stricthostkeychecking": "no", "userknownhostsfile": "~/kh_strict-yes"}},

	// Timeouts.
	{name: "time formats", file: "timeouts.config", addr: "slow", want: map[string]string{
		"connecttimeout": "90", "serveraliveinterval": "5", "serveralivecountmax": "0",
	}},
	{name: "zero timeouts", file: "timeouts.config", addr: "off", want: map[string]string{
		"connecttimeout": "none", "serveraliveinterval": "0",
	}},
	{name: "none leaves timeouts unset", file: "timeouts.config", addr: "none", want: map[string]string{
		"connecttimeout": "20", "serveraliveinterval": "15",
	}},
	{name: "data timeouts", file: "timeouts.config", addr: "slow", data: map[string]string{
		"ssh_connect_timeout": "7", "ssh_keepalive_interval": "3",
	}, want: map[string]string{"connecttimeout": "7", "serveraliveinterval": "3"}},

	// Unsupported Match criteria do not matter where the others fail.
	{name: "match exec elsewhere", file: "match_exec.config", addr: "www.example.org", want: map[string]string{
		"user": "someone", "port": "22",
	}},
	// Match final: a second pass, where Host lines see the HostName.
	{name: "match final", file: "match_final.config", addr: "fin", want: map[string]string{
		"user": "final-user", "port": "2401", "hostname": "fin.example.net",
		"identityfile": "~/.ssh/final_key", "serveralivecountmax": "9",
	}},
	{name: "match final other host", file: "match_final.config", addr: "other", want: map[string]string{
		"user": "final-user", "port": "2401", "hostname": "other", "identityfile": defaultIdentityLines,
	}},
	// ${VAR} expansion.
	{name: "environment variables", file: "expand.config", addr: "envhost",
		environ: map[string]string{"SD_TEST_DIR": "@DIR@"}, want: map[string]string{"userknownhostsfile": "@DIR@/kh_envhost"}},
}

// localIdentity is the user ssh(1) runs as: it takes the home directory from
// the password database, so the comparison does too.
func localIdentity(t *testing.T) configEnv {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("host name: %v", err)
	}
	return configEnv{User: u.Username, Home: u.HomeDir, LocalHost: host, UID: strconv.Itoa(os.Getuid())}
}

// copyTestdata copies testdata/config to a temporary directory, with @DIR@
// replaced by that directory and owner-only permissions, as ssh wants for
// included files. It adds an empty key file, data_key, for `ssh -i`.
func copyTestdata(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir("testdata/config", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/config", p)
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, bytes.ReplaceAll(b, []byte("@DIR@"), []byte(dir)), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data_key"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sshClient returns the path of ssh(1), or "" when there is none and CI is
// not set. Under CI=true a missing ssh fails the test.
func sshClient(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ssh client not found (%v); CI must compare the config resolution with `ssh -G`", err)
		}
		return ""
	}
	return p
}

func TestConfigAgainstOpenSSH(t *testing.T) {
	dir := copyTestdata(t)
	id := localIdentity(t)
	sshPath := sshClient(t)
	fakeHome := t.TempDir()

	for _, tc := range configCases {
		t.Run(tc.name, func(t *testing.T) {
			subst := strings.NewReplacer("@DIR@", dir)
			data := map[string]string{}
			for k, v := range tc.data {
				data[k] = subst.Replace(v)
			}
			environ := map[string]string{}
			for k, v := range tc.environ {
				environ[k] = subst.Replace(v)
			}
			cfg := "none"
			if tc.file != "" {
				cfg = filepath.Join(dir, tc.file)
			}
			data["ssh_config_file"] = cfg
			env := id
			env.LookupEnv = func(k string) (string, bool) { v, ok := environ[k]; return v, ok }

			s, err := resolveSettings(tc.addr, data, env)
			if err != nil {
				t.Fatalf("resolveSettings(%q): %v", tc.addr, err)
			}
			ours := viewSettings(s)

			expand := strings.NewReplacer("~/", id.Home+"/", "@USER@", id.User, "@DIR@", dir)
			for _, k := range slices.Sorted(maps.Keys(tc.want)) {
				if want := expand.Replace(tc.want[k]); ours[k] != want {
					t.Errorf("%s = %q, want %q", k, ours[k], want)
				}
			}

			if sshPath == "" {
				t.Skip("ssh client not found: checked the expected values only, not `ssh -G`")
			}
			sshCfg := filepath.Join(t.TempDir(), "ssh_config")
			var body []byte
			if tc.file != "" {
				if body, err = os.ReadFile(cfg); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(sshCfg, append(body, ourDefaults...), 0o600); err != nil {
				t.Fatal(err)
			}
			theirs, err := sshG(t, sshPath, fakeHome, sshCfg, tc.addr, data, environ)
			if err != nil {
				t.Fatal(err)
			}
			norm := normaliseSSH(theirs, id)
			for _, k := range comparedKeys {
				if ours[k] != norm[k] {
					t.Errorf("%s: ours %q, ssh -G %q", k, ours[k], norm[k])
				}
			}
		})
	}
}

// viewSettings puts s in ssh -G's words (see configCase.want).
func viewSettings(s settings) map[string]string {
	var hops []string
	for _, h := range s.ProxyJump {
		hops = append(hops, canonicalHop(h))
	}
	kh := strings.Join(s.KnownHostsFiles, " ")
	if len(s.KnownHostsFiles) == 0 {
		kh = "none"
	}
	ct := seconds(s.ConnectTimeout)
	if s.ConnectTimeout == 0 {
		ct = "none"
	}
	yesNo := map[bool]string{true: "yes", false: "no"}
	return map[string]string{
		"hostname":              s.Hostname,
		"port":                  strconv.Itoa(s.Port),
		"user":                  s.User,
		"identityfile":          strings.Join(s.IdentityFiles, "\n"),
		"proxyjump":             strings.Join(hops, ","),
		"stricthostkeychecking": s.StrictHostKeyChecking,
		"userknownhostsfile":    kh,
		"connecttimeout":        ct,
		"serveraliveinterval":   seconds(s.KeepaliveInterval),
		"serveralivecountmax":   strconv.Itoa(s.KeepaliveCountMax),
		"identitiesonly":        yesNo[s.IdentitiesOnly],
		"identityagent":         s.IdentityAgent,
		"hostkeyalias":          s.HostKeyAlias,
		"forwardagent":          yesNo[s.ForwardAgent],
	}
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// canonicalHop writes a jump host as user@host:port, with brackets around
// IPv6 addresses and without the parts that are not set.
func canonicalHop(h string) string {
	u, host, port, err := splitAddr(h)
	if err != nil {
		return "invalid(" + h + ")"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if u != "" {
		host = u + "@" + host
	}
	if port != 0 {
		host += ":" + strconv.Itoa(port)
	}
	return host
}

// sshG runs `ssh -G` for addr and data the way an OpenSSH user would spell
// them: user@ and -p from the address, -l -p -i -J and -o for the data.
func sshG(t *testing.T, sshPath, home, cfg, addr string, data, environ map[string]string) (map[string][]string, error) {
	t.Helper()
	u, host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	args := []string{"-G", "-F", cfg}
	if v := data["ssh_user"]; v != "" {
		args = append(args, "-l", v)
	}
	if v := data["ssh_port"]; v != "" {
		args = append(args, "-p", v)
	} else if port != 0 {
		args = append(args, "-p", strconv.Itoa(port))
	}
	if v := data["ssh_key"]; v != "" {
		args = append(args, "-i", v)
	}
	if v := data["ssh_proxy_jump"]; v != "" {
		args = append(args, "-J", v)
	}
	for key, opt := range map[string]string{
		"ssh_hostname":                 "HostName",
		"ssh_strict_host_key_checking": "StrictHostKeyChecking",
		"ssh_known_hosts_file":         "UserKnownHostsFile",
		"ssh_connect_timeout":          "ConnectTimeout",
		"ssh_keepalive_interval":       "ServerAliveInterval",
		"ssh_forward_agent":            "ForwardAgent",
	} {
		if v := data[key]; v != "" {
			args = append(args, "-o", opt+"="+v)
		}
	}
	if u != "" {
		host = u + "@" + host
	}
	args = append(args, "--", host)

	cmd := exec.CommandContext(t.Context(), sshPath, args...)
	// -F keeps ssh away from the system-wide and the user's config; a
	// fresh HOME and no agent keep the rest of the environment out.
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	got := map[string][]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			got[k] = append(got[k], v)
		}
	}
	return got, nil
}

// normaliseSSH turns ssh -G output into the words of viewSettings.
func normaliseSSH(g map[string][]string, id configEnv) map[string]string {
	one := func(k string) string {
		if len(g[k]) == 0 {
			return ""
		}
		return g[k][0]
	}
	m := map[string]string{}
	for _, k := range comparedKeys {
		m[k] = one(k)
	}
	// ssh -G prints IdentityFile as written; ssh expands it later with
	// these values.
	expand := strings.NewReplacer("%%", "%", "%d", id.Home, "%u", id.User,
		"%h", one("hostname"), "%n", one("host"), "%p", one("port"), "%r", one("user"))
	var ids []string
	for _, f := range g["identityfile"] {
		if strings.EqualFold(f, "none") {
			continue
		}
		if strings.HasPrefix(f, "~/") {
			f = id.Home + f[1:]
		}
		ids = append(ids, expand.Replace(f))
	}
	m["identityfile"] = strings.Join(ids, "\n")
	if j := one("proxyjump"); j != "" {
		var hops []string
		for h := range strings.SplitSeq(j, ",") {
			hops = append(hops, canonicalHop(h))
		}
		m["proxyjump"] = strings.Join(hops, ",")
	}
	switch m["stricthostkeychecking"] {
	case "true":
		m["stricthostkeychecking"] = "yes"
	case "false":
		m["stricthostkeychecking"] = "no"
	case "ask":
		// Deliberate: there is nobody to ask, so ask is as strict as yes.
		m["stricthostkeychecking"] = "yes"
	}
	if m["connecttimeout"] == "0" {
		m["connecttimeout"] = "none" // both mean no timeout
	}
	if m["identityagent"] == "SSH_AUTH_SOCK" {
		m["identityagent"] = "" // settings says $SSH_AUTH_SOCK with ""
	}
	return m
}

// testEnv is a configEnv in a fresh home directory.
func testEnv(t *testing.T) configEnv {
	t.Helper()
	return configEnv{User: "localme", Home: t.TempDir(), LocalHost: "build.example.com", UID: "4242",
		LookupEnv: func(string) (string, bool) { return "", false }}
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := copyTestdata(t)
	sshPath := sshClient(t)
	tests := []struct {
		name, file, addr string
		data             map[string]string
		want             []string // substrings of the error
		sshFails         bool     // OpenSSH rejects it too (checked when ssh is there)
	}{
		{name: "match exec", file: "match_exec.config", addr: "www.example.com",
			want: []string{"match_exec.config:4:", `exec "test -f /etc/hosts"`, "not supported", "Host"}},
		{name: "bad port in a block that does not apply", file: "bad_port.config", addr: "x",
			want: []string{"bad_port.config:3:", "Port 70000", "from 1 to 65535"}, sshFails: true},
		{name: "bad strictness", file: "bad_strict.config", addr: "x",
			want: []string{"bad_strict.config:2:", "StrictHostKeyChecking", `want yes, accept-new or no, got "sometimes"`}, sshFails: true},
		{name: "proxy command", file: "proxycommand.config", addr: "x",
			want: []string{"proxycommand.config:2:", "ProxyCommand is not supported", "ProxyJump"}},
		{name: "unknown match criterion", file: "bad_match.config", addr: "x",
			want: []string{"bad_match.config:1:", `unknown Match criterion "hostname"`, "originalhost"}, sshFails: true},
		{name: "unterminated quote", file: "bad_quote.config", addr: "x",
			want: []string{"bad_quote.config:2:", "unterminated quote"}, sshFails: true},
		{name: "known hosts none", file: "kh_none.config", addr: "x",
			want: []string{"kh_none.config:2:", "UserKnownHostsFile none", "StrictHostKeyChecking no"}},
		{name: "unknown token", file: "bad_token.config", addr: "x",
			want: []string{"bad_token.config:2:", "IdentityFile", "unknown token %z", "%%"}},
		{name: "missing config file", addr: "x", data: map[string]string{"ssh_config_file": "@DIR@/nope"},
			want: []string{"ssh_config_file", "nope", "no such file"}, sshFails: true},

		{name: "port not a number", addr: "x", data: map[string]string{"ssh_port": "ssh"}, want: []string{"ssh_port", "from 1 to 65535", `"ssh"`}},
		{name: "port zero", addr: "x", data: map[string]string{"ssh_port": "0"}, want: []string{"ssh_port", "from 1 to 65535"}},
		{name: "port too big", addr: "x", data: map[string]string{"ssh_port": "65536"}, want: []string{"ssh_port", "from 1 to 65535"}},
		{name: "strictness", addr: "x", data: map[string]string{"ssh_strict_host_key_checking": "maybe"}, want: []string{"ssh_strict_host_key_checking", "yes, accept-new or no"}},
		{name: "timeout", addr: "x", data: map[string]string{"ssh_connect_timeout": "soon"}, want: []string{"ssh_connect_timeout", "seconds"}},
		{name: "negative timeout", addr: "x", data: map[string]string{"ssh_connect_timeout": "-1"}, want: []string{"ssh_connect_timeout"}},
		{name: "keepalive", addr: "x", data: map[string]string{"ssh_keepalive_interval": "often"}, want: []string{"ssh_keepalive_interval", "seconds"}},
		{name: "retries", addr: "x", data: map[string]string{"ssh_connect_retries": "-1"}, want: []string{"ssh_connect_retries", "0 or more"}},
		{name: "agent flag", addr: "x", data: map[string]string{"ssh_allow_agent": "perhaps"}, want: []string{"ssh_allow_agent", "true or false"}},
		{name: "forward flag", addr: "x", data: map[string]string{"ssh_forward_agent": "2"}, want: []string{"ssh_forward_agent", "true or false"}},
		{name: "empty hop", addr: "x", data: map[string]string{"ssh_proxy_jump": "a,,b"}, want: []string{"ssh_proxy_jump", "empty hop"}},
		{name: "hop without host", addr: "x", data: map[string]string{"ssh_proxy_jump": "bob@"}, want: []string{"ssh_proxy_jump", "no host name"}},

		{name: "address without user", addr: "@host", want: []string{"empty user name"}},
		{name: "address without host", addr: "alice@", want: []string{"no host name"}},
		{name: "address with empty port", addr: "host:", want: []string{"empty port"}},
		{name: "address with bad port", addr: "host:99999", want: []string{"from 1 to 65535", "99999"}},
		{name: "address with open bracket", addr: "[::1", want: []string{"missing ]"}},
		{name: "address with junk after bracket", addr: "[::1]x", want: []string{"[address]:port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := map[string]string{"ssh_config_file": "none"}
			if tc.file != "" {
				data["ssh_config_file"] = filepath.Join(dir, tc.file)
			}
			for k, v := range tc.data {
				data[k] = strings.ReplaceAll(v, "@DIR@", dir)
			}
			_, err := resolveSettings(tc.addr, data, localIdentity(t))
			if err == nil {
				t.Fatalf("resolveSettings(%q) succeeded, want an error", tc.addr)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.sshFails && sshPath != "" {
				if _, err := sshG(t, sshPath, t.TempDir(), data["ssh_config_file"], tc.addr, map[string]string{}, nil); err == nil {
					t.Errorf("ssh -G accepts what we reject")
				}
			}
		})
	}
}

// TestConfigPrecedence checks each layer against the one below it:
// connector data > address > config > defaults.
func TestConfigPrecedence(t *testing.T) {
	env := testEnv(t)
	cfg := filepath.Join(env.Home, "cfg")
	writeFile(t, cfg, `Host *
  HostName from-config
  Port 1001
  User config-user
  IdentityFile ~/config_key
  ProxyJump config-jump
  StrictHostKeyChecking yes
  UserKnownHostsFile ~/config_kh
  ConnectTimeout 11
  ServerAliveInterval 12
  ServerAliveCountMax 5
`, 0o600)
	full := map[string]string{
		"ssh_config_file":              cfg,
		"ssh_hostname":                 "from-data",
		"ssh_port":                     "3003",
		"ssh_user":                     "data-user",
		"ssh_key":                      "~/data_key",
		"ssh_proxy_jump":               "data-jump",
		"ssh_strict_host_key_checking": "no",
		"ssh_known_hosts_file":         "~/data_kh",
		"ssh_connect_timeout":          "1.5",
		"ssh_keepalive_interval":       "500ms",
		"ssh_connect_retries":          "0",
		"ssh_allow_agent":              "false",
		"ssh_shell_perl":               "false",
		"ssh_perl_files":               "false",
		"ssh_shell_spares":             "false",
		"ssh_forward_agent":            "yes",
		"ssh_password":                 "pw",
		"ssh_key_password":             "pass",
	}
	resolve := func(addr string, data map[string]string) settings {
		t.Helper()
		s, err := resolveSettings(addr, data, env)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := resolve("addr-user@alias:2002", full)
	h := env.Home
	want := settings{
		Alias: "addr-user@alias:2002", Hostname: "from-data", Port: 3003, User: "data-user",
		IdentityFiles: []string{h + "/data_key", h + "/config_key"}, Password: "pw", KeyPassphrase: "pass",
		AllowAgent: false, ForwardAgent: true, ProxyJump: []string{"data-jump"},
		StrictHostKeyChecking: "no", KnownHostsFiles: []string{h + "/data_kh"},
		ConnectTimeout: 1500 * time.Millisecond, ConnectRetries: 0,
		KeepaliveInterval: 500 * time.Millisecond, KeepaliveCountMax: 5,
	}
	checkSettings(t, "data", s, want)

	s = resolve("addr-user@alias:2002", map[string]string{"ssh_config_file": cfg})
	want = settings{
		Alias: "addr-user@alias:2002", Hostname: "from-config", Port: 2002, User: "addr-user",
		IdentityFiles: []string{h + "/config_key"}, AllowAgent: true, ProxyJump: []string{"config-jump"},
		StrictHostKeyChecking: "yes", KnownHostsFiles: []string{h + "/config_kh"},
		ConnectTimeout: 11 * time.Second, ConnectRetries: 2, ShellPerl: true, PerlFiles: true, ShellSpares: true,
		KeepaliveInterval: 12 * time.Second, KeepaliveCountMax: 5,
	}
	checkSettings(t, "address over config", s, want)

	s = resolve("alias", map[string]string{"ssh_config_file": cfg})
	want.Alias, want.Port, want.User = "alias", 1001, "config-user"
	checkSettings(t, "config", s, want)

	s = resolve("alias", nil) // no ~/.ssh/config in the fresh home
	var ids []string
	for _, n := range defaultIdentities {
		ids = append(ids, h+"/.ssh/"+n)
	}
	want = settings{
		Alias: "alias", Hostname: "alias", Port: 22, User: "localme", IdentityFiles: ids, AllowAgent: true,
		StrictHostKeyChecking: "accept-new", KnownHostsFiles: []string{h + "/.ssh/known_hosts", h + "/.ssh/known_hosts2"},
		ConnectTimeout: 10 * time.Second, ConnectRetries: 2, KeepaliveInterval: 15 * time.Second, KeepaliveCountMax: 3, ShellPerl: true, PerlFiles: true, ShellSpares: true,
	}
	checkSettings(t, "defaults", s, want)
}

func checkSettings(t *testing.T, what string, got, want settings) {
	t.Helper()
	g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
	if g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func TestConfigDefaultFile(t *testing.T) {
	env := testEnv(t)
	def := filepath.Join(env.Home, ".ssh", "config")

	// A missing default file is no config.
	if _, err := resolveSettings("h", nil, env); err != nil {
		t.Fatalf("missing default config: %v", err)
	}

	writeFile(t, def, "Host h\n  User from-default\n", 0o600)
	s, err := resolveSettings("h", nil, env)
	if err != nil || s.User != "from-default" {
		t.Fatalf("default config: user %q, err %v", s.User, err)
	}
	// configEnv.ConfigFile names another default.
	other := filepath.Join(env.Home, "other_config")
	writeFile(t, other, "Host h\n  User from-other\n", 0o600)
	env2 := env
	env2.ConfigFile = other
	if s, err := resolveSettings("h", nil, env2); err != nil || s.User != "from-other" {
		t.Fatalf("configEnv.ConfigFile: user %q, err %v", s.User, err)
	}
	// none reads nothing.
	if s, err := resolveSettings("h", map[string]string{"ssh_config_file": "none"}, env); err != nil || s.User != "localme" {
		t.Fatalf("ssh_config_file=none: user %q, err %v", s.User, err)
	}

	// Like ssh, refuse a default config that others can write, but not one
	// named explicitly.
	writeFile(t, def, "Host h\n  User from-default\n", 0o666)
	_, err = resolveSettings("h", nil, env)
	if err == nil || !strings.Contains(err.Error(), "permissions") || !strings.Contains(err.Error(), "chmod go-w") {
		t.Fatalf("group-writable default config: err %v, want a permissions error", err)
	}
	if _, err := resolveSettings("h", map[string]string{"ssh_config_file": def}, env); err != nil {
		t.Fatalf("explicit group-writable config: %v", err)
	}
}

// TestConfigSystemFile reads the system-wide config after the user's, as
// ssh(1) reads /etc/ssh/ssh_config: the user's values win, relative
// Includes are looked up beside the system file, its permissions are not
// checked, and ssh_config_file (-F) replaces both files.
func TestConfigSystemFile(t *testing.T) {
	if got := defaultConfigEnv().SystemConfig; got != "/etc/ssh/ssh_config" {
		t.Errorf("defaultConfigEnv().SystemConfig = %q, want /etc/ssh/ssh_config", got)
	}
	env := testEnv(t)
	sysDir := t.TempDir()
	env.SystemConfig = filepath.Join(sysDir, "ssh_config")
	user := filepath.Join(env.Home, ".ssh", "config")
	writeFile(t, user, "Host h\n  User from-user\n", 0o600)
	writeFile(t, env.SystemConfig, "Include sys.d/*.conf\nHost h\n  User from-system\n  Port 2222\nMatch final all\n  ConnectTimeout 44\n", 0o666)
	writeFile(t, filepath.Join(sysDir, "sys.d", "a.conf"), "Host h\n  IdentityFile ~/.ssh/sys_key\n", 0o600)

	s, err := resolveSettings("h", nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if s.User != "from-user" || s.Port != 2222 || s.ConnectTimeout != 44*time.Second ||
		!slices.Equal(s.IdentityFiles, []string{filepath.Join(env.Home, ".ssh", "sys_key")}) {
		t.Errorf("user %q port %d timeout %v identities %q; want from-user, 2222 and 44s from the system file, and its included key",
			s.User, s.Port, s.ConnectTimeout, s.IdentityFiles)
	}

	// A named file replaces both, as ssh -F does.
	s, err = resolveSettings("h", map[string]string{"ssh_config_file": user}, env)
	if err != nil || s.User != "from-user" || s.Port != 22 {
		t.Errorf("ssh_config_file: user %q port %d err %v, want from-user, 22 and the system file unread", s.User, s.Port, err)
	}
	// With no system file named, none is read.
	env.SystemConfig = ""
	if s, err := resolveSettings("h", nil, env); err != nil || s.Port != 22 {
		t.Errorf("no system file: port %d err %v, want 22", s.Port, err)
	}
}

func TestConfigRelativeInclude(t *testing.T) {
	env := testEnv(t)
	ssh := filepath.Join(env.Home, ".ssh")
	writeFile(t, filepath.Join(ssh, "config"), "Include conf.d/*\nInclude ~/extra.conf\nHost *\n  User last\n", 0o600)
	writeFile(t, filepath.Join(ssh, "conf.d", "b"), "Host rel-b\n  User b\n", 0o600)
	writeFile(t, filepath.Join(ssh, "conf.d", "a"), "Host rel-*\n  Port 2001\n", 0o600)
	writeFile(t, filepath.Join(env.Home, "extra.conf"), "Host tilde\n  User tilde-user\n", 0o600)
	for _, c := range []struct {
		host, user string
		port       int
	}{{"rel-b", "b", 2001}, {"tilde", "tilde-user", 22}, {"other", "last", 22}} {
		s, err := resolveSettings(c.host, nil, env)
		if err != nil {
			t.Fatalf("%s: %v", c.host, err)
		}
		if s.User != c.user || s.Port != c.port {
			t.Errorf("%s: user %q port %d, want %q %d", c.host, s.User, s.Port, c.user, c.port)
		}
	}

	// Included files are checked like ~/.ssh/config.
	writeFile(t, filepath.Join(ssh, "conf.d", "b"), "Host rel-b\n  User b\n", 0o620)
	if _, err := resolveSettings("rel-b", nil, env); err == nil || !strings.Contains(err.Error(), "conf.d/b") {
		t.Errorf("group-writable include: err %v, want one naming the file", err)
	}
}

func TestConfigIncludeLoop(t *testing.T) {
	env := testEnv(t)
	cfg := filepath.Join(env.Home, "loop")
	writeFile(t, cfg, "Include "+cfg+"\n", 0o600)
	_, err := resolveSettings("h", map[string]string{"ssh_config_file": cfg}, env)
	if err == nil || !strings.Contains(err.Error(), "nested Includes") {
		t.Fatalf("err %v, want one about nested Includes", err)
	}
}

func TestConfigTokens(t *testing.T) {
	env := testEnv(t)
	env.LookupEnv = func(k string) (string, bool) {
		v, ok := map[string]string{"AGENT": "/run/agent.sock", "KEYS": "/keys"}[k]
		return v, ok
	}
	cfg := filepath.Join(env.Home, "cfg")
	writeFile(t, cfg, `Host tok
  HostName Tok.Example.Net
  HostKeyAlias Tok-Key
  ProxyJump first,jumper@last-hop:2200
  IdentityFile ${KEYS}/%l_%L_%i_%k_%j_%n
  IdentityFile /c/%C
  IdentityAgent $AGENT
Host unset-agent
  IdentityAgent $NO_SUCH_AGENT
Host braces
  IdentityAgent ${NO_SUCH_AGENT}
`, 0o600)
	s, err := resolveSettings("tok", map[string]string{"ssh_config_file": cfg}, env)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte("build.example.com" + "tok.example.net" + "22" + "localme" + "last-hop"))
	want := []string{"/keys/build.example.com_build_4242_tok-key_last-hop_tok", "/c/" + hex.EncodeToString(sum[:])}
	if !slices.Equal(s.IdentityFiles, want) {
		t.Errorf("IdentityFiles = %q, want %q", s.IdentityFiles, want)
	}
	if s.IdentityAgent != "/run/agent.sock" {
		t.Errorf("IdentityAgent = %q, want the value of $AGENT", s.IdentityAgent)
	}

	s, err = resolveSettings("unset-agent", map[string]string{"ssh_config_file": cfg}, env)
	if err != nil || s.IdentityAgent != "none" {
		t.Errorf("IdentityAgent $UNSET: %q, %v; want none, as ssh drops the agent", s.IdentityAgent, err)
	}
	_, err = resolveSettings("braces", map[string]string{"ssh_config_file": cfg}, env)
	if err == nil || !strings.Contains(err.Error(), "${NO_SUCH_AGENT} is not set") || !strings.Contains(err.Error(), "cfg:11:") {
		t.Errorf("IdentityAgent ${UNSET}: err %v, want one naming the variable and the line", err)
	}
}

func TestConfigSplitAddr(t *testing.T) {
	for _, c := range []struct {
		addr, user, host string
		port             int
	}{
		{"host", "", "host", 0},
		{"user@host", "user", "host", 0},
		{"host:2222", "", "host", 2222},
		{"user@host:2222", "user", "host", 2222},
		{"[::1]:2222", "", "::1", 2222},
		{"[::1]", "", "::1", 0},
		{"::1", "", "::1", 0},
		{"fe80::1", "", "fe80::1", 0},
		{"me@[fd00::2]:22", "me", "fd00::2", 22},
		{"a@b@host", "a@b", "host", 0},
		{"ssh://me@host:2200", "me", "host", 2200},
		{"10.0.0.5:2222", "", "10.0.0.5", 2222},
	} {
		u, h, p, err := splitAddr(c.addr)
		if err != nil || u != c.user || h != c.host || p != c.port {
			t.Errorf("splitAddr(%q) = %q, %q, %d, %v; want %q, %q, %d", c.addr, u, h, p, err, c.user, c.host, c.port)
		}
	}
}

func TestConfigMatchPattern(t *testing.T) {
	for _, c := range []struct {
		s, p string
		want bool
	}{
		{"web1", "web?", true}, {"web10", "web?", false}, {"web10", "web*", true},
		{"a.example.com", "*.example.com", true}, {"example.com", "*.example.com", false},
		{"abc", "a*b*c", true}, {"abxc", "a*b*c", true}, {"ab", "a*b*c", false},
		{"", "*", true}, {"x", "", false}, {"Web1", "web1", false},
	} {
		if got := matchPattern(c.s, c.p); got != c.want {
			t.Errorf("matchPattern(%q, %q) = %v", c.s, c.p, got)
		}
	}
	if !matchPatternList("web", "db,web", false) || matchPatternList("web", "*,!web", false) || matchPatternList("x", "!y", false) {
		t.Error("matchPatternList: lists and negation")
	}
}

func TestConfigFields(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range fields() {
		if !strings.HasPrefix(f.Name, "ssh_") || f.Type == "" || f.Doc == "" || seen[f.Name] {
			t.Errorf("field %+v: want a unique ssh_ name, a type and a doc", f)
		}
		seen[f.Name] = true
	}
	for _, k := range []string{"ssh_password", "ssh_key_password"} {
		if i := slices.IndexFunc(fields(), func(f connectors.Field) bool { return f.Name == k }); i < 0 || !fields()[i].Secret {
			t.Errorf("%s must be declared secret", k)
		}
	}
	// Every key resolveSettings reads is declared.
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range strings.Split(string(src), `data["`)[1:] {
		if k, _, _ := strings.Cut(m, `"`); !seen[k] {
			t.Errorf("config.go reads data key %q, which fields() does not declare", k)
		}
	}
	for _, k := range []string{"ssh_allow_agent", "ssh_forward_agent"} {
		if !seen[k] {
			t.Errorf("%s not declared", k)
		}
	}
}
