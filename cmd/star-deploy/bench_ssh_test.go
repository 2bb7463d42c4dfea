package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// TestSSHBenchmark compares star-deploy with the OpenSSH client on N
// loopback hosts (sshd on 127.0.0.2 ... 127.0.0.N+1). Each host gets the same
// workload twice: 20 shell commands, a 1 MiB put, a template and a line in a
// file; the second run changes no file. Two baselines do the same with ssh:
// the batch floor (issue 15's yardstick: the whole workload in one ssh exec
// per host, hosts in parallel) and a script of one ssh per command over a
// ControlMaster (checksums to skip unchanged uploads). It prints, for each
// N, both runs of star-deploy and of the floor, their ratios beside the
// targets (50 hosts: first run ≤ 0.5×, re-run ≤ 0.45×; 1 host: first run
// ≤ 0.6×), both runs with --on-host (the first uploads the binary and
// the bundle, the second finds them cached) and their ratios to the floor,
// the ControlMaster script's time and star-deploy's peak memory. A second
// table splits each re-run's CPU time into the controller's (or the floor
// script's, with its ssh clients) and the hosts' (sshtest.HostCPU), and
// times star-deploy running only `shell("true")` on every host: connecting
// costs that much whatever the workload, so its ratio to the floor is the
// least any ratio above can be on this machine.
//
// It runs only when STAR_DEPLOY_SSH_BENCH lists the host counts, as
// `make bench` does: STAR_DEPLOY_SSH_BENCH=1,10,50. STAR_DEPLOY_SSH_BENCH_DATA
// adds host data to star-deploy's runs, space-separated KEY=VALUE, for an
// A/B of a connector setting: STAR_DEPLOY_SSH_BENCH_DATA=ssh_shell_perl=false.
func TestSSHBenchmark(t *testing.T) {
	spec := os.Getenv("STAR_DEPLOY_SSH_BENCH")
	if spec == "" {
		t.Skip("set STAR_DEPLOY_SSH_BENCH=1,10,50 to run (make bench does)")
	}
	bin := buildBinary(t)
	var rows []row
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 250 {
			t.Fatalf("STAR_DEPLOY_SSH_BENCH: bad host count %q", f)
		}
		rows = append(rows, benchN(t, bin, n))
	}
	fmt.Printf("\n%-6s %-27s %-27s %-32s %-32s %-27s %-21s %-24s %s\n", "hosts", "star-deploy 1st / re-run", "batch floor 1st / re-run",
		"1st: sd/floor (target)", "re-run: sd/floor (target)", "--on-host upload / cached", "on-host/floor", "ControlMaster 1st+2nd", "peak RSS (per host)")
	for _, r := range rows {
		fmt.Println(r.times)
	}
	fmt.Println("(--on-host: the first run uploads star-deploy and the bundle to each host's own cache, the second finds them there; on-host/floor compares each with the floor's run of the same rank)")
	fmt.Println("(batch floor: the OpenSSH client, the whole workload in one ssh exec per host, hosts at once, curve25519 key exchange as star-deploy gets; ControlMaster: one ssh per command over a master per host, sha256 checks, ssh's default key exchange)")
	fmt.Printf("\n%-6s %-27s %-27s %-36s %s\n", "hosts", "re-run CPU: sd + hosts", "re-run CPU: floor + hosts", `shell("true") alone: wall (CPU)`, "its /floor 1st / re-run")
	for _, r := range rows {
		fmt.Println(r.cpu)
	}
	fmt.Println("(CPU: the controller's, or the floor script's with its ssh clients, + that of every sshd connection process and what it ran; " +
		`shell("true") alone: star-deploy connecting to every host and running one command, the least any workload costs: its ratio to the floor bounds every ratio above from below)`)
}

// benchData is the --data flags of STAR_DEPLOY_SSH_BENCH_DATA
// (space-separated KEY=VALUE) for star-deploy's runs in the benches.
func benchData() []string {
	var args []string
	for _, kv := range strings.Fields(os.Getenv("STAR_DEPLOY_SSH_BENCH_DATA")) {
		args = append(args, "--data", kv)
	}
	return args
}

