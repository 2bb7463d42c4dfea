package builtins

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
)

// dockerFacts describe the Docker objects of the host's engine, read with
// its docker command line: `docker KIND ls -q` for the ids, then one
// `docker KIND inspect` of them all, parsed in Go. They are what the
// docker stdlib module decides on.
func dockerFacts() []factDef {
	return []factDef{
		{Name: "docker_containers", Doc: "The containers of the host's Docker engine, running or not, from `docker container inspect`: a dict from name to a struct with " +
			"`.id`, `.name`, `.image` (the reference it was created from, as given: `nginx:1.25`), `.image_id` (`sha256:...`), `.status` (`created`, `running`, `exited`, ...), `.running` (a bool), `.exit_code`, " +
			"`.command` (the command, a list, or None) and `.entrypoint` (likewise), `.env` (a dict, the image's variables included), `.labels` (a dict, the image's labels included), " +
			"`.ports` (the published ports as `-p` spells them, sorted: `127.0.0.1:8080:80/tcp`, `127.0.0.1::443/tcp` for a port docker picks, `8080:80/tcp` on every address, `9000/tcp`), " +
			"`.networks` (the names of the networks it is attached to, sorted), `.volumes` (the `-v` specs as docker keeps them, `data:/data`, `/srv:/srv:ro`, then the destinations of its anonymous volumes, `/cache`, sorted) " +
			"and `.restart_policy` (`no`, `always`, `unless-stopped`, `on-failure`, `on-failure:3`). " +
			"Empty when the host has no `docker` command; a Docker engine that does not answer is an error.",
			Example: `c = fact("docker_containers").get("web")
if c != None and not c.running:
    print("web is", c.status)`, read: readDockerContainers},
		{Name: "docker_images", Doc: "The images of the host's Docker engine, from `docker image inspect`: a dict from image id (`sha256:...`) to a struct with " +
			"`.id`, `.tags` (`nginx:1.25`, as `docker images` shows them), `.digests` (`nginx@sha256:...`, for pulled images), `.created`, `.size` (bytes), " +
			"and the configuration containers start with: `.command` and `.entrypoint` (lists, or None), `.env` and `.labels` (dicts), `.volumes` (the paths it declares, sorted). " +
			"Empty when the host has no `docker` command.",
			Example: `for img in fact("docker_images").values():
    if "nginx:1.25" in img.tags:
        print(img.id)`, read: readDockerImages},
		{Name: "docker_networks", Doc: "The networks of the host's Docker engine, from `docker network inspect`: a dict from name to a struct with " +
			"`.id`, `.name`, `.driver` (`bridge`, `host`, `null`, `overlay`, ...), `.scope`, `.internal`, `.attachable`, `.ipv6` (bools), " +
			"`.subnets` and `.gateways` (of its IPAM configuration, lists of strings), `.labels` and `.options` (dicts), and `.containers` (the names of the containers attached, sorted). " +
			"Empty when the host has no `docker` command.",
			Example: `n = fact("docker_networks").get("backend")
if n != None:
    print(n.subnets, n.containers)`, read: readDockerNetworks},
		{Name: "docker_volumes", Doc: "The volumes of the host's Docker engine, from `docker volume inspect`: a dict from name to a struct with " +
			"`.name`, `.driver`, `.labels` and `.options` (dicts), `.mountpoint`, `.scope` and `.created`. " +
			"Empty when the host has no `docker` command.",
			Example: `if "pgdata" not in fact("docker_volumes"):
    print("no pgdata volume yet")`, read: readDockerVolumes},
	}
}

// dockerProbe lists the ids of one kind of object (%[1]s: the ls command)
// and inspects them all (%[2]s: the kind). A missing docker command (exit
// 127) prints nothing.
const dockerProbe = `ids=$(docker %[1]s) || { s=$?; [ $s = 127 ] && exit 0; exit $s; }
[ -z "$ids" ] || docker %[2]s inspect $ids`

