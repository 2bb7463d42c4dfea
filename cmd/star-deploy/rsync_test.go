package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// needRsync skips t when rsync is not installed here (a failure under
// CI=true, which installs it).
func needRsync(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		sshtest.Skip(t, "needs rsync (apt-get install rsync)")
	}
}

// rsyncContainer is a Debian container of a Fleet with rsync installed
// (from Debian's mirror when the image lacks it), for the tests that copy
// to a remote host; rsync must be installed here too.
func rsyncContainer(t *testing.T) *sshtest.Container {
	t.Helper()
	needRsync(t)
	c := sshtest.Fleet(t, 1)[0]
	if out, err := c.Exec(t, "sh", "-c", "command -v rsync || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsync; } >/dev/null"); err != nil {
		t.Fatalf("install rsync in the container: %v\n%s", err, out)
	}
	return c
}

// rsyncSite writes the source tree the rsync tests copy, and a destination
// with a stale file (deleted by --delete) and files the excludes protect.
func rsyncSite(t *testing.T, dir string) (src, dest string) {
	t.Helper()
	src, dest = filepath.Join(dir, "site"), filepath.Join(dir, "www root")
	for name, content := range map[string]string{
		"index.html": "<h1>hi</h1>\n", "css/a.css": "a{}\n", "x.swp": "junk", "drafts/d.txt": "draft\n",
	} {
		writeFile(t, src, name, content)
	}
	if err := os.Symlink("index.html", filepath.Join(src, "home.html")); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"stale.html": "old", "mine.swp": "mine", "drafts/keep": "mine too"} {
		writeFile(t, dest, name, content)
	}
	return src, dest
}

// rsyncScript deploys site/ to dest with the rsync program and prints what
// it changed.
func rsyncScript(t *testing.T, dir, dest, extra string) string {
	t.Helper()
	return writeFile(t, dir, "rsync.star", `load("@stdlib//files.star", "files")
r = files.rsync("site/", `+q(dest)+`, flags = ["-a", "--delete", "--exclude=*.swp", "--exclude", "/drafts/"]`+extra+`)
print("changed=%s" % r.changed)
print("items=" + ",".join(sorted([l for l in r.stdout.split("\n") if l])))
`)
}