func benchN(t *testing.T, bin string, n int) row {
	dir := t.TempDir()
	var servers []*sshtest.Server
	for i := range n {
		// Each host has an --on-host cache of its own, as separate
		// machines do.
		cache := "SetEnv XDG_CACHE_HOME=" + filepath.Join(dir, fmt.Sprintf("cache-%d", i))
		servers = append(servers, sshtest.Start(t, sshtest.Options{Addr: fmt.Sprintf("127.0.0.%d", 2+i), HostKeyTypes: []string{"ed25519"}, ExtraConfig: []string{cache}}))
	}
	key := servers[0].ClientKeyPath
	for _, s := range servers[1:] {
		s.AuthorizeKey(t, key+".pub")
	}
	big := make([]byte, 1<<20)
	rand.Read(big)
	// The deploy has a directory of its own, which --on-host bundles.
	writeFile(t, dir, "deploy/big.bin", string(big))
	writeFile(t, dir, "deploy/site.tmpl", "server {{ .name }}\nlisten 8080;\n")
	script := writeFile(t, dir, "deploy/bench.star", `
load("@stdlib//files.star", "files")
d = host.data["benchdir"] + "/" + host.name.replace(":", "_")
shell("mkdir -p " + quote(d), creates = d)
for i in range(20):
    shell("echo %d" % i)
put(d + "/big.bin", src = "big.bin")
template("site.tmpl", d + "/site.conf", vars = {"name": host.name})
files.line(d + "/hosts", "127.0.0.1 bench")
`)
	var names []string
	for _, s := range servers {
		names = append(names, "@ssh/"+s.Addr)
	}
	sdDir := filepath.Join(dir, "sd")
	args := []string{"--key", key, "--user", servers[0].User, "--parallel", "0",
		"--data", "ssh_known_hosts_file=" + filepath.Join(dir, "kh-sd"), "--data", "ssh_allow_agent=false",
		"--data", "benchdir=" + sdDir}
	args = append(args, benchData()...)
	args = append(args, strings.Join(names, ","), script)
	var sdTime [2]time.Duration
	var sdRerun runStats
	var rss int64
	for run := range 2 {
		cmd := exec.Command(bin, args...)
		st, out, err := measureRun(cmd, servers)
		sdTime[run], sdRerun = st.wall, st
		if err != nil {
			t.Fatalf("star-deploy run %d on %d hosts: %v\n%s", run+1, n, err, out)
		}
		if run == 1 && !strings.Contains(string(out), fmt.Sprintf("%d ok", n)) {
			t.Fatalf("second run:\n%s", out)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, ru.Maxrss)
		}
	}

	// The least any run can cost here: connecting to every host and
	// running one command, `true` (the better of two runs).
	least := runStats{wall: time.Hour}
	leastArgs := slices.Clone(args)
	leastArgs[len(leastArgs)-1] = writeFile(t, dir, "least.star", `shell("true")`)
	for run := range 2 {
		st, out, err := measureRun(exec.Command(bin, leastArgs...), servers)
		if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d ok", n)) {
			t.Fatalf("star-deploy shell(\"true\") run %d on %d hosts: %v\n%s", run+1, n, err, out)
		}
		if st.wall < least.wall {
			least = st
		}
	}

	// --on-host: the first run uploads the binary and the bundle to every
	// host, the second finds them cached (and changes no file).
	ohArgs := slices.Clone(args)
	ohArgs[len(ohArgs)-3] = "benchdir=" + filepath.Join(dir, "oh")
	ohArgs = append([]string{"--on-host"}, ohArgs...)
	var ohTime [2]time.Duration
	for run := range 2 {
		st, out, err := measureRun(exec.Command(bin, ohArgs...), servers)
		ohTime[run] = st.wall
		if err != nil || strings.Contains(string(out), "normal way") {
			t.Fatalf("star-deploy --on-host run %d on %d hosts: %v\n%s", run+1, n, err, out)
		}
		if run == 1 && !strings.Contains(string(out), fmt.Sprintf("%d ok", n)) {
			t.Fatalf("second --on-host run:\n%s", out)
		}
	}

	// The baseline: the same work with the OpenSSH client.
	base := filepath.Join(dir, "baseline.sh")
	writeFile(t, dir, "baseline.sh", baselineScript)
	var hosts []string
	for _, s := range servers {
		hosts = append(hosts, fmt.Sprintf("%s:%d", s.Host, s.Port))
	}
	var sshTime time.Duration
	for run := range 2 {
		cmd := exec.Command("bash", append([]string{base, key, servers[0].User, filepath.Join(dir, "kh-ssh"), filepath.Join(dir, "ossh"), filepath.Join(dir, "deploy")}, hosts...)...)
		st, out, err := measureRun(cmd, servers)
		sshTime += st.wall
		if err != nil {
			t.Fatalf("openssh baseline run %d on %d hosts: %v\n%s", run+1, n, err, out)
		}
	}

	// The batch floor, into a directory of its own.
	floor := writeFile(t, dir, "floor.sh", floorScript)
	var floorTime [2]time.Duration
	var floorRerun runStats
	for run := range 2 {
		cmd := exec.Command("bash", append([]string{floor, key, servers[0].User, filepath.Join(dir, "kh-floor"), filepath.Join(dir, "floor"), filepath.Join(dir, "deploy")}, hosts...)...)
		st, out, err := measureRun(cmd, servers)
		floorTime[run], floorRerun = st.wall, st
		if err != nil {
			t.Fatalf("openssh batch floor run %d on %d hosts: %v\n%s", run+1, n, err, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "floor", hosts[0], "big.bin")); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("the batch floor did not upload big.bin to %s (%v)", hosts[0], err)
	}

	ratio := func(run int, target string) string {
		r := sdTime[run].Seconds() / floorTime[run].Seconds()
		if target == "" {
			return fmt.Sprintf("%.2fx", r)
		}
		return fmt.Sprintf("%.2fx (target ≤ %s)", r, target)
	}
	target1, target2 := map[int]string{1: "0.6x", 50: "0.5x"}[n], map[int]string{50: "0.45x"}[n]
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	ohRatio := func(run int) string { return fmt.Sprintf("%.2fx", ohTime[run].Seconds()/floorTime[run].Seconds()) }
	cpu := func(st runStats) string { return ms(st.ctl) + " + " + ms(st.host) }
	cpuRow := fmt.Sprintf("%-6d %-27s %-27s %-36s %s", n, cpu(sdRerun), cpu(floorRerun),
		ms(least.wall)+" ("+cpu(least)+")", fmt.Sprintf("%.2fx / %.2fx", least.wall.Seconds()/floorTime[0].Seconds(), least.wall.Seconds()/floorTime[1].Seconds()))
	return row{fmt.Sprintf("%-6d %-27s %-27s %-32s %-32s %-27s %-21s %-24s %s", n, ms(sdTime[0])+" / "+ms(sdTime[1]), ms(floorTime[0])+" / "+ms(floorTime[1]),
		ratio(0, target1), ratio(1, target2), ms(ohTime[0])+" / "+ms(ohTime[1]), ohRatio(0)+" / "+ohRatio(1),
		fmt.Sprintf("%s (%.2fx)", ms(sshTime), (sdTime[0]+sdTime[1]).Seconds()/sshTime.Seconds()),
		fmt.Sprintf("%.1f MiB (%.2f MiB)", float64(rss)/1024, float64(rss)/1024/float64(n))), cpuRow}
}

