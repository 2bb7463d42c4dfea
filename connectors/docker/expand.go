package docker

// This file expands @docker/KEY=VALUE filters and @docker/* into the
// containers they match (connectors.Expander).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/moby/moby/client"

	"github.com/star-deploy/star-deploy/connectors"
)

var _ connectors.Expander = (*Factory)(nil)

// GroupsLabel is the container label that puts a container found by a
// filter in inventory groups: star-deploy.groups=web,db.
const GroupsLabel = "star-deploy.groups"

// filterKeys are the filters of `docker ps --filter` that an address may
// use, as KEY=VALUE.
var filterKeys = []string{"ancestor", "before", "expose", "exited", "health", "id", "is-task", "isolation", "label", "name", "network", "publish", "since", "status", "volume"}

// Expands reports whether addr is a filter (KEY=VALUE: container names
// cannot hold "=") or "*". It does no I/O.
func (f *Factory) Expands(addr string) bool {
	return addr == "*" || strings.Contains(addr, "=")
}

// Expand lists the containers that addr matches, as `docker ps --filter
// addr` does: running ones only, unless the filter is status= or exited=
// (then all, as docker ps -a). "*" is every running container. Each
// becomes @docker/NAME, in name order, in the groups of its
// star-deploy.groups label.
func (f *Factory) Expand(ctx context.Context, addr string, data map[string]string) ([]connectors.Expansion, error) {
	opts := client.ContainerListOptions{}
	if addr != "*" {
		key, value, _ := strings.Cut(addr, "=")
		if !slices.Contains(filterKeys, key) {
			msg := fmt.Sprintf("unknown container filter %q", key)
			if near := connectors.Closest(key, filterKeys); near != "" {
				msg += fmt.Sprintf(" (did you mean %s=?)", near)
			}
			return nil, fmt.Errorf("%s: write @docker/KEY=VALUE with KEY one of %s, or @docker/* for every running container", msg, strings.Join(filterKeys, ", "))
		}
		opts.Filters = client.Filters{}.Add(key, value)
		opts.All = key == "status" || key == "exited"
	}
	eng, err := f.engineFor(data)
	if err != nil {
		return nil, err
	}
	list, err := eng.ContainerList(ctx, opts)
	if err != nil {
		return nil, engineError("list containers", err)
	}
	var out []connectors.Expansion
	for _, c := range list.Items {
		name := c.ID
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, connectors.Expansion{Name: "@docker/" + name, Groups: labelGroups(c.Labels[GroupsLabel])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// labelGroups splits the value of the groups label: comma-separated
// names, blanks ignored.
func labelGroups(v string) []string {
	var out []string
	for _, g := range strings.Split(v, ",") {
		if g = strings.TrimSpace(g); g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// engineError says what to do about an error of the Engine API.
func engineError(what string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission) || isPermission(err):
		return fmt.Errorf("permission denied on the Docker socket: add your user to the docker group (then log in again) or run as root: %w", err)
	case errors.As(err, new(*tls.CertificateVerificationError)):
		return fmt.Errorf("the Docker engine's TLS certificate is not trusted: check that ca.pem in DOCKER_CERT_PATH is the CA that signed it: %w", err)
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("cannot reach the Docker engine (%v): start dockerd, or set DOCKER_HOST or docker_host", err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
