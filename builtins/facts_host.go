package builtins

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/star-deploy/star-deploy/connectors"
)

// hostFacts describe the machine: hardware, kernel, network, disks,
// processes, the login environment and sshd's configuration. Each reads
// with one command (the network facts share theirs) and parses in Go; where
// a tool may be missing (busybox systems, minimal containers) the probe
// falls back to another one or to /proc and /sys, and says which it used on
// a marker line ("-- ss") that the parser reads.
func hostFacts() []factDef {
	return []factDef{
		{Name: "cpus", Doc: "The number of online CPUs (`getconf _NPROCESSORS_ONLN`, else `nproc`, else /proc/cpuinfo), as an int. pyinfra: `hardware.Cpus`.",
			Example: `workers = 2 * fact("cpus")`, read: readCpus},
		{Name: "memory", Doc: "The memory of the host from /proc/meminfo (Linux only), as a struct of byte counts: `.total`, `.available` (what can be used without swapping: MemAvailable, or free + buffers + cache on kernels before 3.14), `.free`, `.swap_total` and `.swap_free`. pyinfra's `hardware.Memory` is the total in MB: `fact(\"memory\").total // (1024 * 1024)`.",
			Example: `if fact("memory").total < 2 * 1024 * 1024 * 1024:
    print("less than 2 GiB of memory")`, read: readMemory},
		{Name: "kernel", Doc: "The kernel, from `uname`: a struct with `.name` (`uname -s`: `Linux`), `.release` (`uname -r`: `6.1.0-18-amd64`) and `.version` (`uname -v`). pyinfra has `server.Kernel` (the name) and `server.KernelVersion` (the release): here they are `.name` and `.release` of one fact.",
			Example: `if fact("kernel").release.startswith("6."):
    print("kernel 6")`, read: readKernel},
		{Name: "kernel_modules", Doc: "The loaded kernel modules, from /proc/modules (what `lsmod` prints): a dict from module name to a struct with `.size` (bytes), `.instances` (use count), `.deps` (the modules using it, a list) and `.state` (`Live`, `Loading`, `Unloading`). Empty when the kernel has no module support. As pyinfra's `server.KernelModules`, with `.deps` for its `depends` (here always a list).",
			Example: `if "br_netfilter" not in fact("kernel_modules"):
    print("br_netfilter is not loaded")`, read: readKernelModules},
		{Name: "locales", Doc: "The locales `locale -a` lists, with `utf8` written `UTF-8` as in /etc/locale.gen (`C.UTF-8`, `en_US.UTF-8`), as pyinfra's `server.Locales`. Empty when the host has no `locale` command (busybox).",
			Example: `if "en_US.UTF-8" not in fact("locales"):
    print("en_US.UTF-8 is not generated")`, read: readLocales},
		{Name: "timezone", Doc: "The host's time zone name (`Europe/Paris`), from the /etc/localtime link, else /etc/timezone, else `timedatectl`; `UTC` when there is no /etc/localtime at all (what the C library then uses), None when /etc/localtime is a copy that nothing names. pyinfra has no such fact.",
			Example: `if fact("timezone") != "Etc/UTC":
    print("not on UTC")`, read: readTimezone, Paths: []string{"/etc/localtime", "/etc/timezone"}},
		{Name: "hostname_fqdn", Doc: "The host's fully qualified name as `hostname -f` resolves it; the short name (`hostname`, else `uname -n`) when it does not resolve. pyinfra has only `server.Hostname` (the `hostname` fact here).",
			Example: `print(fact("hostname_fqdn"))`, read: readHostnameFQDN},
		{Name: "ipv4_addresses", Doc: "The IPv4 addresses of each network interface, without prefix length: a dict from interface name to a list (`{\"lo\": [\"127.0.0.1\"], \"eth0\": [\"192.0.2.2\"]}`), interfaces without one left out. Read with `ip -o addr`, else `ifconfig -a`, else from /proc/net (fib_trie, route, if_inet6: an IPv4 address is then given the interface of the directly connected route that holds it, and is left out without one). This is the shape of pyinfra v3's `hardware.Ipv4Addrs`; pyinfra's older `Ipv4Addresses` gave one address per interface.",
			Example: `for addr in fact("ipv4_addresses").get("eth0", []):
    print(addr)`, read: readIPv4},
		{Name: "ipv6_addresses", Doc: "The IPv6 addresses of each network interface, as `ipv4_addresses` (pyinfra v3's `hardware.Ipv6Addrs`); link-local ones (`fe80::`) included.",
			Example: `print(fact("ipv6_addresses").get("lo", []))`, read: readIPv6},
		{Name: "network_interfaces", Doc: "The network interfaces from /sys/class/net: a dict from name to a struct with `.mac` (None when it has none), `.mtu` (int), `.state` (the kernel's operstate: `up`, `down`, `unknown`, ...) and `.addresses` (its IPv4 then IPv6 addresses with prefix length, `192.0.2.2/24`, read as `ipv4_addresses` reads them). pyinfra's `hardware.NetworkDevices` is the same information in another shape.",
			Example: `for name, i in fact("network_interfaces").items():
    print(name, i.state, i.addresses)`, read: readNetworkInterfaces},
		{Name: "block_devices", Doc: "The block devices: a dict from kernel name (`sda`, `sda1`, `nvme0n1p2`) to a struct with `.size` (bytes), `.type` (`disk`, `part`, `loop`, `rom`, `lvm`, `crypt`, ...) and `.mountpoint` (None when not mounted). Read with `lsblk -J -b`, else from /sys/block and /proc/mounts (then device-mapper devices are typed `dm`). Not pyinfra's `hardware.BlockDevices`, which lists mounted file systems with their usage: that is `disk_usage` here.",
			Example: `for name, d in fact("block_devices").items():
    if d.type == "disk":
        print(name, d.size)`, read: readBlockDevices},
		{Name: "disk_usage", Doc: "The usage of each mounted file system from `df -P -k`: a dict from mount point to a struct with `.device`, `.total`, `.used` and `.available` (bytes) and `.percent` (the used percentage df prints, an int, None where df prints `-`). File systems df cannot read are left out. pyinfra's `hardware.BlockDevices` has this, keyed by device and counted in KiB.",
			Example: `if fact("disk_usage")["/"].percent > 90:
    print("/ is almost full")`, read: readDiskUsage},
		{Name: "listening_ports", Doc: "The listening TCP sockets and bound UDP sockets, from `ss -Htlnup`, else `netstat -tlnu(p)`, else /proc/net/{tcp,tcp6,udp,udp6}: a list of structs with `.proto` (`tcp` or `udp`), `.address` (`0.0.0.0`, `::`, `127.0.0.1`, `*` for any), `.port` (int), `.process` (its command name) and `.pid`; the last two are None when the tool does not say (other users' sockets unless read with `sudo=True`; always from /proc). pyinfra has no such fact.",
			Example: `if not [p for p in fact("listening_ports") if p.proto == "tcp" and p.port == 80]:
    print("nothing listens on port 80")`, read: readListeningPorts},
		{Name: "processes", Doc: "The running processes from `ps`: a dict from pid (int) to a struct with `.user`, `.command` (the command name, at most 15 characters on Linux) and `.args` (the command line, one string). A user name longer than 64 characters reads as its uid. pyinfra has no such fact.",
			Example: `for pid, p in fact("processes").items():
    if p.user == "www-data":
        print(pid, p.args)`, read: readProcesses},
		{Name: "process", Args: []string{"command"}, Doc: "The pids (a sorted list of ints) of the processes whose command name is command, or whose first argument's base name is (so that names longer than the 15 characters Linux keeps match); `[]` when none runs. Read from the `processes` fact, so several calls cost one probe.",
			Example: `if not fact("process", "nginx"):
    print("nginx is not running")`, read: readProcess},
		{Name: "environment", Doc: "The environment variables that commands on the host run with (those of the connection's login, plus what the control arguments add), from `env -0` (else `env`, where a value with a newline cannot be told from a new variable): a dict from name to value. pyinfra has no such fact.",
			Example: `print(fact("environment").get("LANG"))`, read: readEnvironment},
		{Name: "find_files", Args: []string{"path", "pattern"}, Doc: "The regular files below the directory path whose name matches the shell pattern (`*.conf`; `*` for all), as `find PATH -type f -name PATTERN` lists them: a sorted list of paths that start with path. None when path is not a directory; entries below subdirectories find cannot read are left out. pyinfra's `files.FindFiles` takes only the path.",
			Example: `for p in fact("find_files", "/etc/nginx/sites-enabled", "*"):
    print(p)`, read: readFindFiles},
		{Name: "find_directories", Args: []string{"path", "pattern"}, Doc: "The directories below path (path itself included when it matches) whose name matches pattern, as `find_files` finds files (pyinfra's `files.FindDirectories`).",
			Example: `print(fact("find_directories", "/srv", "releases"))`, read: readFindDirectories},
		{Name: "sshd_config", Doc: "sshd's configuration: a dict from lower-case keyword to its value, a string, or a list of strings for the keywords that take many (`port`, `listenaddress`, `hostkey`, `acceptenv`, `allowusers`, `denyusers`, `allowgroups`, `denygroups`, `subsystem`, `setenv`, `hostcertificate`). Read as root from `sshd -T` (the effective values, defaults included), else parsed from /etc/ssh/sshd_config and the files of /etc/ssh/sshd_config.d/ it includes (only what they set: the first value of a keyword wins, `Match` blocks are left out). None when there is no /etc/ssh/sshd_config. pyinfra has no such fact.",
			Example: `if fact("sshd_config", sudo=True).get("passwordauthentication") != "no":
    print("password logins are on")`, read: readSSHDConfig, Paths: []string{"/etc/ssh"}},
	}
}

