package builtins

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/star-deploy/star-deploy/connectors"
	"go.starlark.net/starlark"
)

// fwsshFacts are the facts behind the firewall, SELinux and service
// modules: iptables rules and chains, ufw's state, the SELinux mode and
// booleans, every systemd unit, and the status of sysvinit and OpenRC
// services. Each reads with one command and parses in Go.
func fwsshFacts() []factDef {
	return []factDef{
		{Name: "iptables_rules", Args: []string{"table"}, Doc: "The IPv4 rules of an iptables table (`filter`, `nat`, `mangle`, `raw`, `security`) as `iptables-save -t TABLE` prints them: a list, in order, of structs with `.chain`, `.spec` (the rule after `-A CHAIN`, as iptables-save normalised it: `-s 10.0.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT`), `.args` (its words, quotes removed), `.jump`, and the pyinfra-named parts `.protocol`, `.source`, `.destination`, `.in_interface`, `.out_interface`, their negations `.not_protocol`, ... (`! -s`), `.destination_port`, `.source_port`, `.to_destination`, `.to_source`, `.to_ports`, `.log_prefix` (None where the rule has none). Empty when iptables is not installed. Reading needs root and, in a container, CAP_NET_ADMIN.",
			Example: `for r in fact("iptables_rules", "filter"):
    if r.chain == "INPUT" and r.destination_port == "22":
        print(r.spec)`, read: readIptablesRules(4)},
		{Name: "ip6tables_rules", Args: []string{"table"}, Doc: "The IPv6 rules of an ip6tables table, from `ip6tables-save -t TABLE`, in the form of `iptables_rules`.",
			Example: `print(len(fact("ip6tables_rules", "filter")))`, read: readIptablesRules(6)},
		{Name: "iptables_chains", Args: []string{"table"}, Doc: "The IPv4 chains of an iptables table, from `iptables-save -t TABLE`: a dict from chain name to its policy (`ACCEPT`, `DROP`), None for a user-defined chain (which has no policy). Empty when iptables is not installed.",
			Example: `if fact("iptables_chains", "filter").get("INPUT") != "DROP":
    print("INPUT accepts by default")`, read: readIptablesChains(4)},
		{Name: "ip6tables_chains", Args: []string{"table"}, Doc: "The IPv6 chains of an ip6tables table, from `ip6tables-save -t TABLE`, in the form of `iptables_chains`.",
			Example: `print(fact("ip6tables_chains", "filter"))`, read: readIptablesChains(6)},
		{Name: "ufw_status", Doc: "ufw's configuration, or None when ufw is not installed: a struct with `.enabled` (ENABLED= of /etc/ufw/ufw.conf: the firewall is on and starts at boot), `.logging` (`off`, `low`, `medium`, `high`, `full`), `.defaults` (a dict from `incoming`, `outgoing`, `routed` to `allow`, `deny` or `reject`, from /etc/default/ufw) and `.rules` (the rules as `ufw show added` lists them, without the leading `ufw`: `allow 22/tcp`). It is read from ufw's files and `ufw show added`, which need root but no running firewall (`ufw status` needs CAP_NET_ADMIN).",
			Example: `u = fact("ufw_status")
if u and not u.enabled:
    print("ufw is off; rules:", u.rules)`, read: readUfwStatus},
		{Name: "selinux", Doc: "The SELinux mode: `enforcing`, `permissive` or `disabled` (also when the host has no SELinux tools), from `getenforce`.",
			Example: `if fact("selinux") == "enforcing":
    print("SELinux enforces")`, read: readSELinux},
		{Name: "selinux_booleans", Doc: "The SELinux booleans from `getsebool -a`, as a dict from name to True (on) or False (off); empty when SELinux is disabled or getsebool is not installed.",
			Example: `if not fact("selinux_booleans").get("httpd_can_network_connect", False):
    print("httpd may not connect out")`, read: readSELinuxBooleans},
		{Name: "selinux_ports", Doc: "The SELinux types of network ports from `semanage port -l`: a dict from `PROTOCOL/PORT` (`tcp/22`) or `PROTOCOL/LOW-HIGH` (`tcp/1024-32767`), as listed, to the type (`ssh_port_t`); empty when SELinux is disabled or semanage is not installed. Needs root.",
			Example: `print(fact("selinux_ports").get("tcp/8080"))`, read: readSELinuxPorts},
		{Name: "systemd_units", Doc: "Every systemd unit, from `systemctl list-units --all` and `systemctl list-unit-files`: a dict from unit name (`nginx.service`, `apt-daily.timer`) to a struct with `.load_state`, `.active_state`, `.sub_state` and `.description` (None for a unit that has a unit file but is not loaded) and `.unit_file_state` (`enabled`, `disabled`, `static`, ...; None for a unit without a unit file). Fails when systemd is not running (see `fact(\"init_system\")`).",
			Example: `for unit, u in fact("systemd_units").items():
    if u.active_state == "failed":
        print(unit, "failed")`, read: readSystemdUnits},
		{Name: "service_status", Doc: "Whether each service of a host without systemd runs: a dict from service name to True (running), False (stopped) or None (the script cannot tell). On OpenRC from `rc-status --all` (`started` is True; `stopped`, `crashed` and the like False); on sysvinit from running each LSB script in /etc/init.d (one with a `### BEGIN INIT INFO` block) with `status`: exit 0 is True, 1 to 3 False, anything else None. Empty on other hosts.",
			Example: `if not fact("service_status").get("ssh"):
    print("sshd is not running")`, read: readServiceStatus},
	}
}

