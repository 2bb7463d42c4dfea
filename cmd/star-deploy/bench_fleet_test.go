package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// fleetAddrs are the loopback addresses the fleet's sshd processes listen
// on, each on many ports.
var fleetAddrs = []string{"127.0.0.200", "127.0.0.201", "127.0.0.202", "127.0.0.203"}

// fleetShells and fleetPuts are the workload of one fleet host:
// fleetShells shell() calls (the first makes the host's directory) and
// fleetPuts put(content=) uploads.
const fleetShells, fleetPuts = 5, 1

// fleetGuard bounds each run of the fleet bench: a hang guard, not a
// measurement.
const fleetGuard = 20 * time.Minute

// TestSSHFleetBenchmark runs star-deploy's real binary on N hosts of one
// inventory (N = STAR_DEPLOY_FLEET_BENCH, 1000 in make bench) against real
// sshd: ceil(N/16) sshd processes, each listening on 16 ports (OpenSSH's
// cap on listening sockets) across the 4 addresses of fleetAddrs, so that
// every host is an address:port of its own with its own known_hosts line.
// Each host runs 5 shell() and one put(content=). For each --parallel of
// STAR_DEPLOY_FLEET_PARALLEL (default "1000,100") it prints wall time and
// the controller's CPU (user+system of the child, from its rusage), each
// per host-operation, peak RSS and RSS per host (target ≤ 2 MiB), the
// peak of sshd connection processes, and the OpenSSH client's floor for
// the same hosts: the same work in one ssh exec per host, as many at once,
// and the ratios. Every host must end ok, with no connection retries
// (ssh_connect_retries=0, so a handshake that timed out fails its host).
// STAR_DEPLOY_SSH_BENCH_DATA adds host data as for TestSSHBenchmark.
func TestSSHFleetBenchmark(t *testing.T) {
	spec := os.Getenv("STAR_DEPLOY_FLEET_BENCH")
	if spec == "" {
		t.Skip("set STAR_DEPLOY_FLEET_BENCH=1000 to run (make bench does)")
	}
	n, err := strconv.Atoi(spec)
	if err != nil || n < 1 || n > 4000 {
		t.Fatalf("STAR_DEPLOY_FLEET_BENCH=%q: want a host count from 1 to 4000", spec)
	}
	var parallels []int
	pspec := os.Getenv("STAR_DEPLOY_FLEET_PARALLEL")
	if pspec == "" {
		pspec = "1000,100"
	}
	for _, f := range strings.Split(pspec, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 {
			t.Fatalf("STAR_DEPLOY_FLEET_PARALLEL=%q: want positive numbers, comma-separated", pspec)
		}
		parallels = append(parallels, min(p, n))
	}
	nofile := raiseNofile(t, uint64(4*n+256))
	bin := buildBinary(t)
	dir := t.TempDir()

	// The servers: 16 listeners each, spread over fleetAddrs.
	start := time.Now()
	var servers []*sshtest.Server
	var endpoints []string
	for len(endpoints) < n {
		k := min(16, n-len(endpoints))
		i := len(servers)
		var more []string
		for j := 1; j < k; j++ {
			more = append(more, fleetAddrs[(i+j)%len(fleetAddrs)])
		}
		s := sshtest.Start(t, sshtest.Options{Addr: fleetAddrs[i%len(fleetAddrs)], Listen: more,
			HostKeyTypes: []string{"ed25519"}, MaxStartups: 1000, MaxSessions: 64})
		servers = append(servers, s)
		endpoints = append(endpoints, s.Listeners...)
	}
	key := servers[0].ClientKeyPath
	var kh strings.Builder
	for _, s := range servers {
		if s != servers[0] {
			s.AuthorizeKey(t, key+".pub")
		}
		kh.WriteString(s.ListenersKnownHosts())
	}
	known := writeFile(t, dir, "known_hosts", kh.String())
	user := servers[0].User

	// The inventory: host0001 ... with ssh_hostname and ssh_port.
	var inv strings.Builder
	inv.WriteString("fleet = [\n")
	for i, e := range endpoints {
		host, port, _ := strings.Cut(e, ":")
		fmt.Fprintf(&inv, "    (%q, {\"ssh_hostname\": %q, \"ssh_port\": %s}),\n", fleetName(i), host, port)
	}
	inv.WriteString("]\n")
	inventory := writeFile(t, dir, "inventory.star", inv.String())
	script := writeFile(t, dir, "fleet.star", fmt.Sprintf(`
d = host.data["benchdir"] + "/" + host.name
shell("mkdir -p " + quote(d))
for i in range(%d):
    shell("echo %%d" %% i)
put(d + "/conf", content = "name " + host.name + "\n")
`, fleetShells-1))
	ops := n * (fleetShells + fleetPuts)
	fmt.Printf("\nfleet: %d hosts (distinct names, each its own address:port) on %d sshd processes (≤ 16 sockets each) over %s, started in %v; %d shell() and %d put(content=) per host = %d host-operations; RLIMIT_NOFILE %d\n",
		n, len(servers), strings.Join(fleetAddrs, ", "), time.Since(start).Round(time.Millisecond), fleetShells, fleetPuts, ops, nofile)

	for _, p := range parallels {
		runDir := filepath.Join(dir, fmt.Sprintf("p%d", p))
		sd := fleetStarDeploy(t, bin, servers, n, p, key, user, known, inventory, script, runDir)
		floor := fleetOpenSSH(t, servers, endpoints, p, key, user, known, runDir+"-ssh")
		fmt.Printf("fleet --parallel %d: star-deploy: %d/%d hosts ok, no handshake timeout (retries off), wall %v (%.2f ms/host-op), controller CPU %.2f s (%.0f µs/host-op), peak RSS %.1f MiB = %.2f MiB/host (target ≤ 2), peak sshd connection processes %d (sampled every %v)\n",
			p, n, n, sd.wall.Round(time.Millisecond), ms(sd.wall)/float64(ops), sd.cpu.Seconds(), float64(sd.cpu.Microseconds())/float64(ops),
			mib(sd.rss), mib(sd.rss)/float64(n), sd.procs, fleetSample)
		fmt.Printf("fleet --parallel %d: openssh floor (one ssh exec per host doing the same work, %d at once): wall %v (%.2f ms/host-op), client CPU %.2f s (%.0f µs/host-op), peak RSS of its largest process %.1f MiB; star-deploy/openssh: wall %.2fx, CPU %.2fx\n",
			p, p, floor.wall.Round(time.Millisecond), ms(floor.wall)/float64(ops), floor.cpu.Seconds(), float64(floor.cpu.Microseconds())/float64(ops),
			mib(floor.rss), sd.wall.Seconds()/floor.wall.Seconds(), sd.cpu.Seconds()/floor.cpu.Seconds())
	}
}