// sections splits a probe's output at its marker lines ("-- NAME"),
// returning the sections in order: the marker's NAME and the text after it.
// Text before the first marker has the name "".
func sections(out string) []section {
	var secs []section
	cur := section{}
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "-- "); ok {
			cur.text = b.String()
			secs = append(secs, cur)
			cur, b = section{name: name}, strings.Builder{}
			continue
		}
		b.WriteString(line)
	}
	cur.text = b.String()
	return append(secs, cur)
}

type section struct{ name, text string }

// lines returns the non-blank lines of s, trimmed of trailing space.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, " \t\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// --- cpus, memory, kernel, modules, locales, timezone, fqdn

const cpusProbe = `getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo`

func readCpus(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, cpusProbe)
	if err != nil {
		return nil, err
	}
	n, err := parseCpus(out)
	if err != nil {
		return nil, err
	}
	return starlark.MakeInt(n), nil
}

func parseCpus(out string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("cannot count the CPUs: unexpected output %q", strings.TrimSpace(out))
	}
	return n, nil
}

// Memory is the memory fact, in bytes.
type Memory struct{ Total, Available, Free, SwapTotal, SwapFree int64 }

func readMemory(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, code, err := h.probeExit(ctx, ctl, "cat /proc/meminfo 2>/dev/null")
	if err != nil {
		return nil, err
	}
	m, ok := parseMeminfo(out)
	if code != 0 || !ok {
		return nil, fmt.Errorf("no /proc/meminfo to read the memory from (the memory fact reads Linux's)")
	}
	return newStruct("memory", starlark.StringDict{
		"total":      starlark.MakeInt64(m.Total),
		"available":  starlark.MakeInt64(m.Available),
		"free":       starlark.MakeInt64(m.Free),
		"swap_total": starlark.MakeInt64(m.SwapTotal),
		"swap_free":  starlark.MakeInt64(m.SwapFree),
	}), nil
}