var iptablesTable = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]+$`) })

// iptablesSave runs (ip6)iptables-save for table once per host and run,
// shared by the rules and chains facts. "" means iptables is not
// installed.
func iptablesSave(ctx context.Context, h *Host, ctl Control, version int, table string) (string, error) {
	if !iptablesTable().MatchString(table) {
		return "", fmt.Errorf("%q is not an iptables table (filter, nat, mangle, raw or security)", table)
	}
	cmd := "iptables-save"
	if version == 6 {
		cmd = "ip6tables-save"
	}
	def := factDef{Name: cmd, read: func(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
		res, err := h.probeResult(ctx, ctl, fmt.Sprintf("command -v %s >/dev/null 2>&1 || exit 127; %s -t %s", cmd, cmd, args[0]))
		if err != nil {
			return nil, err
		}
		switch res.ExitCode {
		case 0:
			return starlark.String(res.Stdout), nil
		case 127:
			return starlark.String(""), nil
		}
		return nil, fmt.Errorf("%s -t %s exited with status %d: %s (it needs root, sudo = True, and in a container CAP_NET_ADMIN)",
			cmd, args[0], res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}}
	v, err := h.readFact(ctx, def, ctl, []string{table})
	if err != nil {
		return "", err
	}
	return string(v.(starlark.String)), nil
}

func readIptablesRules(version int) readFunc {
	return func(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
		out, err := iptablesSave(ctx, h, ctl, version, args[0])
		if err != nil {
			return nil, err
		}
		return valueList(ParseIptablesRules(out)), nil
	}
}

func readIptablesChains(version int) readFunc {
	return func(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
		out, err := iptablesSave(ctx, h, ctl, version, args[0])
		if err != nil {
			return nil, err
		}
		chains := ParseIptablesChains(out)
		d := starlark.NewDict(len(chains))
		for _, c := range chains {
			var p starlark.Value = starlark.None
			if c.Policy != "" {
				p = starlark.String(c.Policy)
			}
			_ = d.SetKey(starlark.String(c.Name), p)
		}
		return d, nil
	}
}

// IptablesChain is a chain line (":INPUT ACCEPT [0:0]") of iptables-save.
type IptablesChain struct {
	Name   string
	Policy string // "" for a user-defined chain ("-")
}

// ParseIptablesChains returns the chains of iptables-save output, in order.
func ParseIptablesChains(out string) []IptablesChain {
	var chains []IptablesChain
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, ":") {
			continue
		}
		f := strings.Fields(line[1:])
		if len(f) < 2 {
			continue
		}
		c := IptablesChain{Name: f[0]}
		if f[1] != "-" {
			c.Policy = f[1]
		}
		chains = append(chains, c)
	}
	return chains
}

// IptablesRule is one "-A CHAIN ..." line of iptables-save.
type IptablesRule struct {
	Chain string
	Spec  string   // the line after "-A CHAIN "
	Args  []string // Spec's words, unquoted
	// Parts maps the pyinfra names (jump, protocol, not_source,
	// destination_port, log_prefix, ...) to their values.
	Parts map[string]string
}

// iptablesParts names the options of a rule after pyinfra's arguments;
// their negation ("! -s") gets the prefix not_.
var iptablesParts = map[string]string{
	"-j": "jump", "-p": "protocol", "-s": "source", "-d": "destination",
	"-i": "in_interface", "-o": "out_interface",
	"--dport": "destination_port", "--sport": "source_port",
	"--log-prefix": "log_prefix", "--to-destination": "to_destination",
	"--to-source": "to_source", "--to-ports": "to_ports",
}

// iptablesPartNames are the struct fields every rule has, set or None.
var iptablesPartNames = []string{"jump", "protocol", "source", "destination", "in_interface", "out_interface",
	"not_protocol", "not_source", "not_destination", "not_in_interface", "not_out_interface",
	"destination_port", "source_port", "log_prefix", "to_destination", "to_source", "to_ports"}

// ParseIptablesRules returns the rules of iptables-save output, in order.
func ParseIptablesRules(out string) []IptablesRule {
	var rules []IptablesRule
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		words := splitIptables(line)
		if len(words) < 2 {
			continue
		}
		r := IptablesRule{Chain: words[1], Args: words[2:], Parts: map[string]string{}}
		_, r.Spec, _ = strings.Cut(strings.TrimPrefix(line, "-A "), " ")
		r.Spec = strings.TrimSpace(r.Spec)
		if r.Args == nil {
			r.Args = []string{}
		}
		for i := 0; i < len(r.Args); i++ {
			neg := r.Args[i] == "!"
			j := i
			if neg {
				j++
			}
			if j+1 >= len(r.Args) {
				break
			}
			name, ok := iptablesParts[r.Args[j]]
			if !ok {
				continue
			}
			if neg {
				name = "not_" + name
			}
			if _, seen := r.Parts[name]; !seen {
				r.Parts[name] = r.Args[j+1]
			}
			i = j + 1
		}
		rules = append(rules, r)
	}
	return rules
}

// splitIptables splits a line of iptables-save into words: it quotes a
// word with spaces in double quotes, with \" and \\ inside.
func splitIptables(line string) []string {
	var words []string
	var b strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
		case c == '"':
			quoted, in = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				words = append(words, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, b.String())
	}
	return words
}

func (r IptablesRule) value() starlark.Value {
	d := starlark.StringDict{
		"chain": starlark.String(r.Chain),
		"spec":  starlark.String(r.Spec),
		"args":  strList(r.Args),
	}
	for _, n := range iptablesPartNames {
		if v, ok := r.Parts[n]; ok {
			d[n] = starlark.String(v)
		} else {
			d[n] = starlark.None
		}
	}
	return newStruct("iptables_rule", d)
}

const ufwProbe = `command -v ufw >/dev/null 2>&1 || exit 3
cat /etc/ufw/ufw.conf 2>/dev/null; echo '--star-deploy--'
cat /etc/default/ufw 2>/dev/null; echo '--star-deploy--'
ufw show added`

func readUfwStatus(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, found, err := h.probeFound(ctx, ctl, ufwProbe, func(res connectors.Result) error {
		return fmt.Errorf("ufw show added exited with status %d: %s (it needs root: sudo = True)", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	})
	if !found {
		return starlark.None, err
	}
	u := ParseUfw(out)
	defaults := starlark.NewDict(3)
	for _, k := range []string{"incoming", "outgoing", "routed"} {
		_ = defaults.SetKey(starlark.String(k), starlark.String(u.Defaults[k]))
	}
	return newStruct("ufw_status", starlark.StringDict{
		"enabled":  starlark.Bool(u.Enabled),
		"logging":  starlark.String(u.Logging),
		"defaults": defaults,
		"rules":    strList(u.Rules),
	}), nil
}

// Ufw is ufw's configuration as ufwProbe prints it.
type Ufw struct {
	Enabled  bool
	Logging  string
	Defaults map[string]string // incoming, outgoing, routed -> allow, deny, reject
	Rules    []string          // "allow 22/tcp"
}

// ParseUfw parses ufwProbe's output: ufw.conf, /etc/default/ufw and
// `ufw show added`, separated by --star-deploy-- lines.
func ParseUfw(out string) Ufw {
	parts := strings.SplitN(out, "--star-deploy--\n", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	conf, defs := shellAssignments(parts[0]), shellAssignments(parts[1])
	u := Ufw{Enabled: conf["ENABLED"] == "yes", Logging: conf["LOGLEVEL"], Defaults: map[string]string{}}
	if u.Logging == "" {
		u.Logging = "off"
	}
	for k, v := range map[string]string{"incoming": "DEFAULT_INPUT_POLICY", "outgoing": "DEFAULT_OUTPUT_POLICY", "routed": "DEFAULT_FORWARD_POLICY"} {
		switch defs[v] {
		case "ACCEPT":
			u.Defaults[k] = "allow"
		case "DROP":
			u.Defaults[k] = "deny"
		case "REJECT":
			u.Defaults[k] = "reject"
		default:
			u.Defaults[k] = strings.ToLower(defs[v])
		}
	}
	u.Rules = []string{}
	for _, line := range strings.Split(parts[2], "\n") {
		if r, ok := strings.CutPrefix(strings.TrimSpace(line), "ufw "); ok {
			u.Rules = append(u.Rules, r)
		}
	}
	return u
}

// shellAssignments reads KEY=VALUE lines of a shell-style configuration
// file, with the value's double or single quotes removed.
func shellAssignments(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") || strings.ContainsAny(k, " \t") {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		m[k] = v
	}
	return m
}

func readSELinux(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, `if command -v getenforce >/dev/null 2>&1; then getenforce 2>/dev/null || echo Disabled; else echo Disabled; fi`)
	if err != nil {
		return nil, err
	}
	return starlark.String(ParseGetenforce(out)), nil
}

// ParseGetenforce returns getenforce's mode in lower case: enforcing,
// permissive or disabled.
func ParseGetenforce(out string) string {
	switch m := strings.ToLower(strings.TrimSpace(out)); m {
	case "enforcing", "permissive":
		return m
	}
	return "disabled"
}

func readSELinuxBooleans(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, `command -v getsebool >/dev/null 2>&1 || exit 0; getsebool -a 2>/dev/null || true`)
	if err != nil {
		return nil, err
	}
	return structDict(ParseGetsebool(out), func(on bool) starlark.Value { return starlark.Bool(on) }), nil
}

// ParseGetsebool parses `getsebool -a` lines ("httpd_can_network_connect
// --> off") into name -> on.
func ParseGetsebool(out string) map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, " --> ")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k != "" && (v == "on" || v == "off") {
			m[k] = v == "on"
		}
	}
	return m
}

const systemdUnitsProbe = `systemctl list-units --all --plain --no-legend --no-pager --full || exit 3
echo '--star-deploy--'
systemctl list-unit-files --plain --no-legend --no-pager --full || exit 3`

func readSystemdUnits(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, code, err := h.probeExit(ctx, ctl, systemdUnitsProbe)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("systemctl list-units exited with status %d (is systemd running on the host? see fact(\"init_system\"))", code)
	}
	opt := func(s string, ok bool) starlark.Value {
		if !ok {
			return starlark.None
		}
		return starlark.String(s)
	}
	return structDict(ParseSystemdUnits(out), func(u SystemdListedUnit) starlark.Value {
		return newStruct("systemd_units", starlark.StringDict{
			"load_state":      opt(u.LoadState, u.Loaded),
			"active_state":    opt(u.ActiveState, u.Loaded),
			"sub_state":       opt(u.SubState, u.Loaded),
			"description":     opt(u.Description, u.Loaded),
			"unit_file_state": opt(u.UnitFileState, u.UnitFileState != ""),
		})
	}), nil
}

// SystemdListedUnit is one unit of `systemctl list-units` and
// `systemctl list-unit-files`.
type SystemdListedUnit struct {
	Loaded                                        bool // listed by list-units
	LoadState, ActiveState, SubState, Description string
	UnitFileState                                 string // "" without a unit file
}

// ParseSystemdUnits parses systemdUnitsProbe's output.
func ParseSystemdUnits(out string) map[string]SystemdListedUnit {
	units, files, _ := strings.Cut(out, "--star-deploy--\n")
	m := map[string]SystemdListedUnit{}
	for _, line := range strings.Split(units, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		u := m[f[0]]
		u.Loaded, u.LoadState, u.ActiveState, u.SubState = true, f[1], f[2], f[3]
		u.Description = strings.Join(f[4:], " ")
		m[f[0]] = u
	}
	for _, line := range strings.Split(files, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[0], ".") {
			continue
		}
		u := m[f[0]]
		u.UnitFileState = f[1]
		m[f[0]] = u
	}
	return m
}

const serviceStatusProbe = `if command -v rc-status >/dev/null 2>&1; then
  echo openrc; rc-status --all 2>/dev/null; exit 0
