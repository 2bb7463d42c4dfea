package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// onHostServer starts a loopback sshd whose sessions have XDG_CACHE_HOME
// set to cache, so that the on-host cache of the test is its own.
func onHostServer(t *testing.T, cache string) *sshtest.Server {
	t.Helper()
	return sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"SetEnv XDG_CACHE_HOME=" + cache}})
}

// onHostArgs are the flags that reach s, and run the real binary on it
// with --on-host (the in-process run's own executable is the test binary).
func onHostArgs(t *testing.T, s *sshtest.Server) []string {
	return []string{"--key", s.ClientKeyPath, "--user", s.User,
		"--data", "ssh_known_hosts_file=" + filepath.Join(t.TempDir(), "known_hosts"), "--data", "ssh_allow_agent=false"}
}

// onHostDeploy writes a deploy that uses most builtins, a module, a local
// file, a template, print, a skipped and an ignored failing operation.
func onHostDeploy(t *testing.T, out string) string {
	dir := t.TempDir()
	writeFile(t, dir, "files/motd", "hello\n")
	writeFile(t, dir, "site.tmpl", "name={{ .host.name }} role={{ .role }}\n")
	writeFile(t, dir, "lib/util.star", "def greet(n):\n    return 'hi ' + n\n")
	return writeFile(t, dir, "deploy.star", fmt.Sprintf(`
load("lib/util.star", "greet")
load("@stdlib//files.star", "files")
d = %q
shell("mkdir -p " + d, creates = d + "/none")
put(d + "/motd", src = "files/motd")
template("site.tmpl", d + "/site.conf", vars = {"role": host.data.get("role", "none")})
files.line(d + "/hosts", "127.0.0.1 onhost")
r = shell("echo out; echo err >&2")
print(greet(host.name) + " " + r.stdout.strip())
shell("exit 3", ignore_errors = True, name = "fails")
shell("true", unless = "true")
print("arch=" + str(fact("arch")))
`, out))
}

// eventKey is what must be the same in a normal and an on-host run: kinds,
// hosts, operations, statuses and messages, not times.
func eventKeys(t *testing.T, out string) []string {
	t.Helper()
	var keys []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		for _, k := range []string{"time", "duration", "version"} {
			delete(e, k)
		}
		b, _ := json.Marshal(e)
		keys = append(keys, string(b))
	}
	return keys
}