// parseMeminfo reads /proc/meminfo ("MemTotal:  16314312 kB"); ok is false
// without a MemTotal.
func parseMeminfo(out string) (Memory, bool) {
	kb := map[string]int64{}
	for _, l := range lines(out) {
		k, v, ok := strings.Cut(l, ":")
		f := strings.Fields(v)
		if !ok || len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		kb[k] = n
	}
	total, ok := kb["MemTotal"]
	avail, has := kb["MemAvailable"]
	if !has {
		avail = kb["MemFree"] + kb["Buffers"] + kb["Cached"]
	}
	return Memory{Total: total, Available: avail, Free: kb["MemFree"], SwapTotal: kb["SwapTotal"], SwapFree: kb["SwapFree"]}, ok
}

func readKernel(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, "uname -s; uname -r; uname -v")
	if err != nil {
		return nil, err
	}
	l := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(l) != 3 {
		return nil, fmt.Errorf("uname: unexpected output %q", out)
	}
	return newStruct("kernel", starlark.StringDict{
		"name":    starlark.String(l[0]),
		"release": starlark.String(l[1]),
		"version": starlark.String(l[2]),
	}), nil
}

// KernelModule is one line of /proc/modules.
type KernelModule struct {
	Size, Instances int64
	Deps            []string
	State           string
}

func readKernelModules(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, "if [ -r /proc/modules ]; then cat /proc/modules; fi")
	if err != nil {
		return nil, err
	}
	return structDict(parseModules(out), func(m KernelModule) starlark.Value {
		return newStruct("kernel_module", starlark.StringDict{
			"size":      starlark.MakeInt64(m.Size),
			"instances": starlark.MakeInt64(m.Instances),
			"deps":      strList(m.Deps),
			"state":     starlark.String(m.State),
		})
	}), nil
}

// parseModules parses /proc/modules: "name size instances deps state
// offset", deps "-" or "a,b,".
func parseModules(out string) map[string]KernelModule {
	mods := map[string]KernelModule{}
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		size, err1 := strconv.ParseInt(f[1], 10, 64)
		inst, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		deps := []string{}
		for _, d := range strings.Split(f[3], ",") {
			if d != "" && d != "-" {
				deps = append(deps, d)
			}
		}
		mods[f[0]] = KernelModule{Size: size, Instances: inst, Deps: deps, State: f[4]}
	}
	return mods
}

func readLocales(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, _, err := h.probeFound(ctx, ctl, "command -v locale >/dev/null 2>&1 || exit 3; locale -a", exitedf("locale -a exited with status %d"))
	if err != nil {
		return nil, err
	}
	return strList(parseLocales(out)), nil // no locale: none
}

func parseLocales(out string) []string {
	var ls []string
	for _, l := range lines(out) {
		ls = append(ls, strings.Replace(strings.TrimSpace(l), ".utf8", ".UTF-8", 1))
	}
	return ls
}

const timezoneProbe = `if [ -L /etc/localtime ]; then echo "link $(readlink /etc/localtime)"; fi
if [ -r /etc/timezone ]; then echo "file $(head -n 1 /etc/timezone)"; fi
if [ -e /etc/localtime ]; then echo localtime; fi
if [ ! -L /etc/localtime ] && [ ! -r /etc/timezone ] && command -v timedatectl >/dev/null 2>&1; then
  echo "timedatectl $(timedatectl show -p Timezone --value 2>/dev/null)"
fi`

func readTimezone(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, timezoneProbe)
	if err != nil {
		return nil, err
	}
	return optString(parseTimezone(out)), nil
}

// parseTimezone reads timezoneProbe's lines; "" means unknown.
func parseTimezone(out string) string {
	found := map[string]string{}
	for _, l := range lines(out) {
		k, v, _ := strings.Cut(l, " ")
		found[k] = strings.TrimSpace(v)
	}
	if l := found["link"]; l != "" {
		if _, z, ok := strings.Cut(l, "zoneinfo/"); ok && z != "" {
			z = strings.TrimPrefix(strings.TrimPrefix(z, "posix/"), "right/")
			return z
		}
	}
	if f := found["file"]; f != "" {
		return f
	}
	if t := found["timedatectl"]; t != "" {
		return t
	}
	if _, ok := found["localtime"]; !ok {
		return "UTC"
	}
	return ""
}

func readHostnameFQDN(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, "hostname -f 2>/dev/null || hostname 2>/dev/null || uname -n")
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(out)
	if name == "" || strings.ContainsAny(name, " \n") {
		return nil, fmt.Errorf("hostname -f: unexpected output %q", out)
	}
	return starlark.String(name), nil
}

// --- network

// networkProbe prints a line "link|NAME|MAC|MTU|OPERSTATE" per interface
// of /sys/class/net, then the addresses after "-- ip" (ip -o addr), or
// "-- ifconfig" (ifconfig -a), or else /proc/net/fib_trie, route and
// if_inet6 each after "-- NAME".
const networkProbe = `for d in /sys/class/net/*; do
  [ -e "$d/mtu" ] || continue
  printf 'link|%s|%s|%s|%s\n' "${d##*/}" "$(cat "$d/address" 2>/dev/null)" "$(cat "$d/mtu" 2>/dev/null)" "$(cat "$d/operstate" 2>/dev/null)"
done
if command -v ip >/dev/null 2>&1; then echo '-- ip'; ip -o addr show
elif command -v ifconfig >/dev/null 2>&1; then echo '-- ifconfig'; ifconfig -a
else for f in fib_trie route if_inet6; do echo "-- $f"; cat /proc/net/$f 2>/dev/null; done; fi`

