package builtins

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
)

// The captures in testdata/facts/docker come from this machine's Docker
// engine (see the README there).

// parseTwo parses data, the capture of two objects, and fails t unless
// parse reads two.
func parseTwo[T any](t *testing.T, parse func([]byte) ([]T, error), data []byte) []T {
	t.Helper()
	xs, err := parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 2 {
		t.Fatalf("got %d objects, want 2: %+v", len(xs), xs)
	}
	return xs
}

func TestParseDockerContainers(t *testing.T) {
	cs := parseTwo(t, parseDockerContainers, readCapture(t, "docker/containers.json"))
	web, stopped := cs[0], cs[1]
	want := dockerContainer{
		ID:         "10ee84e3f3203b5c7c9ccf10a776501b70575db818e5e919ee830387a7f91e8f",
		Name:       "sdcap-web",
		Image:      "sdcap/app:1",
		ImageID:    "sha256:e3f84ff98a0d2ae81418dfce4f86fff1c1093ec559981ca43f880b679be7183b",
		Status:     "running",
		Running:    true,
		Command:    []string{"sleep", "infinity"},
		Entrypoint: nil,
		Env:        map[string]string{"GREETING": "hello", "SPACED": "a b", "APP_MODE": "prod"},
		Labels: map[string]string{"app": "web", "role": "frontend",
			"org.example.image": "v1", "org.star-deploy.test.recipe": "70e3e66bede5"},
		Ports:         []string{"127.0.0.1:18053:53/udp", "127.0.0.1:18080:80/tcp", "127.0.0.1::8443/tcp"},
		Networks:      []string{"sdcap-net", "sdcap-net2"},
		Volumes:       []string{"/cache", "/tmp/sdcap-host:/srv/host:ro", "sdcap-data:/data"},
		RestartPolicy: "unless-stopped",
	}
	if !reflect.DeepEqual(web, want) {
		t.Errorf("sdcap-web:\n got %+v\nwant %+v", web, want)
	}
	if stopped.Name != "sdcap-stopped" || stopped.Status != "created" || stopped.Running ||
		stopped.RestartPolicy != "on-failure:3" ||
		!reflect.DeepEqual(stopped.Ports, []string{"9000/tcp"}) ||
		!reflect.DeepEqual(stopped.Networks, []string{"bridge"}) ||
		!reflect.DeepEqual(stopped.Command, []string{"sh", "-c", "exit 0"}) ||
		stopped.Volumes != nil {
		t.Errorf("sdcap-stopped: %+v", stopped)
	}
}

func TestParseDockerImages(t *testing.T) {
	// Listed once per tag by docker image ls: kept once.
	data := readCapture(t, "docker/images.json")
	imgs := parseTwo(t, parseDockerImages, data)
	app, base := imgs[0], imgs[1]
	want := dockerImage{
		ID:      "sha256:e3f84ff98a0d2ae81418dfce4f86fff1c1093ec559981ca43f880b679be7183b",
		Created: "2026-12-01T22:16:12.81976623Z",
		Size:    142125379,
		Tags:    []string{"sdcap/app:1"},
		Digests: []string{},
		Command: []string{"sleep", "infinity"},
		Env:     map[string]string{"APP_MODE": "prod"},
		Labels:  map[string]string{"org.example.image": "v1", "org.star-deploy.test.recipe": "70e3e66bede5"},
		Volumes: []string{},
	}
	if !reflect.DeepEqual(app, want) {
		t.Errorf("sdcap/app:1:\n got %+v\nwant %+v", app, want)
	}
	if !reflect.DeepEqual(base.Tags, []string{"star-deploy-test/debian:bookworm"}) || len(base.Env) != 0 ||
		!reflect.DeepEqual(base.Command, []string{"/usr/sbin/sshd", "-D", "-e"}) {
		t.Errorf("the test image: %+v", base)
	}
	twice := append(append([]byte(nil), data[:len(data)-2]...), []byte(",")...)
	twice = append(twice, data[1:]...)
	if again, err := parseDockerImages(twice); err != nil || len(again) != 2 {
		t.Errorf("each image twice: %d images, %v", len(again), err)
	}
}

