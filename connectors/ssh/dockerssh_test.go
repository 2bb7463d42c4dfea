package ssh

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// dockerHost starts a loopback sshd and, on this machine's engine (the
// sshd's own, since both run here), a container of the Debian test image
// with no network. It returns the server, a known_hosts file for it and
// the container's name.
func dockerHost(t *testing.T) (*sshtest.Server, string, string) {
	t.Helper()
	name := sshtest.IdleContainer(t, "sdtest-dockerssh")
	srv := sshtest.Start(t, sshtest.Options{})
	return srv, sshtest.KnownHostsFile(t, srv.KnownHostsLine("")), name
}

// dockerSSHData is the connector data that reaches srv, checking its host
// key against known_hosts file kh, with data on top.
func dockerSSHData(srv *sshtest.Server, kh string, data map[string]string) map[string]string {
	all := map[string]string{"ssh_key": srv.ClientKeyPath, "ssh_user": srv.User, "ssh_allow_agent": "false",
		"ssh_port": strconv.Itoa(srv.Port), "ssh_known_hosts_file": kh, "ssh_strict_host_key_checking": "yes"}
	for k, v := range data {
		all[k] = v
	}
	return all
}

func openDockerSSH(t *testing.T, d *DockerSSHFactory, srv *sshtest.Server, kh, ctr string, data map[string]string) (connectors.Connector, error) {
	t.Helper()
	all := dockerSSHData(srv, kh, data)
	all["role"] = "app"
	return sshtest.Open(t, connectors.NewRegistry(d.ssh, d), "@dockerssh/"+srv.Host+":"+ctr, all)
}

// TestDockerSSHConformance runs the connector suite in a container reached
// through a loopback sshd and the docker CLI on that host.
func TestDockerSSHConformance(t *testing.T) {
	srv, kh, ctr := dockerHost(t)
	dockerSSHSuite(t, srv, kh, ctr, nil)
}

// dockerSSHSuite runs the connector suite on @dockerssh/srv.Host:name (a
// container, or an image), each test in a directory that mktemp -d makes
// there, removed at its end; check (may be nil) looks at each connector
// first.
func dockerSSHSuite(t *testing.T, srv *sshtest.Server, kh, name string, check func(*testing.T, connectors.Connector)) {
	f, _ := testFactory(t)
	d := NewDockerSSHFactory(f)
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		c, err := openDockerSSH(t, d, srv, kh, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if check != nil {
			check(t, c)
		}
		res, err := c.Run(t.Context(), connectors.Command{Script: "mktemp -d"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("mktemp -d: %v %+v", err, res)
		}
		dir := strings.TrimSpace(string(res.Stdout))
		t.Cleanup(func() { c.Run(context.Background(), connectors.Command{Script: "rm -rf " + connectors.Quote(dir)}) })
		return c, dir
	})
}