// networkFact caches networkProbe's output for the three network facts.
var networkFact = factDef{Name: "network", read: func(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, networkProbe)
	return starlark.String(out), err
}}

// Interface is one network interface of the network facts.
type Interface struct {
	MAC, State string
	MTU        int
	IPv4, IPv6 []string // with prefix length
}

func readNetwork(ctx context.Context, h *Host, ctl Control) (map[string]*Interface, error) {
	v, err := h.readFact(ctx, networkFact, ctl, nil)
	if err != nil {
		return nil, err
	}
	return parseNetwork(string(v.(starlark.String)))
}

// parseNetwork parses networkProbe's output.
func parseNetwork(out string) (map[string]*Interface, error) {
	ifs := map[string]*Interface{}
	get := func(name string) *Interface {
		if ifs[name] == nil {
			ifs[name] = &Interface{}
		}
		return ifs[name]
	}
	secs := sections(out)
	for _, sec := range secs {
		switch sec.name {
		case "":
			for _, l := range lines(sec.text) {
				f := strings.Split(l, "|")
				if len(f) != 5 || f[0] != "link" {
					continue
				}
				i := get(f[1])
				i.MAC, i.State = strings.ToLower(f[2]), strings.ToLower(f[4])
				i.MTU, _ = strconv.Atoi(f[3])
			}
		case "ip":
			parseIPAddr(sec.text, get)
		case "ifconfig":
			parseIfconfig(sec.text, get)
		case "if_inet6":
			parseIfInet6(sec.text, get)
		case "fib_trie":
			text := map[string]string{}
			for _, s := range secs {
				text[s.name] = s.text
			}
			if !parseFibTrie(text["fib_trie"], text["route"], get) {
				return nil, fmt.Errorf("found neither ip nor ifconfig nor /proc/net/fib_trie to list the addresses (install iproute2)")
			}
		}
	}
	return ifs, nil
}

// parseIfInet6 reads /proc/net/if_inet6: "ADDRHEX IFINDEX PREFIXHEX SCOPE
// FLAGS NAME".
func parseIfInet6(out string, get func(string) *Interface) {
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) != 6 {
			continue
		}
		raw, err := hex.DecodeString(f[0])
		plen, err2 := strconv.ParseUint(f[2], 16, 8)
		if err != nil || err2 != nil || len(raw) != 16 {
			continue
		}
		i := get(f[5])
		i.IPv6 = append(i.IPv6, fmt.Sprintf("%s/%d", net.IP(raw), plen))
	}
}

// parseFibTrie reads the local IPv4 addresses ("|-- ADDR" then "/32 host
// LOCAL") of /proc/net/fib_trie and names the interface of each from the
// most specific directly connected route of /proc/net/route that holds it
// (127.0.0.0/8 is lo's); an address no such route holds is left out. It
// returns false when fib_trie is empty (not readable).
func parseFibTrie(trie, route string, get func(string) *Interface) bool {
	type link struct {
		name string
		net  net.IPNet
	}
	routes := []link{{"lo", net.IPNet{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}}}
	le := func(h string) net.IP {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 4 {
			return nil
		}
		return net.IP{b[3], b[2], b[1], b[0]}
	}
	for _, l := range lines(route) {
		f := strings.Fields(l)
		if len(f) < 8 || f[0] == "Iface" {
			continue
		}
		flags, _ := strconv.ParseUint(f[3], 16, 16)
		dst, gw, mask := le(f[1]), le(f[2]), le(f[7])
		if dst == nil || mask == nil || !gw.Equal(net.IPv4zero.To4()) || flags&2 != 0 {
			continue
		}
		routes = append(routes, link{f[0], net.IPNet{IP: dst, Mask: net.IPMask(mask)}})
	}
	seen := map[string]bool{}
	last := ""
	for _, l := range lines(trie) {
		t := strings.TrimSpace(l)
		if a, ok := strings.CutPrefix(t, "|-- "); ok {
			last = a
			continue
		}
		if t != "/32 host LOCAL" || seen[last] {
			continue
		}
		seen[last] = true
		ip := net.ParseIP(last).To4()
		best := -1
		var name string
		for _, r := range routes {
			if ones, _ := r.net.Mask.Size(); r.net.Contains(ip) && ones > best {
				best, name = ones, r.name
			}
		}
		if ip != nil && best >= 0 {
			i := get(name)
			i.IPv4 = append(i.IPv4, fmt.Sprintf("%s/%d", ip, best))
		}
	}
	return strings.TrimSpace(trie) != ""
}

// parseIPAddr reads `ip -o addr show` (iproute2 and busybox): "2: eth0
// inet 192.0.2.2/24 brd ... scope global eth0\ ...".
func parseIPAddr(out string, get func(string) *Interface) {
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		switch f[2] {
		case "inet":
			i := get(name)
			i.IPv4 = append(i.IPv4, f[3])
		case "inet6":
			i := get(name)
			i.IPv6 = append(i.IPv6, f[3])
		}
	}
}

