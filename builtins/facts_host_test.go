package builtins

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// capture returns a capture of testdata/facts/host (see its README).
func capture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(hostCaptureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseCpus(t *testing.T) {
	for _, c := range []string{"debian12-vm", "debian12-container", "busybox"} {
		if n, err := parseCpus(capture(t, c+"/cpus.txt")); err != nil || n != 2 {
			t.Errorf("%s: cpus = %d, %v; want 2 (the machine's)", c, n, err)
		}
	}
	if _, err := parseCpus("getconf: not found\n"); err == nil {
		t.Error("parseCpus took a line that is no number")
	}
}

func TestParseMeminfo(t *testing.T) {
	m, ok := parseMeminfo(capture(t, "busybox/meminfo.txt"))
	want := Memory{Total: 24731184 * 1024, Free: 18097580 * 1024, Available: 23242568 * 1024}
	if !ok || m.Total != want.Total || m.Free != want.Free || m.Available != want.Available {
		t.Errorf("memory = %+v, %v; want %+v", m, ok, want)
	}
	// Before Linux 3.14 there is no MemAvailable.
	m, _ = parseMeminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n")
	if m.Available != 35*1024 {
		t.Errorf("available without MemAvailable = %d, want free+buffers+cached", m.Available)
	}
	if _, ok := parseMeminfo(""); ok {
		t.Error("an empty meminfo gave a memory")
	}
}

// Neither this machine nor its containers have module support (no
// /proc/modules), so these lines follow the kernel's format (proc(5),
// kernel/module/procfs.c: name, size, use count, users each followed by a
// comma, state, address, taint flags) rather than a capture.
func TestParseModules(t *testing.T) {
	got := parseModules(capture(t, "debian12-vm/modules.txt"))
	if len(got) != 0 {
		t.Errorf("modules of a kernel without them = %v", got)
	}
	got = parseModules("nf_conntrack 188416 2 nf_nat,xt_conntrack, Live 0x0000000000000000\n" +
		"br_netfilter 36864 0 - Live 0x0000000000000000\n" +
		"vboxdrv 696320 2 vboxnetadp,vboxnetflt, Loading 0x0000000000000000 (OE)\n")
	want := map[string]KernelModule{
		"nf_conntrack": {Size: 188416, Instances: 2, Deps: []string{"nf_nat", "xt_conntrack"}, State: "Live"},
		"br_netfilter": {Size: 36864, Instances: 0, Deps: []string{}, State: "Live"},
		"vboxdrv":      {Size: 696320, Instances: 2, Deps: []string{"vboxnetadp", "vboxnetflt"}, State: "Loading"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("modules = %+v\nwant %+v", got, want)
	}
}

func TestParseLocales(t *testing.T) {
	want := []string{"C", "C.UTF-8", "POSIX"}
	for _, c := range []string{"debian12-vm", "debian12-container", "debian12-container-deploy"} {
		if got := parseLocales(capture(t, c+"/locales.txt")); !slices.Equal(got, want) {
			t.Errorf("%s: locales = %q, want %q", c, got, want)
		}
	}
	if capture(t, "busybox/locales.exit") != "3" {
		t.Error("busybox has no locale: the probe should exit 3 (no locales)")
	}
}

func TestParseTimezone(t *testing.T) {
	for _, c := range []struct{ name, out, want string }{
		{"debian12-vm", capture(t, "debian12-vm/timezone.txt"), "Etc/UTC"},
		{"debian12-container", capture(t, "debian12-container/timezone.txt"), "Etc/UTC"},
		{"busybox, no /etc/localtime", capture(t, "busybox/timezone.txt"), "UTC"},
		{"relative link", "link ../usr/share/zoneinfo/posix/Europe/Paris\nlocaltime\n", "Europe/Paris"},
		{"a copy and /etc/timezone (Alpine)", "file Europe/Berlin\nlocaltime\n", "Europe/Berlin"},
		{"timedatectl", "localtime\ntimedatectl America/New_York\n", "America/New_York"},
		{"a copy nothing names", "localtime\n", ""},
	} {
		if got := parseTimezone(c.out); got != c.want {
			t.Errorf("%s: timezone = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	type want struct {
		iface      string
		ipv4, ipv6 []string
		mac, state string
		mtu        int
	}
	for _, c := range []struct {
		capture string
		want    []want
	}{
		{"debian12-vm/network.txt", []want{ // ip -o addr (iproute2)
			{"lo", []string{"127.0.0.1/8"}, []string{"::1/128"}, "00:00:00:00:00:00", "unknown", 65536},
			{"eth0", []string{"192.0.2.2/24"}, []string{"fd00::2/64", "fe80::fc:ff:fe00:1/64"}, "02:fc:00:00:00:01", "up", 1400},
			{"docker0", []string{"172.17.0.1/16"}, []string{"fe80::42:24ff:fe16:8294/64"}, "02:42:24:16:82:94", "up", 1500},
		}},
		{"debian12-vm-without-ss-ip-lsblk/network.txt", []want{ // net-tools ifconfig
			{"lo", []string{"127.0.0.1/8"}, []string{"::1/128"}, "00:00:00:00:00:00", "unknown", 65536},
			{"eth0", []string{"192.0.2.2/24"}, []string{"fe80::fc:ff:fe00:1/64", "fd00::2/64"}, "02:fc:00:00:00:01", "up", 1400},
		}},
		{"busybox/network.txt", []want{ // busybox ip -o addr
			{"lo", []string{"127.0.0.1/8"}, nil, "00:00:00:00:00:00", "unknown", 65536},
			{"eth0", []string{"172.17.0.3/16"}, nil, "02:42:ac:11:00:03", "up", 1500},
		}},
		{"busybox-without-ip/network.txt", []want{ // busybox ifconfig
			{"lo", []string{"127.0.0.1/8"}, nil, "00:00:00:00:00:00", "unknown", 65536},
			{"eth0", []string{"172.17.0.3/16"}, nil, "02:42:ac:11:00:03", "up", 1500},
		}},
		{"debian12-container/network.txt", []want{ // no tool: /proc/net
			{"lo", []string{"127.0.0.1/8"}, nil, "00:00:00:00:00:00", "unknown", 65536},
			{"eth0", []string{"172.17.0.7/16"}, nil, "02:42:ac:11:00:07", "up", 1500},
		}},
	} {
		ifs, err := parseNetwork(capture(t, c.capture))
		if err != nil {
			t.Errorf("%s: %v", c.capture, err)
			continue
		}
		for _, w := range c.want {
			i := ifs[w.iface]
			if i == nil {
				t.Errorf("%s: no interface %s in %v", c.capture, w.iface, ifs)
				continue
			}
			got := want{w.iface, i.IPv4, i.IPv6, i.MAC, i.State, i.MTU}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s: %s = %+v\nwant %+v", c.capture, w.iface, got, w)
			}
		}
	}
	// /proc/net/if_inet6, as this machine has it (the containers have no IPv6).
	ifs := map[string]*Interface{}
	parseIfInet6("00000000000000000000000000000001 01 80 10 80       lo\nfd000000000000000000000000000002 04 40 00 00     eth0\n",
		func(n string) *Interface {
			if ifs[n] == nil {
				ifs[n] = &Interface{}
			}
			return ifs[n]
		})
	if !slices.Equal(ifs["lo"].IPv6, []string{"::1/128"}) || !slices.Equal(ifs["eth0"].IPv6, []string{"fd00::2/64"}) {
		t.Errorf("if_inet6: lo %v, eth0 %v", ifs["lo"].IPv6, ifs["eth0"].IPv6)
	}
	if _, err := parseNetwork("-- fib_trie\n-- route\n-- if_inet6\n"); err == nil {
		t.Error("no way to list the addresses gave no error")
	}
}

func TestParseBlockDevices(t *testing.T) {
	for _, c := range []struct {
		capture string
		want    map[string]BlockDevice
	}{
		{"debian12-vm/block.txt", map[string]BlockDevice{"vda": {274877906944, "disk", "/"}, "zram0": {0, "disk", ""}}},
		{"debian12-container/block.txt", map[string]BlockDevice{"vda": {274877906944, "disk", "/etc/hosts"}, "zram0": {0, "disk", ""}}},
		{"busybox/block.txt", map[string]BlockDevice{"vda": {274877906944, "disk", "/etc/resolv.conf"}, "loop0": {0, "loop", ""}}},
		{"debian12-vm-without-ss-ip-lsblk/block.txt", map[string]BlockDevice{"vda": {274877906944, "disk", "/"}}},
	} {
		got, err := parseBlockDevices(capture(t, c.capture))
		if err != nil {
			t.Errorf("%s: %v", c.capture, err)
		}
		for name, w := range c.want {
			if got[name] != w {
				t.Errorf("%s: %s = %+v, want %+v", c.capture, name, got[name], w)
			}
		}
	}
	// util-linux before 2.33 printed every value as a string; partitions
	// are children.
	got, err := parseBlockDevices("-- lsblk\n" + `{"blockdevices": [{"name": "sda", "size": "1000", "type": "disk", "mountpoint": null,
	  "children": [{"name": "sda1", "size": "999", "type": "part", "mountpoint": "/boot"}]}]}`)
	if err != nil || got["sda1"] != (BlockDevice{999, "part", "/boot"}) || got["sda"].Size != 1000 {
		t.Errorf("old lsblk: %+v, %v", got, err)
	}
}

func TestParseDF(t *testing.T) {
	vm := parseDF(capture(t, "debian12-vm/df.txt"))
	if r := vm["/"]; r.Device != "/dev/vda" || r.Total != 264212084*1024 || r.Used != 16144500*1024 || r.Available != 79356764*1024 || r.Percent != 17 {
		t.Errorf("debian12-vm /: %+v", r)
	}
	bb := parseDF(capture(t, "busybox/df.txt"))
	if r := bb["/etc/hosts"]; r.Device != "/dev/vda" || r.Percent != 16 {
		t.Errorf("busybox /etc/hosts: %+v", r)
	}
	if _, ok := parseDF(capture(t, "debian12-container/df.txt"))["/dev/shm"]; !ok {
		t.Error("container: no /dev/shm")
	}
	sp := parseDF("Filesystem 1024-blocks Used Available Capacity Mounted on\n//nas/share 10 5 5 50% /mnt/my share\nnone 0 0 0 - /sys/x\n")
	if sp["/mnt/my share"].Device != "//nas/share" || sp["/sys/x"].Percent != -1 {
		t.Errorf("spaces and '-': %+v", sp)
	}
}

func TestParsePorts(t *testing.T) {
	has := func(ps []Port, w Port) bool { return slices.Contains(ps, w) }
	for _, c := range []struct {
		capture string
		want    []Port
	}{
		{"debian12-vm/ports.txt", []Port{ // ss
			{Proto: "tcp", Address: "0.0.0.0", Port: 2024},
			{Proto: "tcp", Address: "127.0.0.1", Port: 18080, Process: "docker-proxy", Pid: 1823},
			{Proto: "udp", Address: "127.0.0.1", Port: 18053, Process: "docker-proxy", Pid: 1841},
		}},
		{"debian12-vm-without-ss-ip-lsblk/ports.txt", []Port{ // net-tools netstat -p
			{Proto: "tcp", Address: "0.0.0.0", Port: 2024},
			{Proto: "tcp", Address: "127.0.0.1", Port: 18080, Process: "docker-proxy", Pid: 1823},
			{Proto: "udp", Address: "127.0.0.1", Port: 18053, Process: "docker-proxy", Pid: 1841},
		}},
		{"debian12-vm-proc-net/ports.txt", []Port{ // /proc/net
			{Proto: "tcp", Address: "0.0.0.0", Port: 2024},
			{Proto: "tcp", Address: "127.0.0.1", Port: 18080},
			{Proto: "udp", Address: "127.0.0.1", Port: 18053},
		}},
		{"busybox-proc-net/ports.txt", []Port{{Proto: "tcp", Address: "::", Port: 8080}}},
	} {
		got := parsePorts(capture(t, c.capture))
		for _, w := range c.want {
			if !has(got, w) {
				t.Errorf("%s: no %+v in %+v", c.capture, w, got)
			}
		}
	}
	// busybox netstat without -p (Debian's build), and its IPv6 form.
	got := parsePorts("-- netstat\nActive Internet connections (only servers)\nProto Recv-Q Send-Q Local Address Foreign Address State\n" +
		"tcp        0      0 :::8080                 :::*                    LISTEN      \n")
	if !slices.Equal(got, []Port{{Proto: "tcp", Address: "::", Port: 8080}}) {
		t.Errorf("busybox netstat: %+v", got)
	}
	// ss's forms of an address.
	for in, want := range map[string]string{"[::]:22": "::", "*:68": "*", "127.0.0.53%lo:53": "127.0.0.53", "[::ffff:127.0.0.1]:80": "::ffff:127.0.0.1"} {
		if a, _, ok := splitHostPort(in); !ok || a != want {
			t.Errorf("splitHostPort(%q) = %q, want %q", in, a, want)
		}
	}
}

func TestParsePS(t *testing.T) {
	for _, c := range []string{"debian12-container", "debian12-container-deploy", "busybox"} {
		procs := parsePS(capture(t, c+"/ps.txt"))
		p, ok := procs[1]
		if !ok || p.Command != "sh" || p.Args == "" {
			t.Errorf("%s: pid 1 = %+v, %v; want sh", c, p, ok)
		}
	}
	if u := parsePS(capture(t, "debian12-container-deploy/ps.txt"))[1].User; u != "deploy" {
		t.Errorf("container as deploy: pid 1 runs as %q", u)
	}
	// A command name with a space, a process gone before the second ps.
	procs := parsePS("-- comm\n  7 www-data  php-fpm: pool www\n  9 root  sleep\n-- args\n  7 php-fpm: pool www\n")
	if p := procs[7]; p.User != "www-data" || p.Command != "php-fpm: pool www" || p.Args != "php-fpm: pool www" || len(procs) != 1 {
		t.Errorf("procs = %+v", procs)
	}
	if !matchProcess("systemd-journal", "/lib/systemd/systemd-journald", "systemd-journald") || matchProcess("sh", "sh -c x", "bash") {
		t.Error("matchProcess")
	}
}

func TestParseEnv(t *testing.T) {
	vm := parseEnv(capture(t, "debian12-vm/env.txt")) // env -0
	if vm["MULTI"] != "line one\nline two" || vm["LANG"] != "C.UTF-8" {
		t.Errorf("env -0: %q", vm)
	}
	if c := parseEnv(capture(t, "busybox/env.txt")); c["HOME"] != "/" {
		t.Errorf("busybox env -0: %q", c)
	}
	plain := parseEnv("A=1\nMULTI=line one\nline two\nB=x=y\n")
	if plain["MULTI"] != "line one\nline two" || plain["B"] != "x=y" || plain["A"] != "1" {
		t.Errorf("env: %q", plain)
	}
}

func TestParseFind(t *testing.T) {
	want := []string{"/etc/host.conf", "/etc/hostname", "/etc/hosts", "/etc/hosts.allow", "/etc/hosts.deny"}
	if got := parseFind(capture(t, "debian12-vm/find_files.txt"), "/etc", "/etc"); !slices.Equal(got, want) {
		t.Errorf("find_files = %q, want %q", got, want)
	}
	if got := parseFind(capture(t, "busybox/find_files.txt"), "/etc", "/etc"); !slices.Equal(got, []string{"/etc/hostname", "/etc/hosts"}) {
		t.Errorf("busybox find_files = %q", got)
	}
	dirs := parseFind(capture(t, "debian12-container/find_directories.txt"), "/etc", "/etc")
	if !slices.Contains(dirs, "/etc/sudoers.d") || !slices.IsSorted(dirs) {
		t.Errorf("find_directories = %q", dirs)
	}
	// A relative path that find would read as an expression.
	cmd, arg := findCommand("-delete", "*.conf", "f")
	if arg != "./-delete" || cmd != `[ -d ./-delete ] || exit 3; find ./-delete -type f -name '*.conf' -print0 2>/dev/null` {
		t.Errorf("findCommand = %q, %q", cmd, arg)
	}
	if got := parseFind("./-delete/a.conf\x00", arg, "-delete"); !slices.Equal(got, []string{"-delete/a.conf"}) {
		t.Errorf("relative path = %q", got)
	}
	if cmd, _ := findCommand("/srv/it's", "a b", "d"); cmd != `[ -d '/srv/it'\''s' ] || exit 3; find '/srv/it'\''s' -type d -name 'a b' -print0 2>/dev/null` {
		t.Errorf("quoting: %s", cmd)
	}
}

func TestParseSSHD(t *testing.T) {
	for _, c := range []string{"debian12-vm/sshd.txt", "debian12-container/sshd.txt"} { // sshd -T
		cfg := parseSSHD(capture(t, c))
		if !slices.Equal(cfg["port"], []string{"22"}) || !slices.Equal(cfg["acceptenv"], []string{"LANG", "LC_*"}) ||
			cfg["usepam"][0] != "yes" || !slices.Equal(cfg["subsystem"], []string{"sftp /usr/lib/openssh/sftp-server"}) ||
			len(cfg["listenaddress"]) != 2 {
			t.Errorf("%s: %q", c, cfg)
		}
	}
	// The files, read as deploy: the included file comes first and wins.
	cfg := parseSSHD(capture(t, "debian12-container-deploy/sshd.txt"))
	want := map[string][]string{
		"hostkey":                      {"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"},
		"passwordauthentication":       {"yes"},
		"kbdinteractiveauthentication": {"no"},
		"maxsessions":                  {"64"},
		"maxstartups":                  {"200"},
		"allowtcpforwarding":           {"yes"},
		"loglevel":                     {"VERBOSE"},
		"usepam":                       {"yes"},
		"x11forwarding":                {"yes"},
		"printmotd":                    {"no"},
		"acceptenv":                    {"LANG", "LC_*"},
		"subsystem":                    {"sftp /usr/lib/openssh/sftp-server"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("sshd_config files = %q\nwant %q", cfg, want)
	}
	// A Match block is not global; the first value wins.
	cfg = parseSSHD("-- file /etc/ssh/sshd_config\nPermitRootLogin no\nPermitRootLogin yes\nPort=2222\nBanner = \"/etc/issue net\"\nAuthorizedKeysCommand /bin/k --a=b\nMatch User x\nPasswordAuthentication no\n")
	if !reflect.DeepEqual(cfg, map[string][]string{"permitrootlogin": {"no"}, "port": {"2222"}, "banner": {"/etc/issue net"}, "authorizedkeyscommand": {"/bin/k --a=b"}}) {
		t.Errorf("match: %q", cfg)
	}
	if capture(t, "busybox/sshd.exit") != "3" {
		t.Error("busybox has no sshd_config: the probe should exit 3 (None)")
	}
}

// A write below a fact's Paths drops it: sshd_config after a change to
// /etc/ssh/sshd_config.d/, timezone after one to /etc/timezone.
func TestHostFactPathsDropTheFact(t *testing.T) {
	for _, d := range hostFacts() {
		key := factKey(d.Name, append(slices.Clip([]string(nil)), d.Paths...), Control{})
		switch d.Name {
		case "sshd_config":
			if !aboutPath(key, "/etc/ssh/sshd_config.d/x.conf") || aboutPath(key, "/etc/sshd") {
				t.Errorf("sshd_config key %q", key)
			}
		case "timezone":
			if !aboutPath(key, "/etc/timezone") || !aboutPath(key, "/etc/localtime") {
				t.Errorf("timezone key %q", key)
			}
		}
	}
}