// TestOnHostSameEventsAsNormalRun runs one deploy against loopback sshd
// the normal way and with --on-host: the JSON events are the same but for
// times; the second --on-host run uploads nothing and changes nothing.
func TestOnHostSameEventsAsNormalRun(t *testing.T) {
	bin := buildBinary(t)
	cache := t.TempDir()
	s := onHostServer(t, cache)
	host := "@ssh/" + s.Addr
	normalDir, onHostDir := t.TempDir(), t.TempDir()

	code, normal, errOut := runCLI(t, append(onHostArgs(t, s), "-v", "--json", "--data", "role=web", host, onHostDeploy(t, normalDir))...)
	if code != 0 {
		t.Fatalf("normal run: exit %d\n%s\n%s", code, normal, errOut)
	}
	// Entries of the cache from other deploys: one uploaded 40 days ago,
	// which the first run's upload prunes, and one from yesterday, kept.
	old, recent := filepath.Join(cache, "star-deploy", "bundles", "old.bundle"), filepath.Join(cache, "star-deploy", "bin", "recent")
	for p, age := range map[string]time.Duration{old: 40 * 24 * time.Hour, recent: 24 * time.Hour} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Dir(p), filepath.Base(p), "x")
		if err := os.Chtimes(p, time.Now().Add(-age), time.Now().Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	// The same deploy, written in another directory.
	script := onHostDeploy(t, onHostDir)
	args := append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+bin, "-v", "--json", "--data", "role=web", host, script)
	code, onHost, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("--on-host run: exit %d\n%s\n%s", code, onHost, errOut)
	}
	if !strings.Contains(errOut, "--on-host: uploaded star-deploy") {
		t.Errorf("the first run did not say it uploaded:\n%s", errOut)
	}
	want := strings.ReplaceAll(strings.Join(eventKeys(t, normal), "\n"), normalDir, onHostDir)
	got := strings.Join(eventKeys(t, onHost), "\n")
	if stripScriptDir(want) != stripScriptDir(got) {
		t.Errorf("events differ\nnormal:\n%s\n--on-host:\n%s\nstderr:\n%s", want, got, errOut)
	}
	for _, f := range []string{"motd", "site.conf", "hosts"} {
		a, _ := os.ReadFile(filepath.Join(normalDir, f))
		b, _ := os.ReadFile(filepath.Join(onHostDir, f))
		if string(a) != string(b) || len(a) == 0 {
			t.Errorf("%s: normal %q, on-host %q", f, a, b)
		}
	}

	if _, err := os.Stat(old); err == nil {
		t.Errorf("the upload did not prune %s, uploaded 40 days ago", old)
	}
	if err := os.Remove(recent); err != nil {
		t.Errorf("the upload pruned %s, uploaded yesterday: %v", recent, err)
	}
	// The cache: one binary, one bundle, private; a second run uploads
	// nothing and touches neither.
	bins, _ := filepath.Glob(filepath.Join(cache, "star-deploy", "bin", "*"))
	bundles, _ := filepath.Glob(filepath.Join(cache, "star-deploy", "bundles", "*.bundle"))
	if len(bins) != 1 || len(bundles) != 1 {
		t.Fatalf("cache holds %q and %q", bins, bundles)
	}
	if fi, err := os.Stat(filepath.Join(cache, "star-deploy")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir: %v %v", fi.Mode(), err)
	}
	mtime := func(p string) time.Time {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	before := []time.Time{mtime(bins[0]), mtime(bundles[0])}
	code, out, errOut := runCLI(t, append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+bin, "-v", "--data", "role=web", host, script)...)
	if code != 0 || !strings.Contains(errOut, "star-deploy and the bundle are cached") || strings.Contains(errOut, "uploaded") {
		t.Fatalf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
	if after := []time.Time{mtime(bins[0]), mtime(bundles[0])}; !slices.Equal(before, after) {
		t.Errorf("the second run rewrote the cache: %v, then %v", before, after)
	}
	if !strings.Contains(out, "hi "+s.Addr+" out") {
		t.Errorf("host.name is not the controller's name:\n%s", out)
	}
}

// stripScriptDir drops the directories of script positions, which differ
// between the two deploys.
func stripScriptDir(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		var e map[string]any
		json.Unmarshal([]byte(l), &e)
		if p, ok := e["pos"].(string); ok {
			e["pos"] = filepath.Base(p)
		}
		out, _ := json.Marshal(e)
		b.Write(out)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestOnHostFailureAndExitCode: a failing script fails the host with the
// error at its line, exit 1, as in a normal run.
func TestOnHostFailureAndExitCode(t *testing.T) {
	bin := buildBinary(t)
	s := onHostServer(t, t.TempDir())
	script := writeFile(t, t.TempDir(), "fail.star", "shell(\"true\")\nshell(\"echo boom >&2; exit 7\")\n")
	for _, onHost := range []bool{false, true} {
		args := onHostArgs(t, s)
		if onHost {
			args = append(args, "--on-host", "--on-host-binary", "linux/amd64="+bin)
		}
		code, out, errOut := runCLI(t, append(args, "@ssh/"+s.Addr, script)...)
		if code != 1 || !strings.Contains(out+errOut, "fail.star:2:") || !strings.Contains(out+errOut, "status 7") {
			t.Errorf("on-host=%v: exit %d\n%s\n%s", onHost, code, out, errOut)
		}
	}
}

// TestOnHostFallback: a host without a writable cache directory, and
// @local, run the normal way after a notice.
func TestOnHostFallback(t *testing.T) {
	bin := buildBinary(t)
	s := onHostServer(t, "/proc/no-such-dir")
	out := t.TempDir()
	script := writeFile(t, t.TempDir(), "d.star", fmt.Sprintf("put(%q + '/' + host.name.replace('/', '_').replace(':', '_'), content = 'x')\n", out))
	code, stdout, errOut := runCLI(t, append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+bin, "@ssh/"+s.Addr+",@local", script)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	for _, want := range []string{"no writable cache directory", "@local: --on-host: it is this machine"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("no notice %q:\n%s", want, errOut)
		}
	}
	if n, _ := filepath.Glob(filepath.Join(out, "*")); len(n) != 2 {
		t.Errorf("files %q", n)
	}
	// A platform without a binary: the notice names the flag to give.
	if hostPlatform("Linux aarch64") != "linux/arm64" || hostPlatform("Linux x86_64") != "linux/amd64" || hostPlatform("Plan9 mips") != "" {
		t.Error("hostPlatform")
	}
}