var ifconfigHead = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([^\s:]+(?::\d+)?):?\s`) })

// parseIfconfig reads `ifconfig -a` of net-tools ("eth0: flags=... mtu
// 1500", "inet 192.0.2.2  netmask 255.255.255.0", "inet6 fe80::1
// prefixlen 64") and of busybox ("eth0  Link encap:Ethernet", "inet
// addr:192.0.2.2  Bcast:...  Mask:255.255.255.0", "inet6 addr:
// fe80::1/64 Scope:Link").
func parseIfconfig(out string, get func(string) *Interface) {
	var cur *Interface
	for _, l := range lines(out) {
		if l[0] != ' ' && l[0] != '\t' {
			if m := ifconfigHead().FindStringSubmatch(l); m != nil {
				cur = get(strings.TrimSuffix(m[1], ":"))
			}
			continue
		}
		if cur == nil {
			continue
		}
		f := strings.Fields(l)
		kv := map[string]string{}
		for j, w := range f {
			if k, v, ok := strings.Cut(w, ":"); ok && v != "" && k != "" && !strings.Contains(k, ".") && len(k) < 10 && !isHex(k) {
				kv[strings.ToLower(k)] = v
			} else if j+1 < len(f) {
				kv[strings.ToLower(w)] = f[j+1]
			}
		}
		switch f[0] {
		case "inet":
			addr, mask := kv["inet"], kv["netmask"]
			if a, ok := kv["addr"]; ok {
				addr, mask = a, kv["mask"]
			}
			if ip := net.ParseIP(addr).To4(); ip != nil {
				ones := 32
				if m := net.ParseIP(mask).To4(); m != nil {
					ones, _ = net.IPMask(m).Size()
				}
				cur.IPv4 = append(cur.IPv4, fmt.Sprintf("%s/%d", ip, ones))
			}
		case "inet6":
			if a, ok := kv["addr:"]; ok { // busybox: "inet6 addr: fe80::1/64"
				cur.IPv6 = append(cur.IPv6, a)
			} else if a := kv["inet6"]; a != "" {
				if p := kv["prefixlen"]; p != "" {
					a += "/" + p
				}
				cur.IPv6 = append(cur.IPv6, a)
			}
		}
	}
}

func addrsOnly(cidrs []string) []string {
	out := []string{}
	for _, c := range cidrs {
		a, _, _ := strings.Cut(c, "/")
		out = append(out, a)
	}
	return out
}

func readAddresses(ctx context.Context, h *Host, ctl Control, v6 bool) (starlark.Value, error) {
	ifs, err := readNetwork(ctx, h, ctl)
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for name, i := range ifs {
		a := i.IPv4
		if v6 {
			a = i.IPv6
		}
		if len(a) > 0 {
			m[name] = addrsOnly(a)
		}
	}
	return structDict(m, func(a []string) starlark.Value { return strList(a) }), nil
}

func readIPv4(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	return readAddresses(ctx, h, ctl, false)
}

func readIPv6(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	return readAddresses(ctx, h, ctl, true)
}

func readNetworkInterfaces(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	ifs, err := readNetwork(ctx, h, ctl)
	if err != nil {
		return nil, err
	}
	return structDict(ifs, func(i *Interface) starlark.Value {
		mac := i.MAC
		if mac == "00:00:00:00:00:00" {
			mac = ""
		}
		return newStruct("network_interface", starlark.StringDict{
			"mac":       optString(mac),
			"mtu":       starlark.MakeInt(i.MTU),
			"state":     starlark.String(i.State),
			"addresses": strList(append(slices.Clone(i.IPv4), i.IPv6...)),
		})
	}), nil
}

// --- block devices, disk usage

// blockProbe prints lsblk's JSON after "-- lsblk", or else the disks and
// partitions of /sys/block ("disk|NAME|SECTORS", "part|NAME|SECTORS")
// after "-- sys" and /proc/mounts after "-- mounts".
const blockProbe = `if command -v lsblk >/dev/null 2>&1 && out=$(lsblk -J -b -o NAME,SIZE,TYPE,MOUNTPOINT 2>/dev/null); then
  echo '-- lsblk'; printf '%s\n' "$out"; exit 0
fi
echo '-- sys'
for d in /sys/block/*; do
  [ -e "$d/size" ] || continue
  n=${d##*/}; echo "disk|$n|$(cat "$d/size")"
  for p in "$d/$n"*; do [ -e "$p/partition" ] && echo "part|${p##*/}|$(cat "$p/size")"; done
