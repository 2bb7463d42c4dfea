package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// moduleRepo is a git repository the test makes: web.star loads its
// sibling lib/sib.star; tag v1.0 (lightweight) says "v1", tag v2.0
// (annotated) "v2".
type moduleRepo struct {
	dir    string
	v1, v2 string // commits
}

func newModuleRepo(t *testing.T) *moduleRepo {
	t.Helper()
	needTool(t, "git")
	r := &moduleRepo{dir: filepath.Join(t.TempDir(), "web-modules")}
	os.MkdirAll(r.dir, 0o755)
	r.git(t, "init", "-q", "-b", "main")
	writeFile(t, r.dir, "lib/sib.star", "def greet(v):\n    return \"hello from \" + v\n")
	writeFile(t, r.dir, "web.star", "load(\"lib/sib.star\", \"greet\")\n\ndef hello():\n    return greet(\"v1\")\n")
	r.git(t, "add", ".")
	r.git(t, "commit", "-q", "-m", "v1")
	r.git(t, "tag", "v1.0")
	r.v1 = r.git(t, "rev-parse", "HEAD")
	writeFile(t, r.dir, "web.star", "load(\"lib/sib.star\", \"greet\")\n\ndef hello():\n    return greet(\"v2\")\n")
	r.git(t, "commit", "-q", "-am", "v2")
	r.git(t, "tag", "-a", "v2.0", "-m", "v2")
	r.v2 = r.git(t, "rev-parse", "HEAD")
	return r
}

func (r *moduleRepo) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// serveHTTP serves the repository with git http-backend (Debian's git)
// behind a CGI handler on 127.0.0.1, counting the requests; the URL is
// http://127.0.0.1:PORT/web-modules/.git.
func (r *moduleRepo) serveHTTP(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	return r.serveHTTPAs(t, "", "")
}