// TestOnHostUsage: a bad --on-host-binary is a usage error before any host.
func TestOnHostUsage(t *testing.T) {
	script := writeFile(t, t.TempDir(), "d.star", "shell('true')\n")
	code, _, errOut := runCLI(t, "--on-host", "--on-host-binary", "linux-amd64", "@ssh/127.0.0.1:1", script)
	if code != 2 || !strings.Contains(errOut, "want OS/ARCH=PATH") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// TestOnHostSudo: --sudo runs each operation with sudo on the host, as a
// normal run does (here as root, on loopback).
func TestOnHostSudo(t *testing.T) {
	bin := buildBinary(t)
	s := onHostServer(t, t.TempDir())
	script := writeFile(t, t.TempDir(), "d.star", "print('who=' + shell('id -un').stdout.strip())\n")
	code, out, errOut := runCLI(t, append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+bin, "--sudo", "@ssh/"+s.Addr, script)...)
	if code != 0 || !strings.Contains(out, "who=root") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestOnHostInterrupt: SIGINT during an on-host shell("sleep 30") exits
// 130 and leaves no remote star-deploy, no sleep and no temporary file.
func TestOnHostInterrupt(t *testing.T) {
	bin := buildBinary(t)
	cache := t.TempDir()
	s := onHostServer(t, cache)
	dir := t.TempDir()
	mark := filepath.Join(dir, "started")
	// The command ignores SIGTERM, so only the remote star-deploy's own
	// stop (SIGTERM, then SIGKILL to its process group) ends it: a kill of
	// the remote star-deploy alone would leave it running.
	script := writeFile(t, dir, "sleep.star", fmt.Sprintf("put(%q, content = 'x')\nshell('trap \"\" TERM; touch %s-go; sleep 30 # onhost-sleep-canary')\n", filepath.Join(dir, "f"), mark))
	r := startBinary(t, bin, append(onHostArgs(t, s), "--on-host", "@ssh/"+s.Addr, script)...)
	r.waitForFile(t, mark+"-go")
	r.signalAndWait(t, syscall.SIGINT, 30*time.Second)
	if code := r.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130\n%s\n%s", code, r.stdout.String(), r.stderr.String())
	}
	if !strings.Contains(r.stdout.String()+r.stderr.String(), "interrupted") {
		t.Errorf("no interrupted host:\n%s\n%s", r.stdout.String(), r.stderr.String())
	}
	// The remote processes end within the kill's bound (SIGTERM, then
	// SIGKILL half a second later).
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := processesMatching(t, "onhost-sleep-canary", runBundleCommand)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left running: %q", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range []string{dir, filepath.Join(cache, "star-deploy", "bin"), filepath.Join(cache, "star-deploy", "bundles")} {
		if names, _ := tempLeft(t, d); len(names) > 0 {
			t.Errorf("temporary files left in %s: %q", d, names)
		}
	}
}

// processesMatching lists the command lines of this machine's processes
// that contain one of words.
func processesMatching(t *testing.T, words ...string) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	self := fmt.Sprintf("/proc/%d/", os.Getpid())
	for _, p := range procs {
		if strings.HasPrefix(p, self) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		for _, w := range words {
			if strings.Contains(cmd, w) {
				out = append(out, cmd)
				break
			}
		}
	}
	return out
}