done
echo '-- mounts'; cat /proc/mounts 2>/dev/null`

// BlockDevice is one entry of the block_devices fact.
type BlockDevice struct {
	Size       int64
	Type       string
	Mountpoint string
}

func readBlockDevices(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, blockProbe)
	if err != nil {
		return nil, err
	}
	devs, err := parseBlockDevices(out)
	if err != nil {
		return nil, err
	}
	return structDict(devs, func(d BlockDevice) starlark.Value {
		return newStruct("block_device", starlark.StringDict{
			"size":       starlark.MakeInt64(d.Size),
			"type":       starlark.String(d.Type),
			"mountpoint": optString(d.Mountpoint),
		})
	}), nil
}

// lsblkDevice is a device of `lsblk -J`; util-linux before 2.33 prints every
// value as a string, so size is read as either.
type lsblkDevice struct {
	Name       string        `json:"name"`
	Size       json.Number   `json:"size"`
	Type       string        `json:"type"`
	Mountpoint *string       `json:"mountpoint"`
	Children   []lsblkDevice `json:"children"`
}

func parseBlockDevices(out string) (map[string]BlockDevice, error) {
	devs := map[string]BlockDevice{}
	secs := sections(out)
	for _, sec := range secs {
		if sec.name == "lsblk" {
			var doc struct {
				Devices []lsblkDevice `json:"blockdevices"`
			}
			if err := json.Unmarshal([]byte(sec.text), &doc); err != nil {
				return nil, fmt.Errorf("lsblk -J: %w", err)
			}
			var walk func([]lsblkDevice)
			walk = func(ds []lsblkDevice) {
				for _, d := range ds {
					size, _ := strconv.ParseInt(string(d.Size), 10, 64)
					mp := ""
					if d.Mountpoint != nil {
						mp = *d.Mountpoint
					}
					devs[d.Name] = BlockDevice{Size: size, Type: d.Type, Mountpoint: mp}
					walk(d.Children)
				}
			}
			walk(doc.Devices)
			return devs, nil
		}
	}
	mounts := map[string]string{}
	for _, sec := range secs {
		if sec.name != "mounts" {
			continue
		}
		for _, l := range lines(sec.text) {
			if f := strings.Fields(l); len(f) >= 2 {
				if dev, ok := strings.CutPrefix(unescapeMount(f[0]), "/dev/"); ok && mounts[dev] == "" {
					mounts[dev] = unescapeMount(f[1])
				}
			}
		}
	}
	for _, sec := range secs {
		if sec.name != "sys" {
			continue
		}
		for _, l := range lines(sec.text) {
			f := strings.Split(l, "|")
			if len(f) != 3 {
				continue
			}
			sectors, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				continue
			}
			typ := f[0]
			if typ == "disk" {
				for prefix, t := range map[string]string{"loop": "loop", "sr": "rom", "dm-": "dm", "md": "raid", "zram": "disk"} {
					if strings.HasPrefix(f[1], prefix) {
						typ = t
					}
				}
			}
			devs[f[1]] = BlockDevice{Size: sectors * 512, Type: typ, Mountpoint: mounts[f[1]]}
		}
	}
	return devs, nil
}

// DiskUsage is one file system of the disk_usage fact; Percent is -1 where
// df prints "-".
type DiskUsage struct {
	Device                 string
	Total, Used, Available int64
	Percent                int
}

func readDiskUsage(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, code, err := h.probeExit(ctx, ctl, "df -P -k")
	if err != nil {
		return nil, err
	}
	// df exits 1 when it could not read some file system, and prints the
	// others.
	if code != 0 && !strings.HasPrefix(out, "Filesystem") {
		return nil, fmt.Errorf("df -P -k exited with status %d", code)
	}
	return structDict(parseDF(out), func(u DiskUsage) starlark.Value {
		var pct starlark.Value = starlark.None
		if u.Percent >= 0 {
			pct = starlark.MakeInt(u.Percent)
		}
		return newStruct("disk_usage", starlark.StringDict{
			"device":    starlark.String(u.Device),
			"total":     starlark.MakeInt64(u.Total),
			"used":      starlark.MakeInt64(u.Used),
			"available": starlark.MakeInt64(u.Available),
			"percent":   pct,
		})
	}), nil
}

var dfLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+%|-)\s+(/.*)$`) })

// parseDF parses `df -P -k`: mount point -> usage. The mount point is the
// rest of the line, so it may hold spaces.
func parseDF(out string) map[string]DiskUsage {
	m := map[string]DiskUsage{}
	for _, l := range lines(out) {
		g := dfLine().FindStringSubmatch(l)
		if g == nil {
			continue
		}
		n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v * 1024 }
		pct := -1
		if g[5] != "-" {
			pct, _ = strconv.Atoi(strings.TrimSuffix(g[5], "%"))
		}
		m[g[6]] = DiskUsage{Device: g[1], Total: n(g[2]), Used: n(g[3]), Available: n(g[4]), Percent: pct}
	}
	return m
}

// --- listening ports

// portsProbe prints "-- ss" and `ss -Htlnup`, or "-- netstat" and netstat's
// table, or the four /proc/net tables each after "-- tcp", "-- tcp6", ...
const portsProbe = `if command -v ss >/dev/null 2>&1; then echo '-- ss'; ss -Htlnup
elif command -v netstat >/dev/null 2>&1; then echo '-- netstat'; netstat -tlnup 2>/dev/null || netstat -tlnu
else for f in tcp tcp6 udp udp6; do echo "-- $f"; cat /proc/net/$f 2>/dev/null; done; fi`

// Port is one entry of the listening_ports fact; Pid is 0 when unknown.
type Port struct {
	Proto, Address string
	Port           int
	Process        string
	Pid            int
}

func readListeningPorts(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, portsProbe)
	if err != nil {
		return nil, err
	}
	var vs []starlark.Value
	for _, p := range parsePorts(out) {
		var pid starlark.Value = starlark.None
		if p.Pid > 0 {
			pid = starlark.MakeInt(p.Pid)
		}
		vs = append(vs, newStruct("listening_port", starlark.StringDict{
			"proto":   starlark.String(p.Proto),
			"address": starlark.String(p.Address),
			"port":    starlark.MakeInt(p.Port),
			"process": optString(p.Process),
			"pid":     pid,
		}))
	}
	return starlark.NewList(vs), nil
}

var ssUsers = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\("([^"]*)",pid=(\d+)`) })

// parsePorts parses portsProbe's output, sorted by protocol, port and
// address, without duplicates.
func parsePorts(out string) []Port {
	var ps []Port
	for _, sec := range sections(out) {
		switch sec.name {
		case "ss":
			for _, l := range lines(sec.text) {
				f := strings.Fields(l)
				if len(f) < 5 || (f[0] != "tcp" && f[0] != "udp") {
					continue
				}
				addr, port, ok := splitHostPort(f[4])
				if !ok {
					continue
				}
				p := Port{Proto: f[0], Address: addr, Port: port}
				if m := ssUsers().FindStringSubmatch(l); m != nil {
					p.Process = m[1]
					p.Pid, _ = strconv.Atoi(m[2])
				}
				ps = append(ps, p)
			}
		case "netstat":
			for _, l := range lines(sec.text) {
				f := strings.Fields(l)
				if len(f) < 5 {
					continue
				}
				proto := strings.TrimSuffix(f[0], "6")
				if proto != "tcp" && proto != "udp" {
					continue
				}
				addr, port, ok := splitHostPort(f[3])
				if !ok {
					continue
				}
				p := Port{Proto: proto, Address: addr, Port: port}
				if last := f[len(f)-1]; strings.Contains(last, "/") {
					pid, name, _ := strings.Cut(last, "/")
					p.Pid, _ = strconv.Atoi(pid)
					p.Process = name
				}
				ps = append(ps, p)
			}
		case "tcp", "tcp6", "udp", "udp6":
			ps = append(ps, parseProcNet(strings.TrimSuffix(sec.name, "6"), sec.text)...)
		}
	}
	slices.SortFunc(ps, func(a, b Port) int {
		if c := strings.Compare(a.Proto, b.Proto); c != 0 {
			return c
		}
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return a.Pid - b.Pid
	})
	return slices.Compact(ps)
}

