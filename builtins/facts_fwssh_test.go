package builtins

import (
	"reflect"
	"testing"
)

func TestParseIptables(t *testing.T) {
	out := captureText(t, "iptables-save-filter.txt")
	chains := ParseIptablesChains(out)
	want := []IptablesChain{{"INPUT", "ACCEPT"}, {"FORWARD", "DROP"}, {"OUTPUT", "ACCEPT"}, {"WEB", ""}}
	if !reflect.DeepEqual(chains, want) {
		t.Errorf("chains = %v, want %v", chains, want)
	}
	rules := ParseIptablesRules(out)
	if len(rules) != 6 {
		t.Fatalf("%d rules, want 6: %v", len(rules), rules)
	}
	r := rules[2]
	if r.Chain != "INPUT" || r.Spec != "! -s 192.168.0.0/16 -p udp -m udp --sport 53 -j DROP" {
		t.Errorf("rule 2 = %+v", r)
	}
	wantParts := map[string]string{"not_source": "192.168.0.0/16", "protocol": "udp", "source_port": "53", "jump": "DROP"}
	if !reflect.DeepEqual(r.Parts, wantParts) {
		t.Errorf("rule 2 parts = %v, want %v", r.Parts, wantParts)
	}
	if got := rules[4].Args; !reflect.DeepEqual(got, []string{"-m", "comment", "--comment", "hello world", "-j", "WEB"}) {
		t.Errorf("rule 4 args = %q", got)
	}
	if got := rules[5].Parts["log_prefix"]; got != "web: " {
		t.Errorf("log prefix = %q", got)
	}
	nat := ParseIptablesRules(captureText(t, "iptables-save-nat.txt"))
	if len(nat) != 3 || nat[0].Parts["to_destination"] != "10.0.0.2:80" || nat[1].Parts["to_ports"] != "8080" || nat[2].Parts["out_interface"] != "eth0" {
		t.Errorf("nat rules = %+v", nat)
	}
	v6 := ParseIptablesRules(captureText(t, "ip6tables-save-filter.txt"))
	if len(v6) != 1 || v6[0].Parts["source"] != "::1/128" || v6[0].Parts["destination_port"] != "22" {
		t.Errorf("ip6 rules = %+v", v6)
	}
}