// TestDockerSSHInside checks that commands run in the container (not on
// the SSH host), as the docker exec user, and that errors name what is
// wrong.
func TestDockerSSHInside(t *testing.T) {
	srv, kh, ctr := dockerHost(t)
	f, _ := testFactory(t)
	d := NewDockerSSHFactory(f)
	c, err := openDockerSSH(t, d, srv, kh, ctr, nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	res := run(t, c, "hostname; id -un; cat /etc/debian_version >/dev/null && echo debian")
	if lines := strings.Fields(string(res.Stdout)); len(lines) != 3 || lines[0] == host || lines[1] != "root" || lines[2] != "debian" {
		t.Errorf("in the container: %q (this machine is %s)", res.Stdout, host)
	}
	if err := c.Put(t.Context(), "/etc/star-deploy-put", strings.NewReader("in the container\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("docker", "exec", ctr, "stat", "-c", "%a %U", "/etc/star-deploy-put").CombinedOutput()
	if err != nil || string(out) != "640 root\n" {
		t.Errorf("docker exec stat: %q, %v", out, err)
	}
	if _, err := os.Stat("/etc/star-deploy-put"); err == nil {
		t.Errorf("the file was written on the SSH host")
	}

	u, err := openDockerSSH(t, d, srv, kh, ctr, map[string]string{"dockerssh_user": "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if res := run(t, u, "id -un"); string(res.Stdout) != "deploy\n" {
		t.Errorf("dockerssh_user=deploy: id -un = %q", res.Stdout)
	}
	var got bytes.Buffer
	if err := u.Get(t.Context(), "/etc/star-deploy-put", &got); err == nil {
		t.Errorf("Get of a 0640 root file as deploy: no error")
	}

	if _, err := openDockerSSH(t, d, srv, kh, "sdtest-no-such-container", nil); err == nil || !strings.Contains(err.Error(), `no container and no image named "sdtest-no-such-container"`) {
		t.Errorf("missing container: %v", err)
	}
	if _, err := openDockerSSH(t, d, srv, kh, ctr, map[string]string{"dockerssh_docker": "no-such-docker-cli"}); err == nil || !strings.Contains(err.Error(), "command not found") {
		t.Errorf("missing docker CLI: %v", err)
	}
	exec.Command("docker", "stop", "-t", "1", ctr).Run()
	if _, err := openDockerSSH(t, d, srv, kh, ctr, nil); err == nil || !strings.Contains(err.Error(), "is not running") {
		t.Errorf("stopped container: %v", err)
	}
}

func TestDockerSSHParse(t *testing.T) {
	f, _ := testFactory(t)
	d := NewDockerSSHFactory(f)
	for _, tc := range []struct{ addr, host, ctr, err string }{
		{"web1:app", "web1", "app", ""},
		{"deploy@10.0.0.5:app", "deploy@10.0.0.5", "app", ""},
		{"[::1]:app", "[::1]", "app", ""},
		{"deploy@[::1]:app", "deploy@[::1]", "app", ""},
		{"web1", "", "", "want HOST:CONTAINER"},
		{":app", "", "", "both non-empty"},
		{"web1:", "", "", "both non-empty"},
		{"web1:a/b", "web1", "a/b", ""},
		{"web1:registry:5000/team/app:v1", "web1", "registry:5000/team/app:v1", ""},
		{"web1:a b", "", "", "not a container or image name"},
		{"web1:-v", "", "", "not a container or image name"},
	} {
		h, c, err := splitDockerSSH(tc.addr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("split %q: error %v, want %q", tc.addr, err, tc.err)
			}
			continue
		}
		if err != nil || h != tc.host || c != tc.ctr {
			t.Errorf("split %q = %q, %q, %v", tc.addr, h, c, err)
		}
	}
	reg := connectors.NewRegistry(f, d)
	tg, err := reg.Target("@dockerssh/web1:app", map[string]string{"ssh_user": "deploy", "dockerssh_docker": "sudo -n docker", "role": "x"})
	if err != nil || tg.Data["ssh_user"] != "deploy" || tg.Data["dockerssh_docker"] != "sudo -n docker" || tg.Data["role"] != "" {
		t.Errorf("Target = %+v, %v; want the ssh_* and dockerssh_* keys", tg, err)
	}
	if _, err := reg.Target("@dockerssh/web1:app", map[string]string{"ssh_port": "x"}); err == nil || !strings.Contains(err.Error(), "ssh_port") {
		t.Errorf("bad ssh_port: %v", err)
	}
	for k, v := range map[string]string{"dockerssh_platform": "arm64", "dockerssh_commit_tag": "-x"} {
		if _, err := reg.Target("@dockerssh/web1:app", map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	if _, err := reg.Target("@dockerssh/web1:app", map[string]string{"dockerssh_platform": "linux/arm64/v8", "dockerssh_commit_tag": "reg:5000/app:deployed"}); err != nil {
		t.Errorf("good platform and tag: %v", err)
	}
	if _, err := reg.Target("@dockerssh/web1:app", map[string]string{"dockerssh_dockr": "x"}); err == nil || !strings.Contains(err.Error(), "did you mean") {
		t.Errorf("misspelt key: %v", err)
	}
}