func TestParseDockerNetworks(t *testing.T) {
	ns, err := parseDockerNetworks(readCapture(t, "docker/networks.json"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]dockerNetwork{}
	for _, n := range ns {
		byName[n.Name] = n
	}
	net := byName["sdcap-net"]
	if net.Driver != "bridge" || net.Scope != "local" ||
		!reflect.DeepEqual(net.Subnets, []string{"10.123.77.0/24"}) ||
		!reflect.DeepEqual(net.Gateways, []string{"10.123.77.1"}) ||
		!reflect.DeepEqual(net.Labels, map[string]string{"app": "web"}) ||
		!reflect.DeepEqual(net.Containers, []string{"sdcap-web"}) {
		t.Errorf("sdcap-net: %+v", net)
	}
	if b := byName["bridge"]; !reflect.DeepEqual(b.Subnets, []string{"172.17.0.0/16"}) || len(b.Gateways) != 0 ||
		b.Options["com.docker.network.bridge.name"] != "docker0" {
		t.Errorf("bridge: %+v", b)
	}
	if h := byName["host"]; h.Driver != "host" || len(h.Subnets) != 0 || len(h.Containers) != 0 {
		t.Errorf("host: %+v", h)
	}
	if n := byName["none"]; n.Driver != "null" {
		t.Errorf("none: %+v", n)
	}
}

func TestParseDockerVolumes(t *testing.T) {
	vs, err := parseDockerVolumes(readCapture(t, "docker/volumes.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := dockerVolume{Name: "sdcap-data", Driver: "local", Scope: "local",
		Mountpoint: "/var/lib/docker/volumes/sdcap-data/_data", Created: "2026-12-01T22:16:12Z",
		Labels: map[string]string{"app": "web", "tier": "data"}, Options: map[string]string{}}
	if len(vs) != 2 || !reflect.DeepEqual(vs[0], want) {
		t.Fatalf("got %+v\nwant %+v first", vs, want)
	}
	if len(vs[1].Labels) != 0 || vs[1].Driver != "local" {
		t.Errorf("the anonymous volume: %+v", vs[1])
	}
}

func TestParseDockerEmptyAndBroken(t *testing.T) {
	for _, in := range []string{"", "\n", "[]\n"} {
		if cs, err := parseDockerContainers([]byte(in)); err != nil || len(cs) != 0 {
			t.Errorf("%q: %v, %v", in, cs, err)
		}
	}
	if _, err := parseDockerVolumes([]byte("Error: no such volume\n")); err == nil {
		t.Error("no error for output that is no JSON")
	}
}

func TestPortSpec(t *testing.T) {
	for _, c := range []struct {
		b    dockerPortBinding
		port string
		want string
	}{
		{dockerPortBinding{"127.0.0.1", "8080"}, "80/tcp", "127.0.0.1:8080:80/tcp"},
		{dockerPortBinding{"127.0.0.1", ""}, "80/tcp", "127.0.0.1::80/tcp"},
		{dockerPortBinding{"", "8080"}, "80/tcp", "8080:80/tcp"},
		{dockerPortBinding{"", ""}, "53/udp", "53/udp"},
		{dockerPortBinding{"::1", "8080"}, "80/tcp", "[::1]:8080:80/tcp"},
		{dockerPortBinding{"", ""}, "80", "80/tcp"},
	} {
		if got := portSpec(c.b, c.port); got != c.want {
			t.Errorf("portSpec(%+v, %q) = %q, want %q", c.b, c.port, got, c.want)
		}
	}
}

// An object removed between the ls and the inspect of the probe (another
// client) makes the probe run again; other failures are errors, and a host
// without docker has none.
func TestDockerInspectRetries(t *testing.T) {
	calls := 0
	conn := fake.New("@fake").OnFunc("ids=$(docker volume ls", func(context.Context, connectors.Command) (connectors.Result, error) {
		calls++
		if calls == 1 {
			return connectors.Result{ExitCode: 1, Stdout: []byte("[]\n"), Stderr: []byte("Error: No such volume: gone\n")}, nil
		}
		return connectors.Result{Stdout: readCapture(t, "docker/volumes.json")}, nil
	}).On("ids=$(docker network ls", connectors.Result{ExitCode: 1, Stderr: []byte("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n")})
	h := &Host{Name: "@fake", Conn: conn}
	v, err := readDockerVolumes(t.Context(), h, Control{}, nil)
	if err != nil || calls != 2 || v.(*starlark.Dict).Len() != 2 {
		t.Errorf("volumes after %d calls: %v, %v", calls, v, err)
	}
	if _, err := readDockerNetworks(t.Context(), h, Control{}, nil); err == nil || !strings.Contains(err.Error(), "Is the docker daemon running?") {
		t.Errorf("networks of an engine that does not answer: %v", err)
	}
	if v, err := readDockerImages(t.Context(), h, Control{}, nil); err != nil || v.(*starlark.Dict).Len() != 0 {
		t.Errorf("images without docker: %v, %v", v, err)
	}
}
