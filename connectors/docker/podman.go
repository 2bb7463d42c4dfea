package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/star-deploy/star-deploy/connectors"
)

// PodmanFactory is the factory of @podman/NAME: the Docker connector's
// code and client, pointed at Podman's Docker-compatible API socket
// (`podman system service`, or systemd's podman.socket). Everything
// @docker does applies, image mode included.
type PodmanFactory struct {
	docker *Factory
}

var _ connectors.Factory = (*PodmanFactory)(nil)

// NewPodmanFactory returns the @podman factory. At most one Options value
// is used.
func NewPodmanFactory(opts ...Options) *PodmanFactory {
	return &PodmanFactory{docker: NewFactory(opts...)}
}

// Scheme returns "podman".
func (p *PodmanFactory) Scheme() string { return "podman" }

// Doc describes the connector.
func (p *PodmanFactory) Doc() string {
	return "A running Podman container, through Podman's Docker-compatible API socket with the same client code as @docker (never the podman CLI): @podman/NAME or an id, or an image (image mode, as @docker). " +
		"The socket is podman.socket of systemd or `podman system service --time=0`."
}

// Fields declares the podman_* data keys.
func (p *PodmanFactory) Fields() []connectors.Field {
	return []connectors.Field{
		{Name: "podman_socket", Type: "path", Default: "$CONTAINER_HOST, else /run/podman/podman.sock (root) or $XDG_RUNTIME_DIR/podman/podman.sock",
			Doc: "Podman's API socket: its path, with or without unix:// in front (e.g. /run/user/1000/podman/podman.sock). Only local sockets: Podman's TCP service has no authentication (reach a remote Podman with @dockerssh and dockerssh_docker=podman)."},
		{Name: "podman_user", Type: "string", Doc: "User (name or uid[:gid]) that commands run as inside the container; the container's user when empty."},
		{Name: "podman_platform", Type: "string", Doc: "Image mode: the platform (os/arch[/variant], e.g. linux/arm64) of the container started from the image; the engine's own when empty."},
		{Name: "podman_commit_tag", Type: "string", Doc: "Image mode: the name:tag given to the committed image (e.g. localhost/myapp:deployed); untagged when empty. The image id is printed either way."},
	}
}

// podmanSocket returns the socket path for data: podman_socket, else
// CONTAINER_HOST (Podman's own variable) when it names a unix socket, else
// the rootful or rootless default.
func podmanSocket(data map[string]string) (string, error) {
	v, from := data["podman_socket"], "podman_socket"
	if v == "" {
		if h := os.Getenv("CONTAINER_HOST"); strings.HasPrefix(h, "unix://") {
			v, from = h, "CONTAINER_HOST"
		}
	}
	if v == "" {
		if os.Geteuid() == 0 {
			return "/run/podman/podman.sock", nil
		}
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
			return filepath.Join(d, "podman", "podman.sock"), nil
		}
		return fmt.Sprintf("/run/user/%d/podman/podman.sock", os.Getuid()), nil
	}
	if scheme, rest, ok := strings.Cut(v, "://"); ok {
		if scheme != "unix" {
			return "", fmt.Errorf("%s=%s: want a unix socket (a path or unix:///run/podman/podman.sock); Podman's TCP service has no authentication", from, v)
		}
		v = rest
	}
	if !filepath.IsAbs(v) {
		return "", fmt.Errorf("%s=%s: want an absolute path", from, v)
	}
	return v, nil
}

// Parse checks the container name and the data; it does no I/O.
func (p *PodmanFactory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if addr == "" {
		return connectors.Target{}, errors.New("@podman needs a container: @podman/NAME")
	}
	if _, err := podmanSocket(data); err != nil {
		return connectors.Target{}, err
	}
	if _, err := parsePlatform(data["podman_platform"]); err != nil {
		return connectors.Target{}, fmt.Errorf("podman_platform: %w", err)
	}
	return connectors.Target{Scheme: "podman", Name: "@podman/" + addr, Addr: addr, Data: data}, nil
}

// Open connects to the socket and opens the container as @docker does.
func (p *PodmanFactory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	sock, err := podmanSocket(t.Data)
	if err != nil {
		return nil, err
	}
	// The runtime puts "connect to NAME: " in front.
	if _, err := os.Stat(sock); err != nil {
		return nil, fmt.Errorf("no Podman API socket at %s (%v): start it with `systemctl start podman.socket` (root; `systemctl --user` otherwise) or `podman system service --time=0 unix://%s`, or set podman_socket", sock, errors.Unwrap(err), sock)
	}
	dt := connectors.Target{Scheme: "docker", Name: t.Name, Addr: t.Addr, Data: map[string]string{
		"docker_host":       "unix://" + sock,
		"docker_user":       t.Data["podman_user"],
		"docker_platform":   t.Data["podman_platform"],
		"docker_commit_tag": t.Data["podman_commit_tag"],
	}}
	c, err := p.docker.Open(ctx, dt)
	if err != nil {
		return nil, err
	}
	conn := c.(*Conn)
	conn.target, conn.changes = t, true
	return conn, nil
}
