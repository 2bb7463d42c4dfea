package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pullSetup is a deploy directory, a signing key trusted by an
// allowed_signers file, and state and cache directories.
type pullSetup struct {
	dir, out, key, allowed, state, cache string
}

func newPullSetup(t *testing.T) *pullSetup {
	t.Helper()
	needTool(t, "ssh-keygen")
	base := t.TempDir()
	s := &pullSetup{
		dir: filepath.Join(base, "deploy"), out: filepath.Join(base, "out"),
		key: filepath.Join(base, "release"), allowed: filepath.Join(base, "allowed_signers"),
		state: filepath.Join(base, "state"), cache: filepath.Join(base, "cache"),
	}
	os.MkdirAll(s.out, 0o755)
	writeFile(t, s.dir, "deploy.star", `load("@stdlib//files.star", "files")
load("lib/greet.star", "greet")
put(dest="`+s.out+`/motd", src="files/motd")
files.line(path="`+s.out+`/greeting", line=greet())
`)
	writeFile(t, s.dir, "lib/greet.star", `def greet():
    return "hello " + current_host().data.get("role", "nobody")
`)
	writeFile(t, s.dir, "files/motd", "welcome\n")
	writeFile(t, s.dir, "secrets/token", "s3cret\n")
	keygen(t, s.key)
	pub, _ := os.ReadFile(s.key + ".pub")
	os.WriteFile(s.allowed, []byte(`release@example.com namespaces="star-deploy-bundle" `+string(pub)), 0o644)
	return s
}

func keygen(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", filepath.Base(path), "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

// needTool skips (fails with CI=true) when a command is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true: a skip is a failure)", name)
		}
		t.Skipf("%s is not installed", name)
	}
}

// bundle makes dir/NAME, signed unless unsigned.
func (s *pullSetup) bundle(t *testing.T, name string, extra ...string) string {
	t.Helper()
	out := filepath.Join(filepath.Dir(s.dir), name)
	args := append([]string{"bundle", filepath.Join(s.dir, "deploy.star"), "-o", out, "--sign", s.key}, extra...)
	if code, stdout, stderr := runCLI(t, args...); code != 0 {
		t.Fatalf("bundle: exit %d\n%s%s", code, stdout, stderr)
	}
	return out
}

func (s *pullSetup) pull(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCLI(t, append([]string{"pull", "--state-dir", s.state, "--cache-dir", s.cache}, args...)...)
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", p, err, b)
	}
}

