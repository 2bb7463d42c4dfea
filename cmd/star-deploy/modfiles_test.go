package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A remote module's put(src=) and template() read files of its own
// repository, at the locked commit: the lock pins them and mod lock keeps
// them; a frozen run, a cache an older version extracted (only .star
// files), a changed cached copy, a path leaving the repository, get() into
// it, and a bundle pulled with no cache and no server.
func TestModulesRepositoryFiles(t *testing.T) {
	repo := &moduleRepo{dir: filepath.Join(t.TempDir(), "site-modules")}
	needTool(t, "git")
	os.MkdirAll(repo.dir, 0o755)
	repo.git(t, "init", "-q", "-b", "main")
	writeFile(t, repo.dir, "web/site.star", `def site(dest):
    template("templates/site.tmpl", dest + "/site.conf", vars = {"port": 8080})
    put(dest + "/logo.txt", src = "../files/logo.txt")

def escape(dest):
    put(dest + "/x", src = "../../x.txt")

def fetch():
    get("/etc/hostname", "hostname.txt")
`)
	writeFile(t, repo.dir, "web/templates/site.tmpl", "listen {{ .port }} on {{ .host.name }}\n")
	writeFile(t, repo.dir, "files/logo.txt", "LOGO v1\n")
	repo.git(t, "add", ".")
	repo.git(t, "commit", "-q", "-m", "v1")
	repo.git(t, "tag", "v1.0")
	commit := repo.git(t, "rev-parse", "HEAD")

	s := newPullSetup(t)
	cache := t.TempDir()
	src := "git+file://" + repo.dir + "@v1.0"
	deploy := writeFile(t, s.dir, "site.star", "load(\""+src+"//web/site.star\", \"site\")\nsite(\""+s.out+"\")\n")
	lock := filepath.Join(s.dir, "star-deploy.lock")
	clear := func() {
		os.Remove(filepath.Join(s.out, "site.conf"))
		os.Remove(filepath.Join(s.out, "logo.txt"))
	}
	check := func(what string) {
		t.Helper()
		if b, _ := os.ReadFile(filepath.Join(s.out, "site.conf")); string(b) != "listen 8080 on @local\n" {
			t.Errorf("%s: site.conf = %q", what, b)
		}
		if b, _ := os.ReadFile(filepath.Join(s.out, "logo.txt")); string(b) != "LOGO v1\n" {
			t.Errorf("%s: logo.txt = %q", what, b)
		}
	}
	code, stdout, stderr := runCLI(t, "--no-frozen", "--module-cache", cache, "@local", deploy)
	if code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, stdout, stderr)
	}
	check("first run")
	e := readLock(t, lock)[src]
	if e.Commit != commit || len(e.Files) != 3 || !strings.HasPrefix(e.Files["web/templates/site.tmpl"], "sha256:") || !strings.HasPrefix(e.Files["files/logo.txt"], "sha256:") {
		t.Fatalf("lock %+v; want the module, its template and its file", e)
	}

	// A frozen run before they are locked says how to lock them.
	raw, _ := os.ReadFile(lock)
	os.Remove(lock)
	runCLI(t, "--module-cache", cache, "mod", "lock", deploy)
	code, stdout, _ = runCLI(t, "--frozen", "--module-cache", cache, "@local", deploy)
	if want := "web/templates/site.tmpl is not in " + lock + "; run the deploy once without --frozen"; code != 1 || !strings.Contains(stdout, want) {
		t.Fatalf("frozen run, template not locked: exit %d\n%s\nwant %q", code, stdout, want)
	}
	os.WriteFile(lock, raw, 0o644)

	// mod lock keeps the two files (it loads, it does not run); a frozen
	// run reads them; so does one whose cache an older version extracted.
	if code, stdout, stderr = runCLI(t, "--module-cache", cache, "mod", "lock", deploy); code != 0 || !strings.Contains(stdout, "1 sources, 3 files") {
		t.Fatalf("mod lock: exit %d\n%s%s", code, stdout, stderr)
	}
	os.RemoveAll(filepath.Join(cache, commit, "web", "templates"))
	os.RemoveAll(filepath.Join(cache, commit, "files"))
	os.Remove(filepath.Join(cache, commit, ".star-deploy-tree"))
	clear()
	code, stdout, stderr = runCLI(t, "--frozen", "--module-cache", cache, "@local", deploy)
	if code != 0 {
		t.Fatalf("frozen run on an old cache: exit %d\n%s%s", code, stdout, stderr)
	}
	check("frozen run")
	if !exists(t, filepath.Join(cache, commit, ".star-deploy-tree")) {
		t.Errorf("the old cache directory was not extracted again")
	}

	// A changed cached copy no longer matches the lock, and nothing is
	// written.
	writeFile(t, cache, filepath.Join(commit, "web/templates/site.tmpl"), "listen 6666\n")
	clear()
	code, stdout, _ = runCLI(t, "--frozen", "--module-cache", cache, "@local", deploy)
	if want := "template: src: " + src + ": web/templates/site.tmpl does not match " + lock; code != 1 || !strings.Contains(stdout, want) || exists(t, filepath.Join(s.out, "site.conf")) {
		t.Fatalf("tampered template: exit %d, stdout:\n%s\nwant %q and no site.conf", code, stdout, want)
	}
	os.RemoveAll(filepath.Join(cache, commit))

	for _, c := range []struct{ call, want string }{
		{"escape(\"" + s.out + "\")", "../../x.txt leaves the repository of " + src},
		{"fetch()", "get: dest: hostname.txt is relative to the remote module " + src + "//web/site.star, which is no directory of this machine: give an absolute path"},
	} {
		d := writeFile(t, s.dir, "bad.star", "load(\""+src+"//web/site.star\", \"escape\", \"fetch\")\n"+c.call+"\n")
		code, stdout, _ = runCLI(t, "--module-cache", cache, "--no-frozen", "@local", d)
		if code != 1 || !strings.Contains(stdout, c.want) {
			t.Errorf("%s: exit %d, stdout:\n%s\nwant %q", c.call, code, stdout, c.want)
		}
	}

	// A bundle carries the files the lock holds: pulled with the
	// repository gone and no cache, it writes them.
	os.Remove(filepath.Join(s.dir, "bad.star"))
	out := filepath.Join(filepath.Dir(s.dir), "site.bundle")
	code, stdout, stderr = runCLI(t, "--module-cache", cache, "bundle", deploy, "-o", out, "--sign", s.key)
	if code != 0 || !strings.Contains(stdout, "3 remote files") {
		t.Fatalf("bundle: exit %d\n%s%s", code, stdout, stderr)
	}
	os.RemoveAll(repo.dir)
	os.RemoveAll(cache)
	clear()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	code, stdout, stderr = s.pull(t, "--allowed-signers", s.allowed, out)
	if code != 0 {
		t.Fatalf("pull: exit %d\n%s%s", code, stdout, stderr)
	}
	check("pull")
}