// serveHTTPAs is serveHTTP answering only requests that authenticate as
// user with password (HTTP basic authentication), 401 to the others;
// user "" lets every request through.
func (r *moduleRepo) serveHTTPAs(t *testing.T, user, password string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git-http-backend: %v (CI=true: a skip is a failure)", err)
		}
		t.Skipf("git-http-backend: %v", err)
	}
	var n atomic.Int64
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(r.dir), "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n.Add(1)
		if u, p, _ := req.BasicAuth(); user != "" && (u != user || p != password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte("who are you?"))
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// readLock reads a lock file.
func readLock(t *testing.T, path string) map[string]struct {
	Commit string
	Files  map[string]string
} {
	t.Helper()
	var l struct {
		Version int
		Sources map[string]struct {
			Commit string
			Files  map[string]string
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Version != 1 {
		t.Fatalf("lock %s: %v\n%s", path, err, b)
	}
	return l.Sources
}

// A git+file:// module, its sibling, the lock written then honoured after
// the tag moved, on a fresh cache too; a changed cached copy is a mismatch
// that names the source and the file; mod verify finds it; mod update
// moves the lock.
func TestModulesFileLock(t *testing.T) {
	repo := newModuleRepo(t)
	dir, cache := t.TempDir(), t.TempDir()
	src := "git+file://" + repo.dir + "@v1.0"
	deploy := writeFile(t, dir, "d.star", "x = 1\nload(\""+src+"//web.star\", \"hello\")\nprint(hello())\n")
	lock := filepath.Join(dir, "star-deploy.lock")
	code, stdout, stderr := runCLI(t, "--no-frozen", "--module-cache", cache, "@local", deploy)
	if code != 0 || !strings.Contains(stdout, "hello from v1") {
		t.Fatalf("first run: exit %d\n%s%s", code, stdout, stderr)
	}
	l := readLock(t, lock)
	if e := l[src]; e.Commit != repo.v1 || len(e.Files) != 2 || !strings.HasPrefix(e.Files["lib/sib.star"], "sha256:") {
		t.Fatalf("lock %+v; want commit %s and web.star, lib/sib.star", l, repo.v1)
	}
	if !exists(t, filepath.Join(cache, repo.v1, "lib", "sib.star")) {
		t.Errorf("the cache has no directory of commit %s", repo.v1)
	}

	repo.git(t, "tag", "-f", "v1.0", repo.v2)
	for _, c := range []string{cache, t.TempDir()} { // the cache, and a fresh one
		code, stdout, stderr = runCLI(t, "--frozen", "--module-cache", c, "@local", deploy)
		if code != 0 || !strings.Contains(stdout, "hello from v1") {
			t.Fatalf("run after the tag moved (cache %s): exit %d; want the locked v1\n%s%s", c, code, stdout, stderr)
		}
	}

	// A changed cached copy no longer matches the lock.
	writeFile(t, cache, filepath.Join(repo.v1, "web.star"), "def hello():\n    return \"evil\"\n")
	code, _, stderr = runCLI(t, "--module-cache", cache, "@local", deploy)
	want := "d.star:2:6: cannot load " + src + "//web.star: " + src + ": web.star does not match " + lock
	if code != 2 || !strings.Contains(stderr, want) {
		t.Fatalf("tampered cache: exit %d, stderr:\n%s\nwant %q", code, stderr, want)
	}
	code, _, stderr = runCLI(t, "--lock-file", lock, "--module-cache", cache, "mod", "verify")
	if code != 2 || !strings.Contains(stderr, "the cached copy") || !strings.Contains(stderr, "web.star was changed") {
		t.Fatalf("mod verify: exit %d\n%s", code, stderr)
	}
	os.RemoveAll(filepath.Join(cache, repo.v1))
	code, stdout, stderr = runCLI(t, "--lock-file", lock, "--module-cache", cache, "mod", "verify")
	if code != 0 || !strings.Contains(stdout, "2 files verified") {
		t.Fatalf("mod verify: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, "--lock-file", lock, "--module-cache", cache, "mod", "update")
	if code != 0 || !strings.Contains(stdout, src+": "+repo.v1[:12]+" -> "+repo.v2[:12]) {
		t.Fatalf("mod update: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "--frozen", "--module-cache", cache, "@local", deploy)
	if code != 0 || !strings.Contains(stdout, "hello from v2") {
		t.Fatalf("run after mod update: exit %d\n%s%s", code, stdout, stderr)
	}
}

// Over HTTP (git http-backend on 127.0.0.1), the alias form of the config
// file and the direct form: the lock goes beside the config file; a second
// run fetches nothing, and runs with the server stopped; mod vendor
// serves a run with an empty cache.
func TestModulesHTTPAlias(t *testing.T) {
	repo := newModuleRepo(t)
	srv, requests := repo.serveHTTP(t)
	url := srv.URL + "/web-modules/.git"
	cfgDir, dir, cache := t.TempDir(), t.TempDir(), t.TempDir()
	cfg := writeFile(t, cfgDir, "star-deploy.star", "modules = {\"web\": \"git+"+url+"@v2.0\"}\n")
	deploy := writeFile(t, dir, "d.star", "load(\"@web//web.star\", \"hello\")\nload(\"git+"+url+"@v1.0//web.star\", hello1 = \"hello\")\nprint(hello(), hello1())\n")
	args := []string{"--config", cfg, "--module-cache", cache, "@local", deploy}
	code, stdout, stderr := runCLI(t, append([]string{"--no-frozen"}, args...)...)
	if code != 0 || !strings.Contains(stdout, "hello from v2 hello from v1") {
		t.Fatalf("first run: exit %d\n%s%s", code, stdout, stderr)
	}
	l := readLock(t, filepath.Join(cfgDir, "star-deploy.lock"))
	if l["git+"+url+"@v2.0"].Commit != repo.v2 || l["git+"+url+"@v1.0"].Commit != repo.v1 {
		t.Fatalf("lock %+v", l)
	}
	if requests.Load() == 0 {
		t.Fatal("the first run made no request to the git server")
	}
	before := requests.Load()
	code, stdout, stderr = runCLI(t, args...)
	if code != 0 || requests.Load() != before {
		t.Fatalf("second run: exit %d, %d requests (want none)\n%s%s", code, requests.Load()-before, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "--config", cfg, "--module-cache", cache, "mod", "update", "web")
	if code != 0 || !strings.Contains(stdout, "every source is at the commit its REF names") {
		t.Fatalf("mod update web: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "--config", cfg, "--module-cache", cache, "mod", "update", "db")
	if code != 2 || !strings.Contains(stderr, "db is not in") {
		t.Fatalf("mod update db: exit %d\n%s", code, stderr)
	}
	vendor := filepath.Join(t.TempDir(), "vendor")
	code, stdout, stderr = runCLI(t, "--config", cfg, "--module-cache", cache, "mod", "vendor", vendor)
	if code != 0 || !strings.Contains(stdout, "4 files in") {
		t.Fatalf("mod vendor: exit %d\n%s%s", code, stdout, stderr)
	}
	srv.Close()
	for _, c := range []string{cache, vendor} {
		args[3] = c
		code, stdout, stderr = runCLI(t, args...)
		if code != 0 || !strings.Contains(stdout, "hello from v2 hello from v1") {
			t.Fatalf("run with the server stopped (cache %s): exit %d\n%s%s", c, code, stdout, stderr)
		}
	}
	// A source the lock lacks needs the server: the error names the load.
	writeFile(t, dir, "d.star", "load(\"git+"+url+"@main//web.star\", \"hello\")\n")
	code, _, stderr = runCLI(t, append([]string{"--no-frozen"}, args...)...)
	if code != 2 || !strings.Contains(stderr, "d.star:1:6: cannot load git+"+url+"@main//web.star: fetch "+url) {
		t.Fatalf("server stopped: exit %d\n%s", code, stderr)
	}
}

// gitCredentialStore points git's config at a file of the test's, whose
// credential helper is `store` with lines (https://USER:PASSWORD@HOST:PORT)
// in its file; it returns the store file.
func gitCredentialStore(t *testing.T, lines ...string) string {
	t.Helper()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	if len(lines) > 0 {
		writeFile(t, dir, "store", strings.Join(lines, "\n")+"\n")
	}
	t.Setenv("GIT_CONFIG_GLOBAL", writeFile(t, dir, "gitconfig", "[credential]\n\thelper = store --file="+store+"\n"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	return store
}

// Over HTTP with basic authentication: without credentials a load fails
// (exit 2, naming the load, the host and ~/.netrc); a wrong password is
// refused; the entry of $NETRC for the host fetches, and the token shows
// in no output, lock or cache file. Without one, git's credential helper
// is asked: its wrong password is refused (and the helper told, so that
// it forgets it), its right one fetches.
func TestModulesHTTPCredentials(t *testing.T) {
	repo := newModuleRepo(t)
	const token = "canary-git-token"
	srv, _ := repo.serveHTTPAs(t, "deployer", token)
	gitCredentialStore(t)
	url := srv.URL + "/web-modules/.git"
	dir, cache := t.TempDir(), t.TempDir()
	deploy := writeFile(t, dir, "d.star", "load(\"git+"+url+"@v2.0//web.star\", \"hello\")\nprint(hello())\n")
	args := []string{"--no-frozen", "--module-cache", cache, "@local", deploy}
	netrc := filepath.Join(dir, "netrc")
	t.Setenv("NETRC", netrc)
	for _, tc := range []struct{ netrc, want string }{
		{"", "d.star:1:6: cannot load git+" + url + "@v2.0//web.star: fetch " + url + ": authentication required: who are you?: give credentials for 127.0.0.1 in ~/.netrc"},
		{"machine 127.0.0.1 login deployer password wrong-token\n", "the server refused the credentials for 127.0.0.1"},
	} {
		writeFile(t, dir, "netrc", tc.netrc)
		code, stdout, stderr := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Contains(stdout+stderr, token) {
			t.Errorf("netrc %q: exit %d, want 2 and %q\n%s%s", tc.netrc, code, tc.want, stdout, stderr)
		}
	}
	// A default entry, a macdef and another machine before the host's own
	// entry, its password quoted.
	writeFile(t, dir, "netrc", "default login nobody password nothing\nmacdef init\ncd /\n\nmachine git.example.com login x password y\n"+
		"machine 127.0.0.1\n  login deployer\n  password \""+token+"\"\n")
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 || !strings.Contains(stdout, "hello from v2") {
		t.Fatalf("with credentials: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, token) {
		t.Errorf("the token shows in the output:\n%s%s", stdout, stderr)
	}
	noToken := func(roots ...string) {
		t.Helper()
		for _, root := range roots {
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(token)) {
						t.Errorf("%s holds the token", p)
					}
				}
				return nil
			})
		}
	}
	noToken(cache, filepath.Join(dir, "star-deploy.lock"))

	// git's credential helper, with a fresh cache and no lock.
	writeFile(t, dir, "netrc", "")
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	store := gitCredentialStore(t, "http://deployer:wrong-token@"+hostPort)
	os.Remove(filepath.Join(dir, "star-deploy.lock"))
	args[2] = t.TempDir()
	code, stdout, stderr = runCLI(t, args...)
	if want := "the server refused the credentials git's credential helper gave for 127.0.0.1"; code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("helper with a wrong password: exit %d, want 2 and %q\n%s%s", code, want, stdout, stderr)
	}
	if b, _ := os.ReadFile(store); bytes.Contains(b, []byte("wrong-token")) {
		t.Errorf("the helper was not told the password was refused: its store still holds %q", b)
	}
	store = gitCredentialStore(t, "http://deployer:"+token+"@"+hostPort)
	code, stdout, stderr = runCLI(t, args...)
	if code != 0 || !strings.Contains(stdout, "hello from v2") || strings.Contains(stdout+stderr, token) {
		t.Fatalf("helper with the password: exit %d\n%s%s", code, stdout, stderr)
	}
	noToken(args[2], filepath.Join(dir, "star-deploy.lock"))
}

// Without a lock, --frozen (and CI=true) fail before any host runs, saying
// to run mod lock, which writes it; a bad ref, a missing file and an
// unknown alias exit 2 naming the load() line.
func TestModulesFrozenAndErrors(t *testing.T) {
	repo := newModuleRepo(t)
	dir, cache := t.TempDir(), t.TempDir()
	src := "git+file://" + repo.dir + "@v2.0"
	out := filepath.Join(dir, "ran")
	deploy := writeFile(t, dir, "d.star", "load(\""+src+"//web.star\", \"hello\")\nput(\""+out+"\", content = hello())\n")
	code, _, stderr := runCLI(t, "--frozen", "--module-cache", cache, "@local", deploy)
	if code != 2 || !strings.Contains(stderr, "d.star:1:6:") || !strings.Contains(stderr, src+" is not in "+filepath.Join(dir, "star-deploy.lock")+"; run star-deploy mod lock") || exists(t, out) {
		t.Fatalf("--frozen without a lock: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runCLI(t, "--lock-file", filepath.Join(dir, "star-deploy.lock"), "mod", "verify")
	if code != 2 || !strings.Contains(stderr, "no lock file") {
		t.Fatalf("mod verify without a lock: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "--module-cache", cache, "mod", "lock", deploy)
	if code != 0 || !strings.Contains(stdout, "1 sources, 2 files") {
		t.Fatalf("mod lock: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr = runCLI(t, "--frozen", "--module-cache", cache, "@local", deploy); code != 0 || !exists(t, out) {
		t.Fatalf("frozen run with the lock: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, c := range []struct{ load, want string }{
		{"git+file://" + repo.dir + "@v9//web.star", `has no tag, branch or commit "v9"`},
		{"git+file://" + repo.dir + "@v2.0//nope.star", "has no file nope.star at commit " + repo.v2[:12]},
		{"git+file://" + repo.dir + "@" + repo.v1[:10] + "//web.star", ""},
		{"@web//web.star", "no source is named web"},
		{"git+ftp://host/x@v1//web.star", `unknown scheme "ftp"`},
		{"git+file://" + repo.dir + "@v2.0//../x.star", "want a path inside the repository"},
	} {
		bad := writeFile(t, dir, "bad.star", "x = 1\nload(\""+c.load+"\", \"hello\")\n")
		code, _, stderr := runCLI(t, "--no-frozen", "--lock-file", filepath.Join(dir, "other.lock"), "--module-cache", cache, "@local", bad)
		if c.want == "" {
			if code != 0 {
				t.Errorf("load(%q): exit %d\n%s", c.load, code, stderr)
			}
			continue
		}
		if code != 2 || !strings.Contains(stderr, "bad.star:2:6:") || !strings.Contains(stderr, c.want) {
			t.Errorf("load(%q): exit %d, stderr:\n%s\nwant %q", c.load, code, stderr, c.want)
		}
	}
}

// A bundle carries the locked remote modules (alias and direct form, and
// the sibling a remote module loads): pulled with the git server stopped
// and an empty module cache, it runs them at the locked commits.
func TestModulesInBundle(t *testing.T) {
	repo := newModuleRepo(t)
	srv, _ := repo.serveHTTP(t)
	url := srv.URL + "/web-modules/.git"
	s := newPullSetup(t)
	cache := t.TempDir()
	cfg := writeFile(t, t.TempDir(), "star-deploy.star", "modules = {\"web\": \"git+"+url+"@v2.0\"}\n")
	writeFile(t, s.dir, "deploy.star", "load(\"@web//web.star\", \"hello\")\nload(\"git+"+url+"@v1.0//web.star\", hello1 = \"hello\")\nput(dest=\""+s.out+"/motd\", content=hello() + \" \" + hello1())\n")
	out := filepath.Join(filepath.Dir(s.dir), "site.bundle")
	code, stdout, stderr := runCLI(t, "--config", cfg, "--no-frozen", "--module-cache", cache, "bundle", filepath.Join(s.dir, "deploy.star"), "-o", out, "--sign", s.key)
	if code != 0 || !strings.Contains(stdout, "4 remote files") {
		t.Fatalf("bundle: exit %d\n%s%s", code, stdout, stderr)
	}
	if l := readLock(t, filepath.Join(filepath.Dir(cfg), "star-deploy.lock")); l["git+"+url+"@v1.0"].Commit != repo.v1 {
		t.Fatalf("bundle wrote no lock entry for v1.0: %+v", l)
	}
	srv.Close()
	os.RemoveAll(cache)
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no user cache either
	code, stdout, stderr = s.pull(t, "--allowed-signers", s.allowed, out)
	if code != 0 {
		t.Fatalf("pull: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(s.out, "motd")); string(b) != "hello from v2 hello from v1" {
		t.Errorf("motd = %q", b)
	}
}

// git+ssh against a real OpenSSH sshd on 127.0.0.1, through the SSH
// connector: the URL names a Host alias of ~/.ssh/config, whose HostName,
// Port, User and IdentityFile (no agent; go-git's own transport honoured
// none of User, IdentityFile, ProxyJump) reach the bare repository, and
// StrictHostKeyChecking yes refuses the unknown host key with the
// connector's message, naming the load; known, the key lets the fetch
// through (a REF directly, the HEAD through a ProxyJump). Without it, the
// connector's accept-new records the key, and a changed key is refused. A
// jump host that cannot be reached and a missing repository name the load.
func TestModulesSSH(t *testing.T) {
	repo := newModuleRepo(t)
	bare := filepath.Join(t.TempDir(), "web-modules.git")
	repo.git(t, "clone", "-q", "--bare", repo.dir, bare)
	srv := sshtest.Start(t, sshtest.Options{HostKeyTypes: []string{"ed25519"}})
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	known := filepath.Join(home, ".ssh", "known_hosts")
	writeFile(t, home, ".ssh/known_hosts", "")
	// gitbehind is gitbox again, reached through gitbox (ProxyJump);
	// nojump's jump host does not answer.
	writeFile(t, home, ".ssh/config", fmt.Sprintf("Host gitbox gitbehind nojump\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n"+
		"Host gitbehind\n  ProxyJump gitbox\nHost nojump\n  ProxyJump %s@127.0.0.1:1\n"+
		// gitnew: the connector's default, accept-new, with known_hosts of its own.
		"Host gitnew\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n",
		srv.Host, srv.Port, srv.User, srv.ClientKeyPath, srv.User, srv.Host, srv.Port, srv.User, srv.ClientKeyPath, filepath.Join(home, "known_new")))
	dir := t.TempDir()
	src := "git+ssh://gitbox" + bare + "@v2.0"
	head := "git+ssh://gitbehind" + bare
	deploy := writeFile(t, dir, "d.star", "load(\""+src+"//web.star\", \"hello\")\nload(\""+head+"//web.star\", hello2 = \"hello\")\nprint(hello(), hello2())\n")
	args := []string{"--no-frozen", "--module-cache", t.TempDir(), "@local", deploy}
	code, _, stderr := runCLI(t, args...)
	if code != 2 || !strings.Contains(stderr, "d.star:1:6: cannot load "+src+"//web.star") || !strings.Contains(stderr, fmt.Sprintf("host key for [%s]:%d is not known", srv.Host, srv.Port)) {
		t.Fatalf("unknown host key: exit %d\n%s", code, stderr)
	}
	writeFile(t, filepath.Dir(known), "known_hosts", fmt.Sprintf("[%s]:%d %s\n", srv.Host, srv.Port, srv.HostPublicKeys[0]))
	logins := strings.Count(srv.Log(), "Accepted publickey")
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 || !strings.Contains(stdout, "hello from v2 hello from v2") {
		t.Fatalf("git+ssh: exit %d\n%s%s", code, stdout, stderr)
	}
	// One connection per server: gitbox's fetch; gitbehind's listing of
	// its HEAD and its fetch share one, with one to the jump host.
	if n := strings.Count(srv.Log(), "Accepted publickey") - logins; n != 3 {
		t.Errorf("%d SSH logins for the two sources, want 3 (gitbox, and gitbehind through gitbox)", n)
	}
	if l := readLock(t, filepath.Join(dir, "star-deploy.lock")); l[src].Commit != repo.v2 || l[head].Commit != repo.v2 {
		t.Errorf("lock %+v", l)
	}

	// accept-new records the unknown host; a key that is not the host's
	// is then refused as changed.
	fresh := "git+ssh://gitnew" + bare + "@v1.0"
	writeFile(t, dir, "new.star", "load(\""+fresh+"//web.star\", \"hello\")\nprint(hello())\n")
	code, stdout, stderr = runCLI(t, "--no-frozen", "--module-cache", t.TempDir(), "@local", filepath.Join(dir, "new.star"))
	if b, _ := os.ReadFile(filepath.Join(home, "known_new")); code != 0 || !strings.Contains(stdout, "hello from v1") || !strings.Contains(string(b), srv.HostPublicKeys[0]) {
		t.Fatalf("accept-new: exit %d, known_hosts %q\n%s%s", code, b, stdout, stderr)
	}
	writeFile(t, home, "known_new", fmt.Sprintf("[%s]:%d %s\n", srv.Host, srv.Port, srv.ClientPublicKey))
	code, _, stderr = runCLI(t, "--no-frozen", "--module-cache", t.TempDir(), "@local", filepath.Join(dir, "new.star"))
	if code != 2 || !strings.Contains(stderr, "new.star:1:6: cannot load "+fresh+"//web.star") || !strings.Contains(stderr, "has changed") {
		t.Fatalf("a changed host key: exit %d\n%s", code, stderr)
	}

	nojump := "git+ssh://nojump" + bare + "@v1.0"
	bad := writeFile(t, dir, "bad.star", "x = 1\nload(\""+nojump+"//web.star\", \"hello\")\n")
	code, _, stderr = runCLI(t, "--no-frozen", "--module-cache", t.TempDir(), "@local", bad)
	if code != 2 || !strings.Contains(stderr, "bad.star:2:6: cannot load "+nojump+"//web.star") || !strings.Contains(stderr, "proxy jump "+srv.User+"@127.0.0.1:1") {
		t.Fatalf("a jump host that does not answer: exit %d\n%s", code, stderr)
	}

	missing := "git+ssh://gitbox" + filepath.Join(dir, "nope.git") + "@v1.0"
	bad = writeFile(t, dir, "bad.star", "x = 1\nload(\""+missing+"//web.star\", \"hello\")\n")
	code, _, stderr = runCLI(t, "--no-frozen", "--module-cache", t.TempDir(), "@local", bad)
	if code != 2 || !strings.Contains(stderr, "bad.star:2:6: cannot load "+missing+"//web.star") || !strings.Contains(stderr, "repository not found: git-upload-pack '"+filepath.Join(dir, "nope.git")+"' on gitbox: exit status 128: fatal: '"+filepath.Join(dir, "nope.git")+"' does not appear to be a git repository") {
		t.Fatalf("missing repository: exit %d\n%s", code, stderr)
	}
}

// A version prefix (@v1) names the newest tag it matches; the lock pins
// it until mod update moves it to a newer tag.
func TestModulesVersionPrefix(t *testing.T) {
	repo := newModuleRepo(t)
	dir, cache := t.TempDir(), t.TempDir()
	src := "git+file://" + repo.dir + "@v1"
	deploy := writeFile(t, dir, "d.star", "load(\""+src+"//web.star\", \"hello\")\nprint(hello())\n")
	args := []string{"--no-frozen", "--module-cache", cache, "@local", deploy}
	if code, stdout, stderr := runCLI(t, args...); code != 0 || !strings.Contains(stdout, "hello from v1") {
		t.Fatalf("@v1: exit %d\n%s%s", code, stdout, stderr)
	}
	repo.git(t, "tag", "v1.10.1", repo.v2)
	repo.git(t, "tag", "v1.9", repo.v1)
	repo.git(t, "tag", "v1.11.0-rc1", repo.v1)
	if code, stdout, stderr := runCLI(t, args...); code != 0 || !strings.Contains(stdout, "hello from v1") {
		t.Fatalf("locked @v1 after a newer tag: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := runCLI(t, "--lock-file", filepath.Join(dir, "star-deploy.lock"), "--module-cache", cache, "mod", "update", src)
	if code != 0 || !strings.Contains(stdout, repo.v1[:12]+" -> "+repo.v2[:12]) {
		t.Fatalf("mod update: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, args...); code != 0 || !strings.Contains(stdout, "hello from v2") {
		t.Fatalf("@v1 after mod update: exit %d\n%s%s", code, stdout, stderr)
	}
	writeFile(t, dir, "d.star", "load(\"git+file://"+repo.dir+"@v3//web.star\", \"hello\")\n")
	if code, _, stderr := runCLI(t, args...); code != 2 || !strings.Contains(stderr, `has no tag, branch or commit "v3"`) {
		t.Fatalf("@v3: exit %d\n%s", code, stderr)
	}
}

// The REPL (the real binary) loads remote modules through the config
// file's names and writes the lock beside the config file when it ends.
func TestModulesREPL(t *testing.T) {
	repo := newModuleRepo(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "star-deploy.star", "modules = {\"web\": \"git+file://"+repo.dir+"@v2.0\"}\n")
	code, stdout, stderr := replPipe(t, "load(\"@web//web.star\", \"hello\")\nhello()\n", "--config", cfg, "--no-frozen", "--module-cache", t.TempDir(), "@local")
	if code != 0 || !strings.Contains(stdout, "hello from v2") {
		t.Fatalf("repl: exit %d\n%s%s", code, stdout, stderr)
	}
	if l := readLock(t, filepath.Join(dir, "star-deploy.lock")); l["git+file://"+repo.dir+"@v2.0"].Commit != repo.v2 {
		t.Errorf("lock %+v", l)
	}
}

// TestRunWithoutRemoteModulesNeedsNoCache: a script that loads no remote
// module runs when the module cache would be refused (a world-writable
// cache directory, as under another user's HOME): the cache's owner is
// asked where a remote module first uses it, not for every run.
func TestRunWithoutRemoteModulesNeedsNoCache(t *testing.T) {
	cache := t.TempDir()
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", cache)
	script := writeFile(t, t.TempDir(), "site.star", "load(\"@stdlib//files.star\", \"files\")\nx = 1\n")
	if code, stdout, stderr := runCLI(t, "@local", script); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}