// fleetSample is how often the sshd connection processes are counted
// (one read of /proc each time).
const fleetSample = 500 * time.Millisecond

// fleetName is the inventory name of host i.
func fleetName(i int) string { return fmt.Sprintf("host%04d", i+1) }

// fleetRun is what one timed run of the fleet took.
type fleetRun struct {
	wall, cpu time.Duration
	rss       int64 // peak RSS in KiB (ru_maxrss)
	procs     int   // peak of the processes under the sshd listeners
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(kib int64) float64      { return float64(kib) / 1024 }

// fleetStarDeploy runs the script on the inventory with --json and checks
// that every host ended ok.
func fleetStarDeploy(t *testing.T, bin string, servers []*sshtest.Server, n, parallel int, key, user, known, inventory, script, runDir string) fleetRun {
	t.Helper()
	args := []string{"--json", "--key", key, "--user", user, "--parallel", strconv.Itoa(parallel),
		"--data", "ssh_known_hosts_file=" + known, "--data", "ssh_strict_host_key_checking=yes",
		"--data", "ssh_allow_agent=false", "--data", "ssh_config_file=none",
		// A handshake that times out fails its host instead of being retried.
		"--data", "ssh_connect_retries=0",
		"--data", "benchdir=" + runDir}
	args = append(append(args, benchData()...), inventory, script)
	var stdout, stderr bytes.Buffer
	run, err := fleetExec(t, servers, &stdout, &stderr, bin, args...)
	if err != nil {
		t.Fatalf("star-deploy --parallel %d on %d hosts: %v\nstderr:\n%s", parallel, n, err, tail(stderr.String(), 4000))
	}
	ok := map[string]bool{}
	var counts map[string]int
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Kind, Host, Status, Error string
			Counts                    map[string]int
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("--json line %q: %v", sc.Text(), err)
		}
		switch ev.Kind {
		case "host_end":
			if ev.Status != "ok" {
				t.Errorf("host %s: %s: %s", ev.Host, ev.Status, ev.Error)
			}
			ok[ev.Host] = ev.Status == "ok"
		case "run_end":
			counts = ev.Counts
		}
	}
	for i := range n {
		name := fleetName(i)
		if !ok[name] {
			t.Errorf("host %s did not end ok", name)
		} else if b, err := os.ReadFile(filepath.Join(runDir, name, "conf")); err != nil || string(b) != "name "+name+"\n" {
			t.Errorf("host %s ended ok but its conf is %q (%v)", name, b, err)
		}
	}
	if counts["ok"] != n || strings.Contains(stderr.String(), "timed out") {
		t.Errorf("run_end counts %v, want %d ok; stderr:\n%s", counts, n, tail(stderr.String(), 4000))
	}
	if t.Failed() {
		t.FailNow()
	}
	return run
}

