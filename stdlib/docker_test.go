package stdlib_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/builtins"
	"github.com/star-deploy/star-deploy/connectors/all"
	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// TestDockerLocal runs the docker operations on @local against this
// machine's Docker engine. Its images are made from the Debian test image
// of internal/sshtest (docker commit of a container of it: nothing is
// pulled). Each step runs as TestDebian's scenarios do: --dry, for real
// (the dry run must have reported exactly what it changed), for real again
// (no change); its check then reads the engine with the docker CLI. Every
// object is named with a prefix of its own and removed when the test ends;
// the one published port is on 127.0.0.1.
func TestDockerLocal(t *testing.T) {
	base := sshtest.Image(t)
	start := time.Now()
	var rnd [4]byte
	rand.Read(rnd[:])
	p := "sdtest-docker-" + hex.EncodeToString(rnd[:])
	var images []string // by id: a tag that moves leaves its image untagged
	t.Cleanup(func() { removeDockerObjects(t, p, images) })

	img1, img2, alias := p+"/app:1", p+"/app:2", p+"/alias:1"
	// sh as PID 1 ends on SIGTERM, so docker stop needs no 10 s.
	cmd := `CMD ["sh", "-c", "trap 'exit 0' TERM; sleep infinity & wait"]`
	dockerCLI(t, "create", "--name", p+"-base", base, "true")
	dockerCLI(t, "commit", "--change", cmd, "--change", "ENV APP_MODE=prod", p+"-base", img1)
	dockerCLI(t, "commit", "--change", cmd, "--change", "LABEL version=2", p+"-base", img2)
	dockerCLI(t, "rm", p+"-base")
	images = append(images, dockerCLI(t, "image", "inspect", "--format", "{{.Id}}", img1), dockerCLI(t, "image", "inspect", "--format", "{{.Id}}", img2))
	dockerCLI(t, "tag", img1, alias)

	port := freePort(t)
	subnet := fmt.Sprintf("10.%d.%d", 200+int(rnd[0])%50, rnd[1])
	hostDir := t.TempDir()
	reg := all.Registry(all.Options{})
	target, err := reg.Target("@local", nil)
	if err != nil {
		t.Fatal(err)
	}
	host := testHost{sdrt.Host{Name: "local", Target: target, Data: map[string]any{
		"p": p, "img1": img1, "img2": img2, "alias": alias, "port": port,
		"subnet": subnet + ".0/24", "gateway": subnet + ".1", "host_dir": hostDir,
	}}, reg}

	const prelude = `load("@stdlib//docker.star", "docker")
d = host.data
p = d["p"]
WEB = dict(
    image = d["img1"],
    ports = ["127.0.0.1:%d:80" % d["port"]],
    networks = [p + "-net", p + "-net2"],
    volumes = [p + "-data:/data", d["host_dir"] + ":/srv/host:ro", "/cache"],
    env_vars = {"GREETING": "hello", "DB_PASSWORD": "pw-" + p},
    labels = ["app=web"],
    restart_policy = "unless-stopped",
)
`
	inspect := func(t *testing.T, format, obj string) string {
		t.Helper()
		return dockerCLI(t, "inspect", "--format", format, obj)
	}
	var webID, cacheVolume string
	anonymous := func(t *testing.T) string {
		t.Helper()
		return inspect(t, `{{range .Mounts}}{{if eq .Destination "/cache"}}{{.Name}}{{end}}{{end}}`, p+"-web")
	}
	gone := func(t *testing.T, what string, args ...string) {
		t.Helper()
		if out, err := exec.Command("docker", args...).CombinedOutput(); err == nil {
			t.Errorf("%s is still there: %s", what, out)
		}
	}
	steps := []struct {
		name, script string
		before       func(t *testing.T)
		check        func(t *testing.T)
	}{
		{name: "10-image", script: `
docker.image(d["img1"])  # present: nothing to do, nothing pulled
docker.image(d["alias"], present = False)
`, check: func(t *testing.T) {
			gone(t, alias, "image", "inspect", alias)
			inspect(t, "{{.Id}}", img1)
		}},
		{name: "20-volume-network", script: `
docker.volume(p + "-data", labels = ["test=docker"])
docker.network(p + "-net", subnet = d["subnet"], gateway = d["gateway"], labels = {"test": "docker"})
docker.network(p + "-net2")
`, check: func(t *testing.T) {
			if got := inspect(t, "{{json .Labels}}", p+"-data"); got != `{"test":"docker"}` {
				t.Errorf("volume labels %s", got)
			}
			if got := inspect(t, "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{json .Labels}}", p+"-net"); got != subnet+".0/24 "+subnet+`.1 {"test":"docker"}` {
				t.Errorf("network %s", got)
			}
		}},
		{name: "30-containers", script: `
docker.container(p + "-web", **WEB)
docker.container(p + "-idle", image = d["img2"], start = False, command = ["true"])
`, check: func(t *testing.T) {
			web := p + "-web"
			webID, cacheVolume = inspect(t, "{{.Id}}", web), anonymous(t)
			for format, want := range map[string]string{
				"{{.State.Status}}":                  "running",
				"{{.HostConfig.RestartPolicy.Name}}": "unless-stopped",
				// The docker CLI collects -v in a map: the order of Binds is
				// not that of the command line, so compare them sorted.
				`{{range .HostConfig.Binds}}{{.}} {{end}}`:                    sortedWords(fmt.Sprintf("%s-data:/data %s:/srv/host:ro", p, hostDir)),
				`{{index .Config.Labels "app"}}`:                              "web",
				"{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}": p + "-net " + p + "-net2",
			} {
				got := inspect(t, format, web)
				if strings.Contains(format, ".HostConfig.Binds") {
					got = sortedWords(got)
				}
				if got != want {
					t.Errorf("%s of %s = %q, want %q", format, web, got, want)
				}
			}
			env := inspect(t, "{{json .Config.Env}}", web)
			for _, v := range []string{"GREETING=hello", "DB_PASSWORD=pw-" + p, "APP_MODE=prod"} {
				if !strings.Contains(env, `"`+v+`"`) {
					t.Errorf("env %s lacks %s", env, v)
				}
			}
			if got := dockerCLI(t, "port", web, "80/tcp"); got != fmt.Sprintf("127.0.0.1:%d", port) {
				t.Errorf("port 80 is published on %q", got)
			}
			if got := inspect(t, "{{.State.Status}} {{.Config.Image}} {{json .Config.Cmd}}", p+"-idle"); got != "created "+img2+` ["true"]` {
				t.Errorf("%s-idle: %s", p, got)
			}
		}},
		{name: "40-changed-env-recreates", script: `
WEB["env_vars"] = {"GREETING": "bye", "DB_PASSWORD": "pw-" + p}
docker.container(p + "-web", **WEB)
`, check: func(t *testing.T) {
			if id := inspect(t, "{{.Id}}", p+"-web"); id == webID {
				t.Errorf("%s-web was not recreated", p)
			} else {
				webID = id
			}
			if env := inspect(t, "{{json .Config.Env}}", p+"-web"); !strings.Contains(env, `"GREETING=bye"`) {
				t.Errorf("env %s", env)
			}
			if got := inspect(t, "{{.State.Status}}", p+"-web"); got != "running" {
				t.Errorf("status %s", got)
			}
			gone(t, "the anonymous volume of the container before", "volume", "inspect", cacheVolume)
			cacheVolume = anonymous(t)
		}},
		{name: "50-moved-tag-recreates", before: func(t *testing.T) {
			// img1 is built anew: its tag now names another image.
			dockerCLI(t, "tag", img2, img1)
		}, script: `
WEB["env_vars"] = {"GREETING": "bye", "DB_PASSWORD": "pw-" + p}
docker.container(p + "-web", **WEB)
`, check: func(t *testing.T) {
			if id := inspect(t, "{{.Id}}", p+"-web"); id == webID {
				t.Errorf("%s-web was not recreated", p)
			}
			if got, want := inspect(t, "{{.Image}}", p+"-web"), inspect(t, "{{.Id}}", img2); got != want {
				t.Errorf("%s-web runs %s, want %s", p, got, want)
			}
			gone(t, "the anonymous volume of the container before", "volume", "inspect", cacheVolume)
			cacheVolume = anonymous(t)
		}},
		{name: "60-stop", script: `
docker.container(p + "-web", start = False)
`, check: func(t *testing.T) {
			if got := inspect(t, "{{.State.Status}}", p+"-web"); got != "exited" {
				t.Errorf("status %s", got)
			}
		}},
		{name: "70-remove", script: `
docker.container(p + "-web", present = False)
docker.container(p + "-idle", present = False)
docker.network(p + "-net", present = False)
docker.network(p + "-net2", present = False)
docker.volume(p + "-data", present = False)
docker.image(d["img2"], present = False)
`, check: func(t *testing.T) {
			for _, obj := range []string{p + "-web", p + "-idle", p + "-net", p + "-net2", p + "-data", img2} {
				gone(t, obj, "inspect", obj)
			}
			gone(t, "the anonymous volume of "+p+"-web", "volume", "inspect", cacheVolume)
		}},
	}
	dir := t.TempDir()
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				s.before(t)
			}
			script := filepath.Join(dir, s.name+".star")
			if err := os.WriteFile(script, []byte(prelude+s.script), 0o644); err != nil {
				t.Fatal(err)
			}
			scenario(t, host, script, builtins.Control{}, s.check)
		})
		if !ok {
			break // later steps build on this one
		}
	}
	t.Logf("docker operations on @local: %v", time.Since(start).Round(time.Millisecond))
}

