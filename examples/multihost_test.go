package examples_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// TestMultihost runs examples/multihost (the port of pyinfra's
// python-web-app: a web host and a database host) with the real
// star-deploy binary and the example's own inventory.star on two real
// Debian containers, reached over SSH with sudo: --dry, for real, and for
// real again. The dry run must report exactly the operations the real run
// changes, host by host and in order; the second real run must change
// nothing. Then a developer's commit pushed to the app's repository must
// make the next run (--dry, then real, reporting the same) pull it and
// restart the app, and nothing else. Then the application's page, fetched through the web
// container's port 5000 published on 127.0.0.1, must show a visit counted
// by MariaDB on the database container (reached over the Docker bridge),
// and the database container's mysql client must show the account's grant.
//
// The inventory names its hosts web1 and db1, SSH aliases: the test writes
// an ssh_config for them (passed with --data ssh_config_file=...), as a
// user's ~/.ssh/config would say how to reach them.
func TestMultihost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two Debian containers")
	}
	bin := filepath.Join(t.TempDir(), "star-deploy")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/star-deploy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fleet := sshtest.FleetWith(t, 2, sshtest.FleetOptions{Publish: []int{5000}})
	web, db := fleet[0], fleet[1]

	// The web container reaches the database container at its address on
	// the Docker bridge (the default network lets containers talk).
	out, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", db.Name).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", db.Name, err)
	}
	dbAddr, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if dbAddr == "" {
		t.Fatalf("container %s has no address on a Docker network", db.Name)
	}

	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	config := filepath.Join(dir, "ssh_config")
	var cfg strings.Builder
	for alias, c := range map[string]*sshtest.Container{"web1": web, "db1": db} {
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n",
			alias, c.Host, c.Port, sshtest.UserNopasswd, c.ClientKeyPath, known)
	}
	if err := os.WriteFile(known, []byte(web.KnownHostsLine("")+db.KnownHostsLine("")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	const password = "pw-canary-4f1e9a"
	deploy := func(t *testing.T, dry bool) map[string][]string {
		t.Helper()
		args := []string{"--json", "--data", "ssh_config_file=" + config, "--data", "ssh_allow_agent=false",
			"--data", "db_host=" + dbAddr, "--data", "db_password=" + password}
		if dry {
			args = append(args, "--dry")
		}
		args = append(args, "multihost/inventory.star", "multihost/deploy.star")
		return runDeploy(t, bin, args, password)
	}

	start := time.Now()
	dry := deploy(t, true)
	t.Logf("--dry: %v", time.Since(start).Round(time.Second))
	start = time.Now()
	real := deploy(t, false)
	t.Logf("real run: %v", time.Since(start).Round(time.Second))
	for _, h := range []string{"web1", "db1"} {
		if !slices.Equal(dry[h], real[h]) {
			t.Errorf("%s: --dry said it would change:\n  %s\nthe real run changed:\n  %s", h, strings.Join(dry[h], "\n  "), strings.Join(real[h], "\n  "))
		}
		if len(real[h]) == 0 {
			t.Errorf("%s: the real run changed nothing", h)
		}
	}
	start = time.Now()
	again := deploy(t, false)
	t.Logf("second real run: %v", time.Since(start).Round(time.Second))
	for h, ops := range again {
		if len(ops) > 0 {
			t.Errorf("%s: the second real run changed:\n  %s", h, strings.Join(ops, "\n  "))
		}
	}

	// The handler: a developer's new commit on the app's branch makes the
	// next run pull it and restart the app (a new process), and --dry says
	// so first; nothing else changes.
	pid := func() string {
		out, err := web.Exec(t, "cat", "/run/python-app.pid")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	before := pid()
	if _, err := web.Exec(t, "sh", "-ec", `cd /srv/src/python-app
echo 'a change of the app' > CHANGES
git add CHANGES
git -c user.name=dev -c user.email=dev@example.invalid commit -qm 'a new commit'
git push -q /srv/git/python-app.git HEAD:refs/heads/main`); err != nil {
		t.Fatal(err)
	}
	dry = deploy(t, true)
	real = deploy(t, false)
	if !slices.Equal(dry["web1"], real["web1"]) || len(real["db1"]) > 0 || len(dry["db1"]) > 0 {
		t.Errorf("after a new commit, --dry said:\n  %v\nthe real run changed:\n  %v", dry, real)
	}
	t.Logf("after a new commit, the run changed on web1:\n  %s", strings.Join(real["web1"], "\n  "))
	if !slices.ContainsFunc(real["web1"], func(s string) bool { return strings.Contains(s, "(restart)") }) {
		t.Errorf("after a new commit, the app was not restarted; the run changed:\n  %s", strings.Join(real["web1"], "\n  "))
	}
	if after := pid(); after == before {
		t.Errorf("after a new commit, the app still runs as process %s", before)
	}
	if _, err := web.Exec(t, "test", "-f", "/opt/python-app/CHANGES"); err != nil {
		t.Errorf("the checkout lacks the new commit: %v", err)
	}

	// Two visits: each is a row the application inserts on the database host.
	for visit := 1; visit <= 2; visit++ {
		resp, err := http.Get("http://" + web.Published[5000] + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("visit %d, counted by MariaDB ", visit)
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) || !strings.Contains(string(body), " at "+dbAddr+" as python-app@%") {
			t.Errorf("GET / = %d, want %q and the database host %s in:\n%s", resp.StatusCode, want, dbAddr, body)
		}
	}

	grants, err := db.Exec(t, "mysql", "--batch", "--skip-column-names", "-e", "SHOW GRANTS FOR 'python-app'@'%'")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(grants, "GRANT ALL PRIVILEGES ON `python_app`.* TO `python-app`@`%`") {
		t.Errorf("the grants of python-app@%%:\n%s", grants)
	}
	if ls, err := web.Exec(t, "stat", "-c", "%a %U", "/etc/python-app/db-password"); err != nil || strings.TrimSpace(ls) != "600 python-app" {
		t.Errorf("/etc/python-app/db-password: %q %v, want mode 600, owner python-app", ls, err)
	}
}

// runDeploy runs the binary with args, which must exit 0, and returns the
// operations that changed (or would, under --dry) on each host, as
// "op name", in order. No output may hold secret.
func runDeploy(t *testing.T, bin string, args []string, secret string) map[string][]string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	changed := map[string][]string{}
	var failed []string
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ Kind, Host, Op, Name, Status, Error, Stdout, Stderr string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("a line of --json is not JSON: %v: %s", err, sc.Bytes())
		}
		switch {
		case e.Kind == "op_end" && e.Status == "changed":
			changed[e.Host] = append(changed[e.Host], e.Op+" "+e.Name)
		case e.Kind == "op_end" && e.Status == "failed":
			failed = append(failed, fmt.Sprintf("[%s] %s %s: %s\n%s%s", e.Host, e.Op, e.Name, e.Error, e.Stdout, e.Stderr))
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), secret) {
		t.Errorf("the output of %q holds the database password", args)
	}
	if err != nil {
		t.Fatalf("star-deploy %s: %v\n%s\nfailed operations:\n%s", strings.Join(args, " "), err, stderr.String(), strings.Join(failed, "\n"))
	}
	return changed
}