// row is one host count's line of each of TestSSHBenchmark's tables.
type row struct{ times, cpu string }

// runStats is what one whole run cost: its wall time, the CPU time of the
// process that ran it (the controller, or the floor's script with its ssh
// clients) and that of the hosts (every sshd connection process and what it
// ran).
type runStats struct{ wall, ctl, host time.Duration }

// measureRun runs cmd to its end and returns what it cost and its output.
func measureRun(cmd *exec.Cmd, servers []*sshtest.Server) (runStats, []byte, error) {
	host0 := sshtest.HostCPU(servers)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	st := runStats{wall: time.Since(start)}
	if ps := cmd.ProcessState; ps != nil {
		st.ctl = ps.UserTime() + ps.SystemTime()
	}
	st.host = sshtest.HostCPU(servers) - host0
	return st, out, err
}

// floorScript is the batch floor: each host's whole workload in one ssh
// exec, hosts in parallel. big.bin goes on stdin every time (there is no
// second round trip to ask whether it changed); the host writes each file
// only when its content differs, through a temporary file. The key
// exchange is curve25519, which star-deploy (x/crypto/ssh) gets from
// OpenSSH 9.2's sshd: ssh's default, sntrup761x25519, costs client and
// server about 0.1 s more CPU per connection.
const floorScript = `set -eu
key=$1 user=$2 kh=$3 out=$4 files=$5; shift 5
mkdir -p "$out"
run_host() {
	h=${1%:*} p=${1##*:}
	d="$out/$1"
	site=$(sed "s/{{ .name }}/$h:$p/" "$files/site.tmpl")
	ssh -F /dev/null -i "$key" -p "$p" -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
		-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$kh" -o KexAlgorithms=curve25519-sha256 "$user@$h" "
		set -e
		test -e '$d' || mkdir -p '$d'
		for i in \$(seq 0 19); do echo \$i; done
		cat > '$d/.big.tmp'
		if cmp -s '$d/.big.tmp' '$d/big.bin'; then rm '$d/.big.tmp'; else mv '$d/.big.tmp' '$d/big.bin'; fi
		printf '%s\n' '$site' > '$d/.site.tmp'
		if cmp -s '$d/.site.tmp' '$d/site.conf'; then rm '$d/.site.tmp'; else mv '$d/.site.tmp' '$d/site.conf'; fi
		grep -qxF '127.0.0.1 bench' '$d/hosts' 2>/dev/null || echo '127.0.0.1 bench' >> '$d/hosts'
	" < "$files/big.bin" >/dev/null
}
` + runHosts