func TestSplitIptables(t *testing.T) {
	for in, want := range map[string][]string{
		`-A X -m comment --comment "a \"b\" c" -j Y`: {"-A", "X", "-m", "comment", "--comment", `a "b" c`, "-j", "Y"},
		`-A X  -j   LOG --log-prefix ""`:             {"-A", "X", "-j", "LOG", "--log-prefix", ""},
	} {
		if got := splitIptables(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitIptables(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseUfw(t *testing.T) {
	u := ParseUfw(captureText(t, "ufw-active.txt"))
	if !u.Enabled || u.Logging != "low" {
		t.Errorf("enabled, logging = %v, %q", u.Enabled, u.Logging)
	}
	if want := map[string]string{"incoming": "deny", "outgoing": "allow", "routed": "deny"}; !reflect.DeepEqual(u.Defaults, want) {
		t.Errorf("defaults = %v, want %v", u.Defaults, want)
	}
	want := []string{"allow 22/tcp", "allow from 10.0.0.0/8 to any port 5432 proto tcp comment 'pg'", "deny out to 1.2.3.4",
		"allow in on eth0 to any port 80", "route allow in on eth0 out on eth1", "allow OpenSSH"}
	if !reflect.DeepEqual(u.Rules, want) {
		t.Errorf("rules = %q, want %q", u.Rules, want)
	}
	if u := ParseUfw(""); u.Enabled || u.Logging != "off" || len(u.Rules) != 0 {
		t.Errorf("empty = %+v", u)
	}
}

func TestParseSELinux(t *testing.T) {
	if got := ParseGetenforce(captureText(t, "getenforce-disabled.txt")); got != "disabled" {
		t.Errorf("getenforce capture = %q", got)
	}
	for in, want := range map[string]string{"Enforcing\n": "enforcing", "Permissive": "permissive", "": "disabled"} {
		if got := ParseGetenforce(in); got != want {
			t.Errorf("ParseGetenforce(%q) = %q, want %q", in, got, want)
		}
	}
	// getsebool(8)'s format; no SELinux kernel here to capture from.
	b := ParseGetsebool("httpd_can_network_connect --> off\nhttpd_enable_homedirs --> on\ngetsebool:  SELinux is disabled\n")
	if want := map[string]bool{"httpd_can_network_connect": false, "httpd_enable_homedirs": true}; !reflect.DeepEqual(b, want) {
		t.Errorf("booleans = %v", b)
	}
	// semanage-port(8)'s format.
	p := ParseSemanagePorts("http_port_t                    tcp      80, 81, 443\nssh_port_t tcp 22\nunreserved_port_t              udp      61000-65535, 1024-32767\n")
	want := map[string]string{"tcp/80": "http_port_t", "tcp/81": "http_port_t", "tcp/443": "http_port_t", "tcp/22": "ssh_port_t",
		"udp/61000-65535": "unreserved_port_t", "udp/1024-32767": "unreserved_port_t"}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("ports = %v", p)
	}
}

func TestParseSystemdUnits(t *testing.T) {
	units := ParseSystemdUnits(captureText(t, "systemd-units.txt"))
	ssh := units["ssh.service"]
	if want := (SystemdListedUnit{Loaded: true, LoadState: "loaded", ActiveState: "active", SubState: "running",
		Description: "OpenBSD Secure Shell server", UnitFileState: "enabled"}); ssh != want {
		t.Errorf("ssh.service = %+v, want %+v", ssh, want)
	}
	if u := units["ufw.service"]; u.ActiveState != "failed" {
		t.Errorf("ufw.service = %+v", u)
	}
	if u := units["getty@.service"]; u.Loaded || u.UnitFileState != "enabled" {
		t.Errorf("getty@.service (a template: a unit file only) = %+v", u)
	}
	if u := units["sshd.service"]; u.UnitFileState != "alias" {
		t.Errorf("sshd.service = %+v", u)
	}
	if u := units["-.mount"]; !u.Loaded || u.ActiveState != "active" {
		t.Errorf("-.mount = %+v", u)
	}
}

func TestParseServiceStatus(t *testing.T) {
	yes, no := true, false
	deref := func(m map[string]*bool) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if v == nil {
				out[k] = nil
			} else {
				out[k] = *v
			}
		}
		return out
	}
	sysv := deref(ParseServiceStatus(captureText(t, "service-status-sysvinit.txt")))
	if want := map[string]any{"hwclock.sh": no, "procps": yes, "ssh": yes, "sudo": yes, "ufw": yes}; !reflect.DeepEqual(sysv, want) {
		t.Errorf("sysvinit = %v, want %v", sysv, want)
	}
	rc := deref(ParseServiceStatus(captureText(t, "service-status-openrc.txt")))
	if rc["ssh"] != no || rc["savecache"] != no || len(rc) != 6 {
		t.Errorf("openrc = %v", rc)
	}
	// rc-status's line for a started service (the capture's host was not
	// booted by OpenRC, so it has none): the same columns.
	one := deref(ParseServiceStatus("openrc\n sshd                                                              [  started  ]\n crond  [  started 00:12:09 (0) ]\n x [ crashed ]\n y [ starting ]\n"))
	if want := map[string]any{"sshd": yes, "crond": yes, "x": no, "y": nil}; !reflect.DeepEqual(one, want) {
		t.Errorf("openrc started = %v, want %v", one, want)
	}
	if got := ParseServiceStatus("sysvinit\nfoo=4\nbar=3\n"); got["foo"] != nil || *got["bar"] {
		t.Errorf("codes = %v", got)
	}
}