// TestOnHostDebian runs --on-host inside a Debian container over SSH, as a
// user whose sudo asks for a password: the binary (linked against the
// same glibc) runs there, sudo gets its password without it showing in
// any process's argv or environment, a second run uploads nothing, and
// Ctrl-C leaves no remote process.
func TestOnHostDebian(t *testing.T) {
	bin := buildBinary(t)
	c := sshtest.Fleet(t, 1)[0]
	inv := "@ssh/" + c.Addr
	dir := t.TempDir()
	const canary = sshtest.SudoPassword
	script := writeFile(t, dir, "sudo.star", `
r = shell("id -un; sleep 2", sudo = True)
print("whoami=" + r.stdout.strip())
put("/etc/star-deploy-onhost", content = "root file\n", sudo = True)
print("owner=" + fact("file", "/etc/star-deploy-onhost").owner)
print("me=" + shell("id -un").stdout.strip())
`)
	args := append(sshArgs(t, c, sshtest.UserPasswd, "--on-host", "--on-host-binary", "linux/amd64="+bin, "-v", "--data", "sudo_password="+canary), inv, script)
	for run, want := range []string{"uploaded star-deploy", "star-deploy and the bundle are cached"} {
		stop := watchSecret(t, c, canary)
		code, out, errOut := runCLI(t, args...)
		found := stop()
		if code != 0 || !strings.Contains(out, "whoami=root") || !strings.Contains(out, "owner=root") || !strings.Contains(out, "me="+sshtest.UserPasswd) {
			t.Fatalf("run %d: exit %d\n%s\n%s", run+1, code, out, errOut)
		}
		if !strings.Contains(errOut, "--on-host: "+want) {
			t.Errorf("run %d: no %q:\n%s", run+1, want, errOut)
		}
		if strings.Contains(out+errOut, canary) {
			t.Errorf("the sudo password appears in the output:\n%s\n%s", out, errOut)
		}
		if found != "" {
			t.Errorf("the sudo password appears in the container's process list:\n%s", found)
		}
	}
	ls, err := c.Exec(t, "sh", "-c", "d=/home/"+sshtest.UserPasswd+"/.cache/star-deploy; find $d/bin $d/bundles -type f | wc -l; stat -c %a $d")
	if err != nil || strings.Fields(ls)[0] != "2" || strings.Fields(ls)[1] != "700" {
		t.Errorf("the cache: %q (%v); want one binary, one bundle, mode 700", ls, err)
	}

	// Ctrl-C: the real binary, SIGINT during a sleep on the host.
	sleep := writeFile(t, dir, "sleep.star", "shell('touch /tmp/onhost-go; sleep 30 # onhost-debian-canary')\n")
	r := startBinary(t, bin, append(sshArgs(t, c, sshtest.UserNopasswd, "--on-host"), inv, sleep)...)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if out, _ := c.Exec(t, "sh", "-c", "test -e /tmp/onhost-go && echo yes"); strings.TrimSpace(out) == "yes" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sleep did not start\n%s\n%s", r.stdout.String(), r.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.signalAndWait(t, syscall.SIGINT, 30*time.Second)
	if code := r.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130\n%s\n%s", code, r.stdout.String(), r.stderr.String())
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		ps, _ := c.Exec(t, "sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | tr '\\n' ' ' | grep -o 'onhost-debian-canar[y]\\|__run-bundl[e]' || true")
		if strings.TrimSpace(ps) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left running in the container: %q", ps)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left, _ := c.Exec(t, "sh", "-c", "ls -A /home/"+sshtest.UserNopasswd+"/.cache/star-deploy/bin /home/"+sshtest.UserNopasswd+"/.cache/star-deploy/bundles /tmp | grep star-deploy- || true"); strings.TrimSpace(left) != "" {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestOnHostBinaryThatDoesNotRun: a binary that cannot start on the host
// (here a script whose interpreter is missing, as a glibc build's loader
// is on a musl host) has the host run the normal way after a notice.
func TestOnHostBinaryThatDoesNotRun(t *testing.T) {
	s := onHostServer(t, t.TempDir())
	bad := writeFile(t, t.TempDir(), "star-deploy", "#!/no/such/interpreter\n")
	out := t.TempDir()
	script := writeFile(t, t.TempDir(), "d.star", fmt.Sprintf("put(%q, content = 'x')\n", filepath.Join(out, "f")))
	code, stdout, errOut := runCLI(t, append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+bad, "@ssh/"+s.Addr, script)...)
	if code != 0 || !strings.Contains(errOut, "does not run there (exit 12") || !exists(t, filepath.Join(out, "f")) {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
}

// TestOnHostFromConfig: on_host = True in the config file turns it on, as
// the flag does (here for @local, which runs the normal way).
func TestOnHostFromConfig(t *testing.T) {
	dir := t.TempDir()
	config := writeFile(t, dir, "star-deploy.star", "on_host = True\n")
	script := writeFile(t, dir, "d.star", "print('ran')\n")
	code, out, errOut := runCLI(t, "--config", config, "@local", script)
	if code != 0 || !strings.Contains(out, "ran") || !strings.Contains(errOut, "@local: --on-host: it is this machine") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "--config", config, "--no-on-host", "@local", script)
	if code != 0 || strings.Contains(errOut, "--on-host") {
		t.Fatalf("--no-on-host: exit %d\n%s", code, errOut)
	}
}