// dockerInspect runs dockerProbe for kind and returns the JSON array it
// printed, nil for none. Another client may remove an object between the
// ls and the inspect ("No such ..."): the probe then runs again.
func dockerInspect(ctx context.Context, h *Host, ctl Control, kind, ls string) ([]byte, error) {
	script := fmt.Sprintf(dockerProbe, ls, kind)
	for try := 1; ; try++ {
		res, err := h.run(ctx, script, ctl, "")
		if err != nil {
			return nil, err
		}
		if err := whole(res); err != nil {
			return nil, err
		}
		if res.ExitCode == 0 {
			return res.Stdout, nil
		}
		stderr := strings.TrimSpace(string(res.Stderr))
		if try < 3 && strings.Contains(stderr, "No such") {
			continue
		}
		return nil, fmt.Errorf("docker %s inspect exited with status %d: %s", kind, res.ExitCode, stderr)
	}
}

// The docker facts: each inspects every object of its kind and keys the
// records by name (images by ID).
var (
	readDockerContainers = readDockerObjects("container", "container ls -aq --no-trunc", parseDockerContainers, func(c dockerContainer) string { return c.Name })
	readDockerImages     = readDockerObjects("image", "image ls -q --no-trunc", parseDockerImages, func(i dockerImage) string { return i.ID })
	readDockerNetworks   = readDockerObjects("network", "network ls -q --no-trunc", parseDockerNetworks, func(n dockerNetwork) string { return n.Name })
	readDockerVolumes    = readDockerObjects("volume", "volume ls -q", parseDockerVolumes, func(v dockerVolume) string { return v.Name })
)

// readDockerObjects reads the objects of kind that `docker ls` lists, with
// parse, into a dict keyed by key.
func readDockerObjects[T valuer](kind, ls string, parse func([]byte) ([]T, error), key func(T) string) readFunc {
	return func(ctx context.Context, h *Host, ctl Control, _ []string) (starlark.Value, error) {
		data, err := dockerInspect(ctx, h, ctl, kind, ls)
		if err != nil {
			return nil, err
		}
		objs, err := parse(data)
		if err != nil {
			return nil, err
		}
		return keyedDict(objs, key), nil
	}
}