// dockerCLI runs docker with args on this machine and returns its output,
// trimmed; a failure fails t.
func dockerCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// removeDockerObjects removes every container, network, volume and image
// whose name starts with prefix, and the images ids. It runs in Cleanup,
// also after a failure.
func removeDockerObjects(t *testing.T, prefix string, ids []string) {
	list := func(args ...string) []string {
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			t.Logf("cleanup: docker %s: %v", strings.Join(args, " "), err)
			return nil
		}
		return strings.Fields(string(out))
	}
	rm := func(what []string, args ...string) {
		if len(what) == 0 {
			return
		}
		if out, err := exec.Command("docker", append(args, what...)...).CombinedOutput(); err != nil {
			t.Errorf("cleanup: docker %s %s: %v\n%s", strings.Join(args, " "), strings.Join(what, " "), err, out)
		}
	}
	rm(list("container", "ls", "-aq", "--filter", "name=^"+prefix), "container", "rm", "-f", "-v")
	rm(list("network", "ls", "-q", "--filter", "name="+prefix), "network", "rm")
	rm(list("volume", "ls", "-q", "--filter", "name="+prefix), "volume", "rm", "-f")
	rm(list("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference="+prefix+"/*"), "image", "rm", "-f")
	for _, id := range ids {
		if exec.Command("docker", "image", "inspect", id).Run() == nil {
			rm([]string{id}, "image", "rm", "-f")
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sortedWords returns the blank-separated words of s, sorted, joined by
// single spaces.
func sortedWords(s string) string {
	w := strings.Fields(s)
	slices.Sort(w)
	return strings.Join(w, " ")
}