// onHostHosts starts one sshd as three hosts (its own address and two more
// listeners) that share an on-host cache directory, and returns their
// names, @ssh/ADDR.
func onHostHosts(t *testing.T) (*sshtest.Server, []string) {
	s := sshtest.Start(t, sshtest.Options{Listen: []string{"127.0.0.1", "127.0.0.1"}, ExtraConfig: []string{"SetEnv XDG_CACHE_HOME=" + t.TempDir()}})
	var names []string
	for _, l := range s.Listeners {
		names = append(names, "@ssh/"+l)
	}
	return s, names
}

// TestOnHostManyHosts: three hosts sharing one cache directory upload it
// at once (atomically) and each runs with its own name and data.
func TestOnHostManyHosts(t *testing.T) {
	bin := buildBinary(t)
	s, names := onHostHosts(t)
	script := writeFile(t, t.TempDir(), "d.star", "print('name=' + host.name)\nshell('true')\n")
	code, out, errOut := runCLI(t, append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+bin, "--json", strings.Join(names, ","), script)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, l := range s.Listeners {
		if !strings.Contains(out, `"message":"name=`+l+`"`) || !strings.Contains(out, `"host":"`+l+`","status":"ok"`) {
			t.Errorf("host %s missing or not ok:\n%s", l, out)
		}
	}
	if !strings.Contains(out, `"exit_code":0,"counts":{"ok":3`) {
		t.Errorf("run_end:\n%s", out)
	}
}

// TestOnHostSerialFailPercent: --serial and --fail-percent schedule
// on-host runs as normal ones: with --serial 1 each host ends before the
// next begins; with --fail-percent 0 too, a first host that fails leaves
// the others not started, saying why.
func TestOnHostSerialFailPercent(t *testing.T) {
	bin := buildBinary(t)
	s, names := onHostHosts(t)
	script := writeFile(t, t.TempDir(), "d.star", fmt.Sprintf("shell('true')\nif host.name == %q and host.data.get('fail'):\n    fail('boom')\n", s.Listeners[0]))
	args := append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+bin, "--json", "--serial", "1")
	code, out, errOut := runCLI(t, append(args, strings.Join(names, ","), script)...)
	if code != 0 || strings.Contains(errOut, "normal way") {
		t.Fatalf("--serial 1: exit %d\n%s\n%s", code, out, errOut)
	}
	for i := 1; i < len(s.Listeners); i++ {
		end := strings.Index(out, `"kind":"host_end","host":"`+s.Listeners[i-1]+`"`)
		start := strings.Index(out, `"kind":"host_start","host":"`+s.Listeners[i]+`"`)
		if end < 0 || start < 0 || start < end {
			t.Errorf("--serial 1: %s began before %s ended:\n%s", s.Listeners[i], s.Listeners[i-1], out)
		}
	}
	code, out, errOut = runCLI(t, append(args, "--fail-percent", "0", "--data", "fail=1", strings.Join(names, ","), script)...)
	if code != 1 || !strings.Contains(out, `"host":"`+s.Listeners[0]+`","status":"failed"`) {
		t.Fatalf("--fail-percent 0: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, l := range s.Listeners[1:] {
		if !strings.Contains(out, `"kind":"host_end","host":"`+l+`","status":"not_started","error":"stopped: more than 0% of hosts failed (--fail-percent)"`) {
			t.Errorf("%s was not stopped:\n%s", l, out)
		}
	}
}