// decodeInspect decodes the JSON array of a docker inspect of kind (empty
// output is no objects) and makes a record of each object with record,
// leaving out those it says no to.
func decodeInspect[R, T any](kind string, data []byte, record func(R) (T, bool)) ([]T, error) {
	var raw []R
	if len(strings.TrimSpace(string(data))) > 0 {
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, fmt.Errorf("parse the output of docker %s inspect: %w", kind, err)
		}
	}
	out := make([]T, 0, len(raw))
	for _, r := range raw {
		if t, ok := record(r); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// dockerContainer is the part of `docker container inspect` that the
// docker_containers fact keeps.
type dockerContainer struct {
	ID, Name, Image, ImageID, Status string
	Running                          bool
	ExitCode                         int
	Command, Entrypoint              []string // nil: none
	Env, Labels                      map[string]string
	Ports, Networks, Volumes         []string
	RestartPolicy                    string
}

// dockerPortBinding is one host binding of a container port.
type dockerPortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

type containerInspect struct {
	ID    string `json:"Id"`
	Name  string
	Image string
	State struct {
		Status   string
		Running  bool
		ExitCode int
	}
	Config struct {
		Image      string
		Env        []string
		Cmd        []string
		Entrypoint []string
		Labels     map[string]string
	}
	HostConfig struct {
		Binds         []string
		PortBindings  map[string][]dockerPortBinding
		RestartPolicy struct {
			Name              string
			MaximumRetryCount int
		}
	}
	NetworkSettings struct {
		Networks map[string]json.RawMessage
	}
	Mounts []struct {
		Type, Name, Destination string
	}
}

// parseDockerContainers parses the output of `docker container inspect`.
func parseDockerContainers(data []byte) ([]dockerContainer, error) {
	return decodeInspect("container", data, func(r containerInspect) (dockerContainer, bool) {
		c := dockerContainer{
			ID:         r.ID,
			Name:       strings.TrimPrefix(r.Name, "/"),
			Image:      r.Config.Image,
			ImageID:    r.Image,
			Status:     r.State.Status,
			Running:    r.State.Running,
			ExitCode:   r.State.ExitCode,
			Command:    r.Config.Cmd,
			Entrypoint: r.Config.Entrypoint,
			Env:        envMap(r.Config.Env),
			Labels:     nonNil(r.Config.Labels),
			Networks:   slices.Sorted(maps.Keys(r.NetworkSettings.Networks)),
		}
		for port, bindings := range r.HostConfig.PortBindings {
			for _, b := range bindings {
				c.Ports = append(c.Ports, portSpec(b, port))
			}
		}
		slices.Sort(c.Ports)
		c.Volumes = containerVolumes(r.HostConfig.Binds, r.Mounts)
		c.RestartPolicy = r.HostConfig.RestartPolicy.Name
		switch {
		case c.RestartPolicy == "":
			c.RestartPolicy = "no"
		case c.RestartPolicy == "on-failure" && r.HostConfig.RestartPolicy.MaximumRetryCount > 0:
			c.RestartPolicy += ":" + strconv.Itoa(r.HostConfig.RestartPolicy.MaximumRetryCount)
		}
		return c, true
	})
}

// portSpec spells a port binding as `-p` takes it: [IP:][HOSTPORT:]PORT/PROTO,
// IP between brackets when it is an IPv6 address, HOSTPORT empty when
// docker picks it.
func portSpec(b dockerPortBinding, port string) string {
	if !strings.Contains(port, "/") {
		port += "/tcp"
	}
	ip := b.HostIP
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	switch {
	case ip == "" && b.HostPort == "":
		return port
	case ip == "":
		return b.HostPort + ":" + port
	}
	return ip + ":" + b.HostPort + ":" + port
}

// containerVolumes returns the binds as given, then the destinations of
// the volumes mounted otherwise (anonymous ones, and the image's), sorted.
func containerVolumes(binds []string, mounts []struct{ Type, Name, Destination string }) []string {
	out := slices.Clone(binds)
	bound := map[string]bool{}
	for _, b := range binds {
		if parts := strings.Split(b, ":"); len(parts) >= 2 {
			bound[parts[1]] = true
		}
	}
	for _, m := range mounts {
		if m.Type == "volume" && !bound[m.Destination] {
			out = append(out, m.Destination)
		}
	}
	slices.Sort(out)
	return out
}

// envMap turns KEY=VALUE entries into a map; a later entry wins.
func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return m
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// optList is a list, or None for nil.
func optList(ss []string) starlark.Value {
	if ss == nil {
		return starlark.None
	}
	return strList(ss)
}

func (c dockerContainer) value() starlark.Value {
	return newStruct("docker_container", starlark.StringDict{
		"id":             starlark.String(c.ID),
		"name":           starlark.String(c.Name),
		"image":          starlark.String(c.Image),
		"image_id":       starlark.String(c.ImageID),
		"status":         starlark.String(c.Status),
		"running":        starlark.Bool(c.Running),
		"exit_code":      starlark.MakeInt(c.ExitCode),
		"command":        optList(c.Command),
		"entrypoint":     optList(c.Entrypoint),
		"env":            stringDict(c.Env),
		"labels":         stringDict(c.Labels),
		"ports":          strList(nonNilList(c.Ports)),
		"networks":       strList(nonNilList(c.Networks)),
		"volumes":        strList(nonNilList(c.Volumes)),
		"restart_policy": starlark.String(c.RestartPolicy),
	})
}

func nonNilList(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// dockerImage is the part of `docker image inspect` that the docker_images
// fact keeps.
type dockerImage struct {
	ID, Created         string
	Size                int64
	Tags, Digests       []string
	Command, Entrypoint []string
	Env, Labels         map[string]string
	Volumes             []string
}

type imageInspect struct {
	ID          string `json:"Id"`
	RepoTags    []string
	RepoDigests []string
	Created     string
	Size        int64
	Config      struct {
		Env        []string
		Cmd        []string
		Entrypoint []string
		Labels     map[string]string
		Volumes    map[string]json.RawMessage
	}
}

// parseDockerImages parses the output of `docker image inspect`; an image
// listed twice (once per tag) is kept once.
func parseDockerImages(data []byte) ([]dockerImage, error) {
	seen := map[string]bool{}
	return decodeInspect("image", data, func(r imageInspect) (dockerImage, bool) {
		if seen[r.ID] {
			return dockerImage{}, false
		}
		seen[r.ID] = true
		return dockerImage{
			ID:         r.ID,
			Created:    r.Created,
			Size:       r.Size,
			Tags:       nonNilList(r.RepoTags),
			Digests:    nonNilList(r.RepoDigests),
			Command:    r.Config.Cmd,
			Entrypoint: r.Config.Entrypoint,
			Env:        envMap(r.Config.Env),
			Labels:     nonNil(r.Config.Labels),
			Volumes:    nonNilList(slices.Sorted(maps.Keys(r.Config.Volumes))),
		}, true
	})
}

func (i dockerImage) value() starlark.Value {
	return newStruct("docker_image", starlark.StringDict{
		"id":         starlark.String(i.ID),
		"tags":       strList(i.Tags),
		"digests":    strList(i.Digests),
		"created":    starlark.String(i.Created),
		"size":       starlark.MakeInt64(i.Size),
		"command":    optList(i.Command),
		"entrypoint": optList(i.Entrypoint),
		"env":        stringDict(i.Env),
		"labels":     stringDict(i.Labels),
		"volumes":    strList(nonNilList(i.Volumes)),
	})
}

// dockerNetwork is the part of `docker network inspect` that the
// docker_networks fact keeps.
type dockerNetwork struct {
	ID, Name, Driver, Scope       string
	Internal, Attachable, IPv6    bool
	Subnets, Gateways, Containers []string
	Labels, Options               map[string]string
}

type networkInspect struct {
	Name       string
	ID         string `json:"Id"`
	Scope      string
	Driver     string
	EnableIPv6 bool
	IPAM       struct {
		Config []struct{ Subnet, Gateway string }
	}
	Internal   bool
	Attachable bool
	Containers map[string]struct{ Name string }
	Options    map[string]string
	Labels     map[string]string
}

// parseDockerNetworks parses the output of `docker network inspect`.
func parseDockerNetworks(data []byte) ([]dockerNetwork, error) {
	return decodeInspect("network", data, func(r networkInspect) (dockerNetwork, bool) {
		n := dockerNetwork{
			ID: r.ID, Name: r.Name, Driver: r.Driver, Scope: r.Scope,
			Internal: r.Internal, Attachable: r.Attachable, IPv6: r.EnableIPv6,
			Subnets: []string{}, Gateways: []string{}, Containers: []string{},
			Labels: nonNil(r.Labels), Options: nonNil(r.Options),
		}
		for _, c := range r.IPAM.Config {
			if c.Subnet != "" {
				n.Subnets = append(n.Subnets, c.Subnet)
			}
			if c.Gateway != "" {
				n.Gateways = append(n.Gateways, c.Gateway)
			}
		}
		for _, c := range r.Containers {
			n.Containers = append(n.Containers, c.Name)
		}
		slices.Sort(n.Containers)
		return n, true
	})
}

func (n dockerNetwork) value() starlark.Value {
	return newStruct("docker_network", starlark.StringDict{
		"id":         starlark.String(n.ID),
		"name":       starlark.String(n.Name),
		"driver":     starlark.String(n.Driver),
		"scope":      starlark.String(n.Scope),
		"internal":   starlark.Bool(n.Internal),
		"attachable": starlark.Bool(n.Attachable),
		"ipv6":       starlark.Bool(n.IPv6),
		"subnets":    strList(n.Subnets),
		"gateways":   strList(n.Gateways),
		"labels":     stringDict(n.Labels),
		"options":    stringDict(n.Options),
		"containers": strList(n.Containers),
	})
}

// dockerVolume is the part of `docker volume inspect` that the
// docker_volumes fact keeps.
type dockerVolume struct {
	Name, Driver, Mountpoint, Scope, Created string
	Labels, Options                          map[string]string
}

type volumeInspect struct {
	Name       string
	Driver     string
	Mountpoint string
	Scope      string
	CreatedAt  string
	Labels     map[string]string
	Options    map[string]string
}

// parseDockerVolumes parses the output of `docker volume inspect`.
func parseDockerVolumes(data []byte) ([]dockerVolume, error) {
	return decodeInspect("volume", data, func(r volumeInspect) (dockerVolume, bool) {
		return dockerVolume{
			Name: r.Name, Driver: r.Driver, Mountpoint: r.Mountpoint, Scope: r.Scope, Created: r.CreatedAt,
			Labels: nonNil(r.Labels), Options: nonNil(r.Options),
		}, true
	})
}

func (v dockerVolume) value() starlark.Value {
	return newStruct("docker_volume", starlark.StringDict{
		"name":       starlark.String(v.Name),
		"driver":     starlark.String(v.Driver),
		"mountpoint": starlark.String(v.Mountpoint),
		"scope":      starlark.String(v.Scope),
		"created":    starlark.String(v.Created),
		"labels":     stringDict(v.Labels),
		"options":    stringDict(v.Options),
	})
}