// A bundle made with bundle --sign, pulled from the file, runs the deploy
// on @local; ssh-keygen -Y verify accepts its signature; the report says
// what ran.
func TestBundleRoundTrip(t *testing.T) {
	s := newPullSetup(t)
	b := s.bundle(t, "site.bundle", "--exclude", "secrets")
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", s.allowed, "-I", "release@example.com", "-n", "star-deploy-bundle", "-s", b+".sig")
	data, _ := os.ReadFile(b)
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y verify: %v\n%s", err, out)
	}
	// The deploy directory may go away: the bundle holds everything.
	os.RemoveAll(s.dir)
	userCache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", userCache)
	code, stdout, stderr := s.pull(t, "--allowed-signers", s.allowed, b)
	if code != 0 {
		t.Fatalf("pull: exit %d\n%s%s", code, stdout, stderr)
	}
	// The compiled stdlib goes to --cache-dir, not to the user's cache.
	if m, _ := filepath.Glob(filepath.Join(s.cache, "compiled", "stdlib-files.star-*")); len(m) != 1 {
		t.Errorf("compiled files.star in --cache-dir: %v", m)
	}
	if exists(t, filepath.Join(userCache, "star-deploy")) {
		t.Errorf("pull wrote to the user's cache %s", userCache)
	}
	if got, _ := os.ReadFile(filepath.Join(s.out, "motd")); string(got) != "welcome\n" {
		t.Errorf("motd = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(s.out, "greeting")); string(got) != "hello nobody\n" {
		t.Errorf("greeting = %q", got)
	}
	var rep pullReport
	readJSON(t, filepath.Join(s.state, "last-run.json"), &rep)
	if rep.ExitCode != 0 || rep.Counts.Changed != 2 || rep.Signer == nil || rep.Signer.Principals[0] != "release@example.com" || len(rep.Bundle) != 64 || rep.Status != "ok" {
		t.Errorf("report %+v", rep)
	}
	// Again: nothing changes, and --dry, --json-file and --report work.
	events := filepath.Join(t.TempDir(), "events.jsonl")
	report := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr = s.pull(t, "--allowed-signers", s.allowed, "--dry", "--json-file", events, "--report", report, b)
	if code != 0 || stdout != "" {
		t.Fatalf("pull --json-file: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	ev, _ := os.ReadFile(events)
	if !bytes.Contains(ev, []byte(`"run_start"`)) || !bytes.Contains(ev, []byte(`"run_end"`)) {
		t.Errorf("events:\n%s", ev)
	}
	readJSON(t, report, &rep)
	if !rep.Dry || rep.Counts.Changed != 0 {
		t.Errorf("second report %+v", rep)
	}
}

// Two bundle runs of the same inputs are byte-identical, also after the
// inputs' modification times change.
func TestBundleReproducible(t *testing.T) {
	s := newPullSetup(t)
	a, _ := os.ReadFile(s.bundle(t, "a.bundle"))
	old := time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC)
	filepath.Walk(s.dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	b, _ := os.ReadFile(s.bundle(t, "b.bundle"))
	if !bytes.Equal(a, b) {
		t.Fatal("two bundles of the same deploy differ")
	}
}

// Unsigned, tampered and unknown-signer bundles are refused with exit 2
// before anything runs; --insecure-unsigned runs an unsigned one.
func TestPullRefuses(t *testing.T) {
	s := newPullSetup(t)
	b := s.bundle(t, "site.bundle")
	motd := filepath.Join(s.out, "motd")

	// Unsigned.
	unsigned := filepath.Join(t.TempDir(), "u.bundle")
	data, _ := os.ReadFile(b)
	os.WriteFile(unsigned, data, 0o644)
	code, _, stderr := s.pull(t, "--allowed-signers", s.allowed, unsigned)
	if code != 2 || !strings.Contains(stderr, "not signed") || !strings.Contains(stderr, "--insecure-unsigned") {
		t.Errorf("unsigned: exit %d, %s", code, stderr)
	}
	if exists(t, motd) {
		t.Fatal("an unsigned bundle ran")
	}
	if code, _, stderr := s.pull(t, unsigned); code != 2 || !strings.Contains(stderr, "--allowed-signers") {
		t.Errorf("no --allowed-signers: exit %d, %s", code, stderr)
	}

	// Tampered: one byte of the bundle changed after signing.
	tampered := filepath.Join(t.TempDir(), "t.bundle")
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(tampered, bad, 0o644)
	sig, _ := os.ReadFile(b + ".sig")
	os.WriteFile(tampered+".sig", sig, 0o644)
	code, _, stderr = s.pull(t, "--allowed-signers", s.allowed, tampered)
	if code != 2 || !strings.Contains(stderr, "does not match") {
		t.Errorf("tampered: exit %d, %s", code, stderr)
	}
	// --insecure-unsigned does not let a bad signature through.
	if code, _, _ := s.pull(t, "--allowed-signers", s.allowed, "--insecure-unsigned", tampered); code != 2 {
		t.Errorf("tampered with --insecure-unsigned: exit %d", code)
	}

	// Signed by a key not in allowed_signers.
	other := filepath.Join(t.TempDir(), "other")
	keygen(t, other)
	ob := filepath.Join(t.TempDir(), "o.bundle")
	if code, stdout, stderr := runCLI(t, "bundle", filepath.Join(s.dir, "deploy.star"), "-o", ob, "--sign", other); code != 0 {
		t.Fatalf("bundle: %d %s %s", code, stdout, stderr)
	}
	code, _, stderr = s.pull(t, "--allowed-signers", s.allowed, ob)
	if code != 2 || !strings.Contains(stderr, "not in the allowed signers") || !strings.Contains(stderr, s.allowed) {
		t.Errorf("unknown signer: exit %d, %s", code, stderr)
	}
	if exists(t, motd) {
		t.Fatal("a refused bundle ran")
	}
	var rep pullReport
	readJSON(t, filepath.Join(s.state, "last-run.json"), &rep)
	if rep.ExitCode != 2 || !strings.Contains(rep.Error, "allowed signers") {
		t.Errorf("report of a refused bundle: %+v", rep)
	}

	// --insecure-unsigned runs the unsigned bundle.
	code, stdout, stderr := s.pull(t, "--insecure-unsigned", unsigned)
	if code != 0 || !exists(t, motd) || !strings.Contains(stderr, "unverified") {
		t.Errorf("--insecure-unsigned: exit %d\n%s%s", code, stdout, stderr)
	}
}

// A file left out of the bundle fails the put() that reads it with a
// message naming the bundle and the file.
func TestPullExcludedFile(t *testing.T) {
	s := newPullSetup(t)
	b := s.bundle(t, "site.bundle", "--exclude", "files")
	code, stdout, stderr := s.pull(t, "--allowed-signers", s.allowed, b)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"files/motd is not in the bundle " + b, "--include files/motd"} {
		if !strings.Contains(stdout+stderr, want) {
			t.Errorf("output lacks %q:\n%s%s", want, stdout, stderr)
		}
	}
}

// Over HTTP: the first pull downloads, the second sends If-None-Match and
// gets 304, and runs the cached copy.
func TestPullHTTP(t *testing.T) {
	s := newPullSetup(t)
	b := s.bundle(t, "site.bundle")
	data, _ := os.ReadFile(b)
	sig, _ := os.ReadFile(b + ".sig")
	var gets, full, notModified atomic.Int32
	// The server wants the credentials of $NETRC for its host.
	const token = "canary-pull-token"
	netrc := writeFile(t, t.TempDir(), "netrc", "machine 127.0.0.1 login puller password "+token+"\n")
	t.Setenv("NETRC", netrc)
	gitCredentialStore(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if u, p, _ := r.BasicAuth(); u != "puller" || p != token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body := map[string][]byte{"/site.bundle": data, "/site.bundle.sig": sig}[r.URL.Path]
		if body == nil {
			http.NotFound(w, r)
			return
		}
		etag := `"` + r.URL.Path + `-v1"`
		if r.Header.Get("If-None-Match") == etag {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", etag)
		w.Write(body)
	}))
	defer srv.Close()
	url := srv.URL + "/site.bundle"
	for i := range 2 {
		code, stdout, stderr := s.pull(t, "--allowed-signers", s.allowed, url)
		if code != 0 {
			t.Fatalf("pull %d: exit %d\n%s%s", i, code, stdout, stderr)
		}
	}
	if gets.Load() != 4 || full.Load() != 2 || notModified.Load() != 2 {
		t.Errorf("requests: %d, full %d, 304 %d; want 4, 2 (bundle and sig once), 2", gets.Load(), full.Load(), notModified.Load())
	}
	var rep pullReport
	readJSON(t, filepath.Join(s.state, "last-run.json"), &rep)
	if rep.Fetched || rep.ExitCode != 0 {
		t.Errorf("second report: %+v (want downloaded false)", rep)
	}
	// --only-if-changed: the same bundle as the last good run does not run.
	os.Remove(filepath.Join(s.out, "motd"))
	code, _, stderr := s.pull(t, "--allowed-signers", s.allowed, "--only-if-changed", url)
	if code != 0 || exists(t, filepath.Join(s.out, "motd")) || !strings.Contains(stderr, "not run") {
		t.Errorf("--only-if-changed: exit %d, %s", code, stderr)
	}
	// Without the credentials, the error says where they go.
	os.WriteFile(netrc, nil, 0o600)
	code, _, stderr = s.pull(t, "--allowed-signers", s.allowed, url)
	if code == 0 || !strings.Contains(stderr, "401 Unauthorized: give credentials for 127.0.0.1 in ~/.netrc") || strings.Contains(stderr, token) {
		t.Errorf("no credentials: exit %d, %s", code, stderr)
	}
	// Without those of ~/.netrc, git's credential helper's: a wrong
	// password is refused, the right one fetches.
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	gitCredentialStore(t, "http://puller:wrong@"+hostPort)
	code, _, stderr = s.pull(t, "--allowed-signers", s.allowed, url)
	if want := "401 Unauthorized: the server refused the credentials git's credential helper gave for 127.0.0.1"; code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("helper, wrong password: exit %d, %s\nwant %q", code, stderr, want)
	}
	gitCredentialStore(t, "http://puller:"+token+"@"+hostPort)
	os.RemoveAll(filepath.Join(s.out, "motd"))
	code, stdout, stderr := s.pull(t, "--allowed-signers", s.allowed, url)
	if code != 0 || !exists(t, filepath.Join(s.out, "motd")) || strings.Contains(stdout+stderr, token) {
		t.Errorf("helper: exit %d\n%s%s", code, stdout, stderr)
	}
	gitCredentialStore(t)
	writeFile(t, filepath.Dir(netrc), "netrc", "machine 127.0.0.1 login puller password "+token+"\n")
	// A missing bundle is an error that names the URL.
	code, _, stderr = s.pull(t, "--allowed-signers", s.allowed, srv.URL+"/nope.bundle")
	if code != 2 || !strings.Contains(stderr, "/nope.bundle: 404") {
		t.Errorf("404: exit %d, %s", code, stderr)
	}
}

