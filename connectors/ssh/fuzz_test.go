package ssh

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzKnownHosts feeds known_hosts files to the parser: whatever the file
// holds, it parses (bad lines become warnings, never an error for the
// whole file), a line the line check accepts is not warned about, and
// checking a key against the result does not panic.
func FuzzKnownHosts(f *testing.F) {
	key := hkPub(f, "ed25519")
	good := hkLine("db1", key)
	for _, s := range []string{
		good,
		"# comment\n\n" + good,
		"@cert-authority *.example.com " + strings.TrimPrefix(good, "db1 "),
		"@revoked * " + strings.TrimPrefix(good, "db1 "),
		"|1|c2FsdA==|aGFzaA== " + strings.TrimPrefix(good, "db1 "),
		"[db1]:2222,!db2,db* " + strings.TrimPrefix(good, "db1 "),
		"db1 ssh-ed25519\n",
		"db1 ssh-rsa AAAA\n",
		"@bogus db1 ssh-ed25519 AAAA\n",
		"[db1:22 ssh-ed25519 AAAA\r\n",
	} {
		f.Add([]byte(s))
	}
	probe := hkPub(f, "ed25519")
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseKnownHosts([]hkSource{{name: "known_hosts", data: data}})
		if err != nil {
			t.Fatalf("the file as a whole was refused: %v", err)
		}
		warned := strings.Join(st.warns, "\n") + "\n"
		for i, line := range bytes.Split(data, []byte("\n")) {
			if _, _, err := parseKnownHostsLine(line); err == nil && strings.Contains(warned, "known_hosts:"+strconv.Itoa(i+1)+":") {
				t.Errorf("line %d passes the line check but was warned about:\n%s", i+1, warned)
			}
		}
		for _, host := range []string{"db1:22", "[db1]:2222", "10.0.0.5:22"} {
			tgt := newHKTarget(host, "")
			st.verify(tgt, probe)
			st.checkRevoked(tgt, probe)
		}
	})
}

// FuzzConfig resolves a host against an ssh_config file and connector
// data: resolution never panics, is deterministic, and what it accepts is
// usable (a host to dial, a valid port, a known strictness, no negative
// durations). Inputs that Include absolute or home paths are skipped: the
// target reads only its own directory.
func FuzzConfig(f *testing.F) {
	for _, s := range []struct{ addr, config, port, jump string }{
		{"db1", "Host db1\n  HostName 10.0.0.5\n  Port 2222\n  User deploy\n", "", ""},
		{"deploy@web:2200", "Host *\n  ServerAliveInterval 30\n  ServerAliveCountMax 2\n  ConnectTimeout 5\n", "", ""},
		{"x", "Match host x user alice\n  IdentityFile ~/.ssh/id_%h_%r\n", "2022", "a,b@c:23"},
		{"x", "Host x\n  ProxyJump none\n  StrictHostKeyChecking no\n  UserKnownHostsFile none\n", "", "none"},
		{"x", "Host=x\n\tHostName=\"%h.example.com\"\n", "", ""},
		{"x", "Include sub\nHost !x *\n  Port 70000\n", "", ""},
		{"[::1]:22", "Host ::1\n  HostKeyAlias h\n  IdentitiesOnly yes\n  IdentityAgent ${SSH_AUTH_SOCK}\n", "", ""},
		{"x", "Match all\n  Port 0\nHost \"a b\n", "65536", ""},
	} {
		f.Add(s.addr, s.config, s.port, s.jump)
	}
	home := f.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		f.Fatal(err)
	}
	env := configEnv{User: "alice", Home: home, LocalHost: "ctl", UID: "1000",
		LookupEnv: func(name string) (string, bool) { return "/run/agent-" + name, name == "SSH_AUTH_SOCK" }}
	f.Fuzz(func(t *testing.T, addr, config, port, jump string) {
		if includesOutside(config) {
			t.Skip("Include of a path outside the target's directory")
		}
		if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		data := map[string]string{"ssh_port": port, "ssh_proxy_jump": jump}
		s, err := resolveSettings(addr, data, env)
		if err != nil {
			return
		}
		again, err := resolveSettings(addr, data, env)
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Fatalf("not deterministic: %+v, then %+v (%v)", s, again, err)
		}
		switch {
		case s.Hostname == "":
			t.Errorf("no host name to dial: %+v", s)
		case s.Port < 1 || s.Port > 65535:
			t.Errorf("port %d accepted", s.Port)
		case s.StrictHostKeyChecking != "yes" && s.StrictHostKeyChecking != "accept-new" && s.StrictHostKeyChecking != "no":
			t.Errorf("strictness %q accepted", s.StrictHostKeyChecking)
		case s.ConnectTimeout < 0 || s.KeepaliveInterval < 0 || s.ConnectRetries < 0 || s.KeepaliveCountMax < 0:
			t.Errorf("negative timeout, interval or count accepted: %+v", s)
		case s.StrictHostKeyChecking != "no" && len(s.KnownHostsFiles) == 0:
			t.Errorf("host keys are checked against no file: %+v", s)
		}
		for _, hop := range s.ProxyJump {
			if hop == "" {
				t.Errorf("empty jump host in %q", s.ProxyJump)
			}
		}
	})
}

// includesOutside reports whether an ssh config may Include files beyond
// ~/.ssh: an absolute or ~ path, or one with a directory in it.
func includesOutside(config string) bool {
	lower := strings.ToLower(config)
	return strings.Contains(lower, "include") && strings.ContainsAny(config, "/~\\$%")
}