// printed returns the value of the line "key=..." in out.
func printed(t *testing.T, out, key string) string {
	t.Helper()
	for l := range strings.SplitSeq(out, "\n") {
		if _, v, ok := strings.Cut(l, "] "+key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in the output:\n%s", key, out)
	return ""
}

// TestRsync runs files.rsync with the rsync program on both ends through the
// real binary: on @local, and over SSH to a loopback sshd, with and without
// sudo. --dry reports the itemized changes the real run then makes and
// changes nothing; the real run honours --delete and --exclude and copies a
// symbolic link; the second run changes nothing.
func TestRsync(t *testing.T) {
	needRsync(t)
	bin := buildBinary(t)
	srv := sshtest.Start(t, sshtest.Options{})
	ssh := func(dir string) []string {
		return []string{"--key", srv.ClientKeyPath, "--user", srv.User, "--data", "ssh_allow_agent=false",
			"--data", "ssh_known_hosts_file=" + filepath.Join(dir, "kh"), "@ssh/" + srv.Addr}
	}
	for _, tc := range []struct {
		name  string
		host  func(dir string) []string
		extra string
	}{
		{"local", func(string) []string { return []string{"@local"} }, ""},
		{"ssh", ssh, ""},
		{"ssh with sudo", ssh, ", sudo = True"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.extra != "" {
				if _, err := exec.LookPath("sudo"); err != nil || os.Geteuid() != 0 {
					sshtest.Skip(t, "needs root and sudo")
				}
			}
			dir := t.TempDir()
			_, dest := rsyncSite(t, dir)
			script := rsyncScript(t, dir, dest, tc.extra)
			runs := func(dry bool) (string, string) {
				t.Helper()
				args := append([]string{}, tc.host(dir)...)
				if dry {
					args = append([]string{"--dry"}, args...)
				}
				out, err := exec.Command(bin, append(args, script)...).CombinedOutput()
				if err != nil {
					t.Fatalf("%v (dry %v)\n%s", err, dry, out)
				}
				return printed(t, string(out), "changed"), printed(t, string(out), "items")
			}

			changed, dry := runs(true)
			if changed != "True" || exists(t, filepath.Join(dest, "index.html")) || !exists(t, filepath.Join(dest, "stale.html")) {
				t.Fatalf("--dry: changed=%s, or it changed the destination", changed)
			}
			changed, real := runs(false)
			if changed != "True" || dry != real {
				t.Errorf("--dry said it would make\n  %s\nthe real run made\n  %s", dry, real)
			}
			for _, want := range []string{"*deleting   stale.html", "<f+++++++++ index.html", "<f+++++++++ css/a.css", "cL+++++++++ home.html -> index.html"} {
				if !slices.Contains(strings.Split(real, ","), want) {
					t.Errorf("the real run did not report %q: %s", want, real)
				}
			}
			if b, err := os.ReadFile(filepath.Join(dest, "css/a.css")); err != nil || string(b) != "a{}\n" {
				t.Errorf("css/a.css = %q, %v", b, err)
			}
			if l, err := os.Readlink(filepath.Join(dest, "home.html")); err != nil || l != "index.html" {
				t.Errorf("home.html is not the link: %q, %v", l, err)
			}
			for name, want := range map[string]bool{"stale.html": false, "x.swp": false, "drafts/d.txt": false, "mine.swp": true, "drafts/keep": true} {
				if got := exists(t, filepath.Join(dest, name)); got != want {
					t.Errorf("%s exists: %v, want %v", name, got, want)
				}
			}
			if changed, items := runs(false); changed != "False" || items != "" {
				t.Errorf("the second run: changed=%s, items %q", changed, items)
			}
		})
	}
}

// TestRsyncFallsBackWithoutLocalRsync: with no rsync on this machine's PATH,
// files.rsync to an SSH host (which has rsync) is files.sync: one operation
// per file, the same result, and a second run that changes nothing.
func TestRsyncFallsBackWithoutLocalRsync(t *testing.T) {
	bin := buildBinary(t)
	srv := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	dest := filepath.Join(dir, "www")
	writeFile(t, dir, "site/index.html", "<h1>hi</h1>\n")
	script := writeFile(t, dir, "fallback.star", `load("@stdlib//files.star", "files")
r = files.rsync("site/", `+q(dest)+`, flags = ["-a"])
print("changed=%s steps=%d" % (r.changed, len(r.steps)))
`)
	run := func() string {
		cmd := exec.Command(bin, "--key", srv.ClientKeyPath, "--user", srv.User, "--data", "ssh_allow_agent=false",
			"--data", "ssh_known_hosts_file="+filepath.Join(dir, "kh"), "@ssh/"+srv.Addr, script)
		cmd.Env = append(os.Environ(), "PATH="+t.TempDir()) // no rsync, no anything
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return string(out)
	}
	out := run()
	if !strings.Contains(out, "changed=True") || !strings.Contains(out, "rsync site/ "+dest+": index.html") {
		t.Errorf("not files.sync:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "index.html")); err != nil || string(b) != "<h1>hi</h1>\n" {
		t.Errorf("index.html = %q, %v", b, err)
	}
	if out := run(); !strings.Contains(out, "changed=False") {
		t.Errorf("the second run changed:\n%s", out)
	}
}

// TestRsyncInterrupt: Ctrl-C during a slow rsync stops the run within a
// bound, exits 130, and leaves neither the local rsync nor the remote
// rsync --server running, nor the relay's directory.
func TestRsyncInterrupt(t *testing.T) {
	needRsync(t)
	bin := buildBinary(t)
	srv := sshtest.Start(t, sshtest.Options{})
	for _, tc := range []struct {
		name string
		host func(dir string) []string
	}{
		{"local", func(string) []string { return []string{"@local"} }},
		{"ssh", func(dir string) []string {
			return []string{"--key", srv.ClientKeyPath, "--user", srv.User, "--data", "ssh_allow_agent=false",
				"--data", "ssh_known_hosts_file=" + filepath.Join(dir, "kh"), "@ssh/" + srv.Addr}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tmp := filepath.Join(dir, "tmp")
			if err := os.Mkdir(tmp, 0o700); err != nil {
				t.Fatal(err)
			}
			big := make([]byte, 8<<20)
			for i := range big {
				big[i] = byte(i * 7919 >> 3)
			}
			writeFile(t, dir, "site/big", string(big))
			dest := filepath.Join(dir, "slow-dest")
			script := writeFile(t, dir, "slow.star", `rsync("site/", `+q(dest)+`, flags = ["-a", "--bwlimit=64"])`)
			cmd := exec.Command(bin, append(tc.host(dir), script)...)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			r := &binaryRun{cmd: cmd, done: make(chan error, 1)}
			r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
			if err := r.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.cmd.Process.Kill() })
			go func() { r.done <- r.cmd.Wait() }()
			r.waitForFile(t, dest) // rsync made it: the transfer runs
			time.Sleep(300 * time.Millisecond)
			r.signalAndWait(t, syscall.SIGINT, 20*time.Second)
			if code := r.cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Errorf("exit code %d, want %d\n%s", code, exitInterrupted, r.stdout.String())
			}
			for i := 0; ; i++ {
				out, _ := exec.Command("pgrep", "rsync").Output()
				var ours []string
				for _, pid := range strings.Fields(string(out)) {
					// Only the processes of this test: the local rsync
					// names dest, the remote one works in it.
					cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
					cwd, _ := os.Readlink("/proc/" + pid + "/cwd")
					if strings.Contains(string(cmdline), dest) || strings.HasPrefix(cwd, dir) {
						ours = append(ours, pid)
					}
				}
				if len(ours) == 0 {
					break
				}
				if i == 50 {
					t.Fatalf("rsync still runs after the interrupt: pids %v", ours)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("the relay left %v in TMPDIR", left)
			}
		})
	}
}