// From a git repository the test makes, at a branch, through git+file://.
func TestPullGit(t *testing.T) {
	needTool(t, "git")
	s := newPullSetup(t)
	b := s.bundle(t, "site.bundle")
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	os.MkdirAll(filepath.Join(repo, "deploy"), 0o755)
	for _, n := range []string{"site.bundle", "site.bundle.sig"} {
		d, _ := os.ReadFile(filepath.Join(filepath.Dir(b), n))
		os.WriteFile(filepath.Join(repo, "deploy", n), d, 0o644)
	}
	git("add", ".")
	git("commit", "-q", "-m", "bundle")
	src := "git+file://" + repo + "@main//deploy/site.bundle"
	code, stdout, stderr := s.pull(t, "--allowed-signers", s.allowed, src)
	if code != 0 || !exists(t, filepath.Join(s.out, "motd")) {
		t.Fatalf("pull %s: exit %d\n%s%s", src, code, stdout, stderr)
	}
	var rep pullReport
	readJSON(t, filepath.Join(s.state, "last-run.json"), &rep)
	if len(rep.Commit) != 40 {
		t.Errorf("report commit %q", rep.Commit)
	}
	code, _, stderr = s.pull(t, "--allowed-signers", s.allowed, "git+file://"+repo+"@main//nope.bundle")
	if code != 2 || !strings.Contains(stderr, "no file nope.bundle") {
		t.Errorf("missing path: exit %d, %s", code, stderr)
	}
}