// splitHostPort splits "0.0.0.0:22", "[::]:22", ":::22" (netstat),
// "*:68", "127.0.0.53%lo:53" into the address (without the zone) and port.
func splitHostPort(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, false
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return "", 0, false
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	addr, _, _ = strings.Cut(addr, "%")
	return addr, port, true
}

// parseProcNet reads /proc/net/{tcp,udp}[6]: "sl local_address rem_address
// st ...", the local address in hex as the kernel stores it (each 32-bit
// word in host order, little-endian here), st 0A = TCP LISTEN, 07 = a bound
// UDP socket.
func parseProcNet(proto, text string) []Port {
	var ps []Port
	for _, l := range lines(text) {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		if (proto == "tcp" && f[3] != "0A") || (proto == "udp" && f[3] != "07") {
			continue
		}
		h, p, ok := strings.Cut(f[1], ":")
		raw, err := hex.DecodeString(h)
		port, err2 := strconv.ParseUint(p, 16, 16)
		if !ok || err != nil || err2 != nil || (len(raw) != 4 && len(raw) != 16) {
			continue
		}
		for w := 0; w < len(raw); w += 4 {
			slices.Reverse(raw[w : w+4])
		}
		ps = append(ps, Port{Proto: proto, Address: net.IP(raw).String(), Port: int(port)})
	}
	return ps
}

// --- processes

// psProbe runs procps ps (wide, user names up to 64 characters) or else
// busybox ps (which prints a header and takes only -o): the command names
// after "-- comm" and the command lines after "-- args", each line led by
// the pid, so that names and lines with spaces split cleanly.
const psProbe = `if out=$(ps -eww -o pid=,user:64=,comm= 2>/dev/null); then
  echo '-- comm'; printf '%s\n' "$out"; echo '-- args'; ps -eww -o pid=,args=
else
  echo '-- comm'; ps -o pid,user,comm; echo '-- args'; ps -o pid,args
fi`

// Process is one entry of the processes fact.
type Process struct{ User, Command, Args string }

var processesFact = factDef{Name: "processes", read: readProcesses}

func readProcesses(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, psProbe)
	if err != nil {
		return nil, err
	}
	return intDict(parsePS(out), func(p Process) starlark.Value {
		return newStruct("process", starlark.StringDict{
			"user":    starlark.String(p.User),
			"command": starlark.String(p.Command),
			"args":    starlark.String(p.Args),
		})
	}), nil
}

// parsePS parses psProbe's output into pid -> process; a process that
// ended between the two listings is left out.
func parsePS(out string) map[int]Process {
	procs := map[int]Process{}
	args := map[int]string{}
	for _, sec := range sections(out) {
		for _, l := range lines(sec.text) {
			pidText, rest, _ := strings.Cut(strings.TrimLeft(l, " "), " ")
			pid, err := strconv.Atoi(pidText)
			if err != nil {
				continue // busybox's header
			}
			rest = strings.TrimLeft(rest, " ")
			switch sec.name {
			case "comm":
				user, comm, _ := strings.Cut(rest, " ")
				procs[pid] = Process{User: user, Command: strings.TrimSpace(comm)}
			case "args":
				args[pid] = rest
			}
		}
	}
	for pid, p := range procs {
		a, ok := args[pid]
		if !ok {
			delete(procs, pid)
			continue
		}
		p.Args = a
		procs[pid] = p
	}
	return procs
}

func readProcess(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	v, err := h.readFact(ctx, processesFact, ctl, nil)
	if err != nil {
		return nil, err
	}
	var pids []starlark.Value
	for _, item := range v.(*starlark.Dict).Items() {
		p := item[1].(*starlarkstruct.Struct)
		comm, _ := p.Attr("command")
		argv, _ := p.Attr("args")
		if matchProcess(string(comm.(starlark.String)), string(argv.(starlark.String)), args[0]) {
			pids = append(pids, item[0])
		}
	}
	return starlark.NewList(pids), nil
}

// matchProcess reports whether the process with command name comm and
// command line argv is called name.
func matchProcess(comm, argv, name string) bool {
	if comm == name {
		return true
	}
	first, _, _ := strings.Cut(argv, " ")
	return first != "" && path.Base(first) == name
}

// --- environment

func readEnvironment(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, err := h.probe(ctx, ctl, "env -0 2>/dev/null || env")
	if err != nil {
		return nil, err
	}
	return stringDict(parseEnv(out)), nil
}

// parseEnv parses `env -0` (NUL-separated) or `env` (a line without "="
// continues the previous value).
func parseEnv(out string) map[string]string {
	m := map[string]string{}
	if strings.Contains(out, "\x00") {
		for _, kv := range strings.Split(out, "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				m[k] = v
			}
		}
		return m
	}
	last := ""
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && k != "" && !strings.ContainsAny(k, " \t") {
			m[k], last = v, k
		} else if last != "" {
			m[last] += "\n" + l
		}
	}
	return m
}

// --- find

func readFindFiles(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	return findType(ctx, h, ctl, args[0], args[1], "f")
}

func readFindDirectories(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
	return findType(ctx, h, ctl, args[0], args[1], "d")
}

