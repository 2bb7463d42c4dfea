package builtins_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/local"
	"github.com/star-deploy/star-deploy/runtime"
)

// hostFactsScript reads every host fact on @local and fails unless each
// value is plausible. %[1]d is a TCP port the test listens on at
// 127.0.0.1, %[2]q a directory holding a/x.conf and a/b/y.conf, %[3]d the
// test's pid.
const hostFactsScript = `
def check(cond, what):
    if not cond:
        fail("implausible: " + what)

check(fact("cpus") >= 1, "cpus %%d" %% fact("cpus"))
m = fact("memory")
check(m.total > 0 and m.available > 0 and m.available <= m.total, "memory %%r" %% m)
k = fact("kernel")
check(k.name == "Linux" and k.release != "" and k.version != "", "kernel %%r" %% k)
check(type(fact("kernel_modules")) == "dict", "kernel_modules")
check("POSIX" in fact("locales"), "locales %%r" %% fact("locales"))
check(fact("timezone") != None and fact("timezone") != "", "timezone")
check(fact("hostname_fqdn").startswith(fact("hostname")), "hostname_fqdn %%r" %% fact("hostname_fqdn"))
check("127.0.0.1" in fact("ipv4_addresses")["lo"], "ipv4_addresses %%r" %% fact("ipv4_addresses"))
check(type(fact("ipv6_addresses")) == "dict", "ipv6_addresses")
lo = fact("network_interfaces")["lo"]
check(lo.mtu > 0 and lo.mac == None and "127.0.0.1/8" in lo.addresses, "network_interfaces lo %%r" %% lo)
check([d for d in fact("block_devices").values() if d.size > 0], "block_devices %%r" %% fact("block_devices"))
root = fact("disk_usage")["/"]
check(root.total > 0 and root.used <= root.total and root.percent >= 0 and root.percent <= 100, "disk_usage / %%r" %% root)
mine = [p for p in fact("listening_ports") if p.proto == "tcp" and p.port == %[1]d]
check(mine and mine[0].address == "127.0.0.1" and mine[0].pid == %[3]d, "listening_ports: no 127.0.0.1:%[1]d of pid %[3]d in %%r" %% fact("listening_ports"))
procs = fact("processes")
check(procs[%[3]d].user != "" and procs[%[3]d].args != "", "processes: the test's own %%r" %% procs.get(%[3]d))
check(%[3]d in fact("process", procs[%[3]d].command), "process")
check(fact("process", "no-such-command-here") == [], "process: a missing one")
env = fact("environment")
check(env.get("PATH", "") != "", "environment %%r" %% env)
check(fact("find_files", %[2]q, "*.conf") == [%[2]q + "/a/b/y.conf", %[2]q + "/a/x.conf"], "find_files %%r" %% fact("find_files", %[2]q, "*.conf"))
check(fact("find_directories", %[2]q, "b") == [%[2]q + "/a/b"], "find_directories")
check(fact("find_files", %[2]q + "/missing", "*") == None, "find_files of a missing path")
s = fact("sshd_config")
check(s == None or type(s) == "dict", "sshd_config %%r" %% s)
`

// TestHostFactsLocal reads every host fact for real on this machine
// through the runtime, with a socket of its own to find among the
// listening ports.
func TestHostFactsLocal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	for _, p := range []string{"a/x.conf", "a/b/y.conf", "a/b/z.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := fmt.Sprintf(hostFactsScript, ln.Addr().(*net.TCPAddr).Port, dir, os.Getpid())
	if err := runLocal(t, src); err != nil {
		var se *runtime.ScriptError
		if errors.As(err, &se) && se.Backtrace != "" {
			t.Fatal(se.Backtrace)
		}
		t.Fatal(err)
	}
	// A fact fails rather than parse a part of its output.
	err = runLocal(t, fmt.Sprintf("fact(\"find_files\", %q, \"*\", max_output=16)", dir))
	if err == nil || !strings.Contains(err.Error(), "max_output") {
		t.Errorf("find_files with a small max_output: %v, want a failure naming max_output", err)
	}
}

// runLocal runs the script src on @local and returns the host's error.
func runLocal(t *testing.T, src string) error {
	r := runtime.New(runtime.Options{Connectors: connectors.NewRegistry(local.NewFactory())})
	prog, err := r.Compile(t.Context(), "host_facts.star", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	host, err := r.Host("@local", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.Run(t.Context(), []*runtime.Program{prog}, []runtime.Host{host}).Hosts[0].Err
}