func TestParseGitSource(t *testing.T) {
	for src, want := range map[string][3]string{
		"git+https://git.example.com/ops.git@v1.4//site.bundle": {"https://git.example.com/ops.git", "v1.4", "site.bundle"},
		"git+ssh://git@host/org/repo//deploy/site.bundle":       {"ssh://git@host/org/repo", "", "deploy/site.bundle"},
		"git+file:///srv/repo@0123abcd//a/b.bundle":             {"file:///srv/repo", "0123abcd", "a/b.bundle"},
		"git+https://user@host:8443/r.git@release/2//x.bundle":  {"https://user@host:8443/r.git", "release/2", "x.bundle"},
		"git+https://host/r.git@refs/heads/main//site.bundle":   {"https://host/r.git", "refs/heads/main", "site.bundle"},
		"git+https://host/r.git@feature-x//nested/dir/s.bundle": {"https://host/r.git", "feature-x", "nested/dir/s.bundle"},
	} {
		url, ref, p, err := parseGitSource(src)
		if err != nil || [3]string{url, ref, p} != want {
			t.Errorf("%s: %q %q %q %v, want %q", src, url, ref, p, err, want)
		}
	}
	if _, _, _, err := parseGitSource("git+https://host/repo.git@main"); err == nil || !strings.Contains(err.Error(), "//PATH") {
		t.Errorf("no path: %v", err)
	}
}