fi
echo sysvinit
[ -d /etc/init.d ] || exit 0
for s in /etc/init.d/*; do
  [ -f "$s" ] && [ -x "$s" ] && grep -q '### BEGIN INIT INFO' "$s" 2>/dev/null || continue
  "$s" status >/dev/null 2>&1 </dev/null
  echo "${s##*/}=$?"
done`

func readServiceStatus(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, serviceStatusProbe)
	if err != nil {
		return nil, err
	}
	return structDict(ParseServiceStatus(out), func(running *bool) starlark.Value {
		if running == nil {
			return starlark.None
		}
		return starlark.Bool(*running)
	}), nil
}

var openrcLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\s*(\S+)\s+\[\s*([a-z]+)[^\]]*\]`) })

// ParseServiceStatus parses serviceStatusProbe's output: "openrc" and
// rc-status lines (" sshd   [  started  ]"), or "sysvinit" and NAME=CODE
// lines with the exit code of the LSB script's status.
func ParseServiceStatus(out string) map[string]*bool {
	kind, rest, _ := strings.Cut(out, "\n")
	m := map[string]*bool{}
	yes, no := true, false
	for _, line := range strings.Split(rest, "\n") {
		switch strings.TrimSpace(kind) {
		case "openrc":
			mm := openrcLine().FindStringSubmatch(line)
			if mm == nil {
				continue
			}
			switch mm[2] {
			case "started":
				m[mm[1]] = &yes
			case "stopped", "crashed", "inactive", "failed":
				m[mm[1]] = &no
			default: // starting, stopping, hotplugged, ...
				if _, seen := m[mm[1]]; !seen {
					m[mm[1]] = nil
				}
			}
		case "sysvinit":
			name, code, ok := strings.Cut(strings.TrimSpace(line), "=")
			n, err := strconv.Atoi(code)
			if !ok || err != nil || name == "" {
				continue
			}
			switch {
			case n == 0:
				m[name] = &yes
			case n >= 1 && n <= 3:
				m[name] = &no
			default:
				m[name] = nil
			}
		}
	}
	return m
}

func readSELinuxPorts(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, `command -v semanage >/dev/null 2>&1 || exit 0; semanage port -l -n 2>/dev/null || true`)
	if err != nil {
		return nil, err
	}
	return stringDict(ParseSemanagePorts(out)), nil
}

var semanagePort = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\w+)\s+(tcp|udp|sctp|dccp)\s+([0-9][0-9, -]*)$`) })

// ParseSemanagePorts parses `semanage port -l -n` lines ("http_port_t
// tcp 80, 81, 443, 8008-8009") into "tcp/80" -> "http_port_t"; the first
// type listed for a port wins.
func ParseSemanagePorts(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		mm := semanagePort().FindStringSubmatch(strings.TrimSpace(line))
		if mm == nil {
			continue
		}
		for _, p := range strings.Split(mm[3], ",") {
			if p = strings.TrimSpace(p); p != "" {
				k := mm[2] + "/" + p
				if _, seen := m[k]; !seen {
					m[k] = mm[1]
				}
			}
		}
	}
	return m
}