// fleetSSHHost is the OpenSSH client's floor for one host (its argument,
// address:port): the host's work in one ssh exec (mkdir, the echos, the
// upload through a temporary file). xargs runs it for P hosts at once. The
// key exchange is the one star-deploy (x/crypto/ssh) gets from OpenSSH 9.2's
// sshd, curve25519: ssh's default, sntrup761x25519, costs the client and
// the server about 0.1 s of CPU more per connection here.
var fleetSSHHost = fmt.Sprintf(`set -eu
hp=$1 h=${1%%:*} p=${1##*:}
d="$FLEET_DIR/$hp"
printf 'name %%s\n' "$hp" | ssh -F /dev/null -i "$FLEET_KEY" -p "$p" -o BatchMode=yes -o IdentitiesOnly=yes \
	-o IdentityAgent=none -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$FLEET_KNOWN_HOSTS" \
	-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 -o KexAlgorithms=curve25519-sha256 "$FLEET_USER@$h" \
	"mkdir -p '$d' && for i in %s; do echo \$i; done && cat > '$d/.conf.tmp' && mv '$d/.conf.tmp' '$d/conf'" >/dev/null
`, seq(fleetShells-1))

// seq is "0 1 ... n-1".
func seq(n int) string {
	var f []string
	for i := range n {
		f = append(f, strconv.Itoa(i))
	}
	return strings.Join(f, " ")
}

// fleetOpenSSH runs the OpenSSH floor on every endpoint, parallel at once.
func fleetOpenSSH(t *testing.T, servers []*sshtest.Server, endpoints []string, parallel int, key, user, known, runDir string) fleetRun {
	t.Helper()
	script := writeFile(t, filepath.Dir(runDir), "fleet-ssh-host.sh", fleetSSHHost)
	var stdout, stderr bytes.Buffer
	stdin := strings.NewReader(strings.Join(endpoints, "\n") + "\n")
	env := []string{"FLEET_DIR=" + runDir, "FLEET_KEY=" + key, "FLEET_USER=" + user, "FLEET_KNOWN_HOSTS=" + known}
	run, err := fleetExecIn(t, servers, stdin, env, &stdout, &stderr, "xargs", "-P", strconv.Itoa(parallel), "-n", "1", "sh", script)
	if err != nil {
		t.Fatalf("openssh floor --parallel %d: %v\n%s", parallel, err, tail(stderr.String(), 4000))
	}
	for _, e := range endpoints {
		if b, err := os.ReadFile(filepath.Join(runDir, e, "conf")); err != nil || string(b) != "name "+e+"\n" {
			t.Fatalf("openssh floor left %s/conf = %q, %v", e, b, err)
		}
	}
	return run
}

func fleetExec(t *testing.T, servers []*sshtest.Server, stdout, stderr *bytes.Buffer, name string, args ...string) (fleetRun, error) {
	return fleetExecIn(t, servers, nil, nil, stdout, stderr, name, args...)
}

// fleetExecIn runs a command in a process group of its own, killed whole
// after fleetGuard, and returns its wall time, CPU and peak RSS (its own
// and its waited-for descendants', from wait4) and the peak number of
// processes under the servers while it ran, sampled every fleetSample.
func fleetExecIn(t *testing.T, servers []*sshtest.Server, stdin *strings.Reader, env []string, stdout, stderr *bytes.Buffer, name string, args ...string) (fleetRun, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), fleetGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	var run fleetRun
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(fleetSample)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				run.procs = max(run.procs, sshtest.Processes(servers))
			}
		}
	}()
	start := time.Now()
	err := cmd.Run()
	run.wall = time.Since(start)
	close(done)
	wg.Wait()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %v, killed: %w", fleetGuard, err)
	}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			run.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
			run.rss = ru.Maxrss
		}
	}
	return run, err
}

// raiseNofile raises this process's soft limit on open files, which the
// processes it starts inherit, to at least need (up to the hard limit),
// and returns the soft limit then. It fails t when the hard limit is
// below need.
func raiseNofile(t *testing.T, need uint64) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < need {
		t.Fatalf("RLIMIT_NOFILE hard limit %d is below the %d open files this bench needs (ulimit -Hn)", lim.Max, need)
	}
	if lim.Cur < need {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	return lim.Cur
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