// Two pulls at once: by default the second skips (exit 0) while the first
// holds the lock; with --wait it waits and then runs.
func TestPullLock(t *testing.T) {
	s := newPullSetup(t)
	bin := buildBinary(t)
	started, release := filepath.Join(s.out, "started"), filepath.Join(s.out, "release")
	writeFile(t, s.dir, "deploy.star", `shell("touch `+started+`; i=0; while [ ! -e `+release+` ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done")
shell("echo run >> `+s.out+`/runs")
`)
	b := s.bundle(t, "site.bundle")
	args := []string{"pull", "--state-dir", s.state, "--cache-dir", s.cache, "--allowed-signers", s.allowed}
	first := startBinary(t, bin, append(args, b)...)
	first.waitForFile(t, started)

	code, _, stderr := runCLI(t, append(args, b)...)
	if code != 0 || !strings.Contains(stderr, "skipped this run") {
		t.Errorf("second pull: exit %d, %s", code, stderr)
	}
	waiter := startBinary(t, bin, append(args, "--wait", b)...)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(waiter.stderr.String(), "waiting"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("--wait did not wait: %s", waiter.stderr.String())
		}
	}
	os.WriteFile(release, nil, 0o644)
	for _, r := range []*binaryRun{first, waiter} {
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("pull: %v\n%s%s", err, r.stdout.String(), r.stderr.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatal("a pull did not end")
		}
	}
	if runs, _ := os.ReadFile(filepath.Join(s.out, "runs")); string(runs) != "run\nrun\n" {
		t.Errorf("runs = %q, want the first and the waiting one", runs)
	}
}

// bundle --inventory carries each host's data, secrets left out; pull
// --host picks a host's, by name or address.
func TestPullInventoryData(t *testing.T) {
	s := newPullSetup(t)
	inv := writeFile(t, t.TempDir(), "inventory.star", `web = [("@ssh/deploy@web1.example.com:22", {"role": "web", "ssh_password": "hunter2", "port": 8080})]
db = [("db1", {"role": "db"})]
`)
	b := s.bundle(t, "site.bundle", "--inventory", inv)
	data, _ := os.ReadFile(b)
	if bytes.Contains(data, []byte("hunter2")) {
		t.Fatal("a secret went into the bundle")
	}
	code, stdout, stderr := s.pull(t, "--allowed-signers", s.allowed, "--host", "web1", b)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(s.out, "greeting")); string(got) != "hello web\n" {
		t.Errorf("greeting = %q", got)
	}
	code, _, stderr = s.pull(t, "--allowed-signers", s.allowed, "--host", "mail1", b)
	if code != 2 || !strings.Contains(stderr, "not of --host mail1") || !strings.Contains(stderr, "db1") {
		t.Errorf("unknown host: exit %d, %s", code, stderr)
	}
}