// TestRsyncSudoPassword: files.rsync to a Debian container over SSH as a
// user whose sudo asks for a password: the password is fed to sudo before
// rsync's protocol starts on the same stdin, /srv (root's) gets the files,
// owned by root (--chown), and the password is not in the output.
func TestRsyncSudoPassword(t *testing.T) {
	c := rsyncContainer(t)
	dir := t.TempDir()
	writeFile(t, dir, "site/index.html", "<h1>hi</h1>\n")
	writeFile(t, dir, "site/css/a.css", "a{}\n")
	script := writeFile(t, dir, "pw.star", `load("@stdlib//files.star", "files")
r = files.rsync("site/", "/srv/rsync-pw", flags = ["-a", "--chown=root:root"], sudo = True)
print("changed=%s stdout=%r" % (r.changed, r.stdout))
`)
	run := func() string {
		t.Helper()
		code, out, errOut := runCLI(t, append(sshArgs(t, c, sshtest.UserPasswd, "--data", "sudo_password="+sshtest.SudoPassword), "@ssh/"+c.Addr, script)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		if strings.Contains(out+errOut, sshtest.SudoPassword) {
			t.Errorf("the sudo password appears in the output:\n%s\n%s", out, errOut)
		}
		return out
	}
	if out := run(); !strings.Contains(out, "changed=True") || !strings.Contains(out, "<f+++++++++ css/a.css") {
		t.Fatalf("first run:\n%s", out)
	}
	owners, err := c.Exec(t, "stat", "-c", "%U %n", "/srv/rsync-pw/index.html", "/srv/rsync-pw/css/a.css")
	if err != nil || owners != "root /srv/rsync-pw/index.html\nroot /srv/rsync-pw/css/a.css\n" {
		t.Errorf("owners %q, %v", owners, err)
	}
	if out := run(); !strings.Contains(out, `changed=False stdout=""`) {
		t.Errorf("second run:\n%s", out)
	}
}

// TestRsyncDocker: files.rsync to a container through the Docker
// connector (an exec with its stdin and stdout as rsync's stream), twice.
func TestRsyncDocker(t *testing.T) {
	c := rsyncContainer(t)
	dir := t.TempDir()
	writeFile(t, dir, "site/index.html", "<h1>hi</h1>\n")
	script := writeFile(t, dir, "docker.star", `load("@stdlib//files.star", "files")
r = files.rsync("site/", "/srv/rsync-docker", flags = ["-a", "--delete"])
print("changed=%s stdout=%r" % (r.changed, r.stdout))
`)
	for i, want := range []string{`changed=True stdout="created directory /srv/rsync-docker\ncd+++++++++ ./\n<f+++++++++ index.html\n"`, `changed=False stdout=""`} {
		code, out, errOut := runCLI(t, "@docker/"+c.Name, script)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("run %d: exit %d, want %s\n%s\n%s", i+1, code, want, out, errOut)
		}
	}
	if b, err := c.Exec(t, "cat", "/srv/rsync-docker/index.html"); err != nil || b != "<h1>hi</h1>\n" {
		t.Errorf("index.html = %q, %v", b, err)
	}
}