// findCommand is the probe of find_files and find_directories. A relative
// path gets "./" in front, so that find never reads it as an expression
// ("-delete", "!"); parseFind takes it off again.
func findCommand(dir, pattern, typ string) (string, string) {
	arg := dir
	if !strings.HasPrefix(dir, "/") {
		arg = "./" + dir
	}
	q := connectors.Quote(arg)
	return fmt.Sprintf("[ -d %s ] || exit 3; find %s -type %s -name %s -print0 2>/dev/null", q, q, typ, connectors.Quote(pattern)), arg
}

func findType(ctx context.Context, h *Host, ctl Control, dir, pattern, typ string) (starlark.Value, error) {
	if dir == "" || pattern == "" {
		return nil, fmt.Errorf("the path and the pattern must not be empty (pattern \"*\" finds all)")
	}
	cmd, arg := findCommand(dir, pattern, typ)
	out, code, err := h.probeExit(ctx, ctl, cmd)
	if err != nil {
		return nil, err
	}
	switch code {
	case 0, 1: // 1: some directory below could not be read
	case 3:
		return starlark.None, nil
	default:
		return nil, fmt.Errorf("find in %s exited with status %d", dir, code)
	}
	return strList(parseFind(out, arg, dir)), nil
}

// parseFind splits find's -print0 output into sorted paths, writing the
// prefix arg that find was given back as dir.
func parseFind(out, arg, dir string) []string {
	var ps []string
	for _, p := range strings.Split(out, "\x00") {
		if p == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(p, arg); ok && arg != dir {
			p = dir + rest
		}
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// --- sshd

// sshdProbe prints `sshd -T` after "-- sshd -T" when run as root with an
// sshd that starts, else each configuration file after "-- file PATH";
// exit 3 means there is no sshd_config.
const sshdProbe = `s=$(command -v sshd 2>/dev/null) || s=/usr/sbin/sshd
if [ "$(id -u)" = 0 ] && [ -x "$s" ] && out=$("$s" -T 2>/dev/null); then
  echo '-- sshd -T'; printf '%s\n' "$out"; exit 0
fi
[ -r /etc/ssh/sshd_config ] || exit 3
echo '-- file /etc/ssh/sshd_config'; cat /etc/ssh/sshd_config; echo
for f in /etc/ssh/sshd_config.d/*; do
  if [ -f "$f" ] && [ -r "$f" ]; then echo "-- file $f"; cat "$f"; echo; fi
done`

// sshdMulti are the keywords that take many values, each a list in the
// sshd_config fact.
var sshdMulti = map[string]bool{
	"port": true, "listenaddress": true, "hostkey": true, "hostcertificate": true,
	"acceptenv": true, "setenv": true, "subsystem": true,
	"allowusers": true, "denyusers": true, "allowgroups": true, "denygroups": true,
}

// sshdSplit are the multi-value keywords whose one line holds many values.
var sshdSplit = map[string]bool{"acceptenv": true, "allowusers": true, "denyusers": true, "allowgroups": true, "denygroups": true}

func readSSHDConfig(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
	out, found, err := h.probeFound(ctx, ctl, sshdProbe, exitedf("reading sshd's configuration exited with status %d"))
	if !found {
		return starlark.None, err
	}
	cfg := parseSSHD(out)
	d := starlark.NewDict(len(cfg))
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		if sshdMulti[k] {
			_ = d.SetKey(starlark.String(k), strList(cfg[k]))
		} else {
			_ = d.SetKey(starlark.String(k), starlark.String(cfg[k][0]))
		}
	}
	return d, nil
}

// sshdKeyword splits a line of sshd_config ("Keyword value", "Keyword=value",
// "Keyword = value") into the lower-case keyword and the value, its runs of
// blanks made one space as sshd -T prints them, and surrounding quotes
// taken off.
func sshdKeyword(l string) (string, string) {
	i := strings.IndexAny(l, " \t=")
	if i < 0 {
		return strings.ToLower(l), ""
	}
	v := strings.TrimLeft(l[i:], " \t")
	v = strings.TrimPrefix(v, "=")
	v = strings.Join(strings.Fields(v), " ")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return strings.ToLower(l[:i]), v
}

// parseSSHD parses sshdProbe's output into keyword -> values (one unless
// sshdMulti).
func parseSSHD(out string) map[string][]string {
	cfg := map[string][]string{}
	add := func(k, v string) {
		switch {
		case sshdMulti[k] && sshdSplit[k]:
			cfg[k] = append(cfg[k], strings.Fields(v)...)
		case sshdMulti[k]:
			cfg[k] = append(cfg[k], v)
		case cfg[k] == nil:
			cfg[k] = []string{v}
		}
	}
	files := map[string]string{}
	var order []string
	for _, sec := range sections(out) {
		if sec.name == "sshd -T" {
			for _, l := range lines(sec.text) {
				k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
				add(strings.ToLower(k), strings.TrimSpace(v))
			}
			return cfg
		}
		if p, ok := strings.CutPrefix(sec.name, "file "); ok {
			files[p] = sec.text
			order = append(order, p)
		}
	}
	if len(order) == 0 {
		return cfg
	}
	var read func(p string, depth int)
	read = func(p string, depth int) {
		for _, l := range lines(files[p]) {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == '#' {
				continue
			}
			k, v := sshdKeyword(l)
			switch k {
			case "match":
				return // to the end of this file: not the global settings
			case "include":
				if depth > 16 {
					continue
				}
				for _, glob := range strings.Fields(v) {
					if !strings.HasPrefix(glob, "/") {
						glob = "/etc/ssh/" + glob
					}
					for _, f := range order {
						if ok, _ := path.Match(glob, f); ok {
							read(f, depth+1)
						}
					}
				}
			default:
				add(k, v)
			}
		}
	}
	read(order[0], 0)
	return cfg
}