// TestOnHostDryDiff: --dry and --diff apply on the host.
func TestOnHostDryDiff(t *testing.T) {
	bin := buildBinary(t)
	s := onHostServer(t, t.TempDir())
	target := filepath.Join(t.TempDir(), "f")
	writeFile(t, filepath.Dir(target), "f", "old\n")
	script := writeFile(t, t.TempDir(), "d.star", fmt.Sprintf("put(%q, content = 'new\\n')\n", target))
	code, out, errOut := runCLI(t, append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+bin, "--dry", "--diff", "--json", "@ssh/"+s.Addr, script)...)
	if code != 0 || !strings.Contains(out, `"dry":true`) || !strings.Contains(out, `+new`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(target); string(b) != "old\n" {
		t.Errorf("--dry changed the file: %q", b)
	}
}

// TestOnHostDynamicBinaryWithoutLoader: a dynamically linked binary whose
// loader the host lacks (a glibc build on a musl host) is not uploaded:
// the host runs the normal way, after a notice that names the fix.
func TestOnHostDynamicBinaryWithoutLoader(t *testing.T) {
	bin := buildBinary(t)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	b := newOnHostBinary(bin, data)
	if b.interp == "" {
		// A static build (CGO_ENABLED=0) has no loader to lack: the other
		// tests upload and run it.
		t.Log("this build is static: no ELF interpreter to check")
		return
	}
	// The same binary, its loader renamed to one no host has (same length).
	other := "/" + strings.Repeat("x", len(b.interp)-1)
	patched := strings.Replace(string(data), b.interp+"\x00", other+"\x00", 1)
	if got := newOnHostBinary(bin, []byte(patched)).interp; got != other {
		t.Fatalf("renaming the ELF interpreter gave %q", got)
	}
	fake := writeFile(t, t.TempDir(), "star-deploy", patched)
	cache := t.TempDir()
	s := onHostServer(t, cache)
	out := filepath.Join(t.TempDir(), "f")
	script := writeFile(t, t.TempDir(), "d.star", fmt.Sprintf("put(%q, content = 'x')\n", out))
	code, stdout, errOut := runCLI(t, append(onHostArgs(t, s), "--on-host", "--on-host-binary", "linux/amd64="+fake, "@ssh/"+s.Addr, script)...)
	if code != 0 || !strings.Contains(errOut, "linked dynamically and the host has no "+other) || !exists(t, out) {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	if bins, _ := filepath.Glob(filepath.Join(cache, "star-deploy", "bin", "*")); len(bins) != 0 {
		t.Errorf("uploaded %q", bins)
	}
}

// TestOnHostDocker: --on-host through the Docker connector, into a
// container of the Debian test image: the second run finds the cache.
func TestOnHostDocker(t *testing.T) {
	bin := buildBinary(t)
	c := sshtest.Fleet(t, 1)[0]
	script := writeFile(t, t.TempDir(), "d.star", "print('on ' + fact('os')['id'])\nput('/tmp/onhost-docker', content = 'x')\n")
	for run, want := range []string{"uploaded star-deploy", "star-deploy and the bundle are cached"} {
		code, out, errOut := runCLI(t, "--on-host", "--on-host-binary", "linux/amd64="+bin, "-v", "@docker/"+c.Name, script)
		if code != 0 || !strings.Contains(out, "on debian") || !strings.Contains(errOut, "--on-host: "+want) {
			t.Fatalf("run %d: exit %d\n%s\n%s", run+1, code, out, errOut)
		}
	}
}