// runHosts ends floorScript and baselineScript: run_host for every host
// argument at once, failing when one failed.
const runHosts = `pids=""
for hp in "$@"; do run_host "$hp" & pids="$pids $!"; done
fail=0
for pid in $pids; do wait "$pid" || fail=1; done
exit $fail
`

// baselineScript does the workload with ssh: a ControlMaster per host, the
// hosts in parallel, sha256 checks so unchanged files are not uploaded, and
// the masters closed at the end (each run pays for its connections, as a
// star-deploy run does).
const baselineScript = `set -eu
key=$1 user=$2 kh=$3 out=$4 files=$5; shift 5
mkdir -p "$out/cm"
run_host() {
	h=${1%:*} p=${1##*:}
	d="$out/${h}_$p"
	o="-F /dev/null -i $key -p $p -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$kh -o ControlMaster=auto -o ControlPath=$out/cm/%h-%p -o ControlPersist=60"
	ssh $o "$user@$h" "test -e '$d' || mkdir -p '$d'"
	for i in $(seq 0 19); do ssh $o "$user@$h" "echo $i" >/dev/null; done
	want=$(sha256sum "$files/big.bin" | cut -d' ' -f1)
	have=$(ssh $o "$user@$h" "sha256sum '$d/big.bin' 2>/dev/null | cut -d' ' -f1")
	[ "$want" = "$have" ] || ssh $o "$user@$h" "cat > '$d/.big.tmp' && mv '$d/.big.tmp' '$d/big.bin'" < "$files/big.bin"
	sed "s/{{ .name }}/$h:$p/" "$files/site.tmpl" > "$out/site-$p"
	want=$(sha256sum "$out/site-$p" | cut -d' ' -f1)
	have=$(ssh $o "$user@$h" "sha256sum '$d/site.conf' 2>/dev/null | cut -d' ' -f1")
	[ "$want" = "$have" ] || ssh $o "$user@$h" "cat > '$d/.site.tmp' && mv '$d/.site.tmp' '$d/site.conf'" < "$out/site-$p"
	ssh $o "$user@$h" "grep -qxF '127.0.0.1 bench' '$d/hosts' 2>/dev/null || echo '127.0.0.1 bench' >> '$d/hosts'"
	ssh $o -O exit "$user@$h" 2>/dev/null || true
}
` + runHosts
