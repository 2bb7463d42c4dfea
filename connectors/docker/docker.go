// Package docker is the Docker Engine API connector: @docker/NAME runs
// commands in a running container through exec, and moves files through
// the archive API, with github.com/moby/moby/client (API version
// negotiation; DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH are
// honoured, and the transport is checked first: see planEngine). It never
// runs the docker CLI. This package must not import
// Starlark or another connector; it is the only one importing the client.
package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/star-deploy/star-deploy/connectors"
)

// Factory is the Docker connector's factory. Hosts of one run share one
// Engine client per docker_host.
type Factory struct {
	opts    Options
	mu      sync.Mutex
	clients map[enginePlan]*client.Client
}

var _ connectors.Factory = (*Factory)(nil)

// Options configure the Docker factory.
type Options struct {
	// Warn receives warnings, e.g. that the Engine is reached over plain
	// TCP. nil writes them to standard error.
	Warn func(msg string)
}

// NewFactory returns the Docker factory. At most one Options value is used.
func NewFactory(opts ...Options) *Factory {
	f := &Factory{clients: map[enginePlan]*client.Client{}}
	if len(opts) > 0 {
		f.opts = opts[0]
	}
	if f.opts.Warn == nil {
		f.opts.Warn = func(msg string) { fmt.Fprintln(os.Stderr, "star-deploy:", msg) }
	}
	return f
}

// Scheme returns "docker".
func (f *Factory) Scheme() string { return "docker" }

// Doc describes the connector.
func (f *Factory) Doc() string {
	return "A running Docker container, through the Engine API (never the docker CLI): @docker/NAME or an id. " +
		"Commands run through exec; files move through the archive API and are renamed into place. " +
		"@docker/KEY=VALUE (a docker ps filter: label=K=V, name=, ancestor=, status=, ...) stands for every container it matches, @docker/* for every running one; " +
		"a container's label star-deploy.groups=web,db puts it in those groups."
}

// Fields declares the docker_* data keys.
func (f *Factory) Fields() []connectors.Field {
	return []connectors.Field{
		{Name: "docker_host", Type: "string", Default: "$DOCKER_HOST or the local socket", Doc: "Engine address, as DOCKER_HOST: unix:///var/run/docker.sock, tcp://HOST:2376 (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH). Plain tcp:// without TLS is refused except to a loopback address (with a warning) or with docker_insecure."},
		{Name: "docker_insecure", Type: "bool", Default: "false", Doc: "Accept an Engine connection that is not authenticated: plain tcp:// without TLS to an address other than loopback, or TLS without verifying the Engine's certificate when DOCKER_TLS_VERIFY is unset. Anyone on the network path then gets root on the Engine's host; a warning says so."},
		{Name: "docker_user", Type: "string", Doc: "User (name or uid[:gid]) that commands run as inside the container; the container's user when empty."},
		{Name: "docker_platform", Type: "string", Doc: "Image mode: the platform (os/arch[/variant], e.g. linux/arm64) of the container started from the image; the engine's own when empty."},
		{Name: "docker_commit_tag", Type: "string", Doc: "Image mode: the name:tag given to the committed image (e.g. myapp:deployed); untagged when empty. The image id is printed either way."},
	}
}

// Parse checks the container name; it does no I/O.
func (f *Factory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if addr == "" {
		return connectors.Target{}, errors.New("@docker needs a container: @docker/NAME")
	}
	if _, err := parsePlatform(data["docker_platform"]); err != nil {
		return connectors.Target{}, err
	}
	return connectors.Target{Scheme: "docker", Name: "@docker/" + addr, Addr: addr, Data: data}, nil
}

// engine returns the shared client for the Engine that t's data and the
// environment name (see planEngine); errors name t.
func (f *Factory) engine(t connectors.Target) (*client.Client, error) {
	c, err := f.engineFor(t.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	return c, nil
}

// engineFor returns the shared client for the Engine that the docker_*
// keys of data and the environment name, warning once per client when the
// connection is not authenticated.
func (f *Factory) engineFor(data map[string]string) (*client.Client, error) {
	env, err := engineEnvFor(data)
	if err != nil {
		return nil, err
	}
	plan, err := planEngine(env)
	if err != nil {
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.clients[plan]; ok {
		return c, nil
	}
	opts, err := plan.clientOptions()
	if err == nil {
		var c *client.Client
		if c, err = client.New(opts...); err == nil {
			if plan.warning != "" {
				f.opts.Warn(plan.warning)
			}
			f.clients[plan] = c
			return c, nil
		}
	}
	return nil, fmt.Errorf("docker engine: %w", err)
}

// Open finds the container and checks that it runs.
func (f *Factory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	eng, err := f.engine(t)
	if err != nil {
		return nil, err
	}
	info, err := eng.ContainerInspect(ctx, t.Addr, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return f.fromImage(ctx, eng, t)
	case errors.Is(err, fs.ErrPermission) || isPermission(err):
		return nil, fmt.Errorf("%s: permission denied on the Docker socket: add your user to the docker group (then log in again) or run as root: %w", t.Name, err)
	case errors.As(err, new(*tls.CertificateVerificationError)):
		return nil, fmt.Errorf("%s: the Docker engine's TLS certificate is not trusted: check that ca.pem in DOCKER_CERT_PATH is the CA that signed it: %w", t.Name, err)
	case client.IsErrConnectionFailed(err):
		return nil, fmt.Errorf("%s: cannot reach the Docker engine (%v): start dockerd, or set DOCKER_HOST or docker_host", t.Name, err)
	case err != nil:
		return nil, fmt.Errorf("%s: inspect container: %w", t.Name, err)
	}
	if info.Container.State == nil || !info.Container.State.Running {
		return nil, fmt.Errorf("%s: container %q is not running (start it with docker start %s)", t.Name, t.Addr, t.Addr)
	}
	return &Conn{target: t, eng: eng, id: info.Container.ID, user: t.Data["docker_user"]}, nil
}

func isPermission(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("permission denied"))
}

// keepAlive is the entrypoint of an image-mode container: it idles until
// stopped, whatever the image's own entrypoint would do.
var keepAlive = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}

// fromImage starts a container of image t.Addr for the run (image mode).
// Finish commits it to a new image and removes it.
func (f *Factory) fromImage(ctx context.Context, eng *client.Client, t connectors.Target) (connectors.Connector, error) {
	img, err := eng.ImageInspect(ctx, t.Addr)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%s: no container and no image named %q; start a container, or build or load the image (nothing is pulled from a registry)", t.Name, t.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: inspect image: %w", t.Name, err)
	}
	platform, _ := parsePlatform(t.Data["docker_platform"])
	created, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Platform: platform,
		Config: &container.Config{Image: t.Addr, Entrypoint: keepAlive, Cmd: []string{},
			Labels: map[string]string{"star-deploy.image-mode": t.Addr}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: create a container of image %s: %w", t.Name, t.Addr, err)
	}
	c := &Conn{target: t, eng: eng, id: created.ID, user: t.Data["docker_user"], ephemeral: true, commitTag: t.Data["docker_commit_tag"]}
	if img.Config != nil {
		c.origEntrypoint, c.origCmd = img.Config.Entrypoint, img.Config.Cmd
	}
	if _, err := eng.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		c.remove()
		return nil, fmt.Errorf("%s: start a container of image %s: %w", t.Name, t.Addr, err)
	}
	return c, nil
}

// Conn is a running container.
type Conn struct {
	target connectors.Target
	eng    *client.Client
	id     string
	user   string

	// Image mode: the container is ours, committed and removed at the end.
	ephemeral               bool
	commitTag               string // the name:tag of the committed image; "" for none
	changes                 bool   // commit restores entrypoint and command as changes (Podman)
	origEntrypoint, origCmd []string
	removeOnce              sync.Once
}

var _ connectors.Finisher = (*Conn)(nil)

// Finish, in image mode, commits the container to a new image when ok
// (restoring the image's entrypoint and command) and removes the container
// in every case. For an existing container it does nothing.
func (c *Conn) Finish(ctx context.Context, ok bool) (string, error) {
	if !c.ephemeral {
		return "", nil
	}
	defer c.remove()
	if !ok {
		return "", nil
	}
	cfg := &container.Config{Entrypoint: c.origEntrypoint, Cmd: c.origCmd}
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = []string{}
	}
	opts := client.ContainerCommitOptions{Reference: c.commitTag, Config: cfg, Comment: "star-deploy run on " + c.target.Addr}
	if c.changes {
		// Podman's compatible API ignores the config; it applies changes.
		ep, _ := json.Marshal(cfg.Entrypoint)
		cmd, _ := json.Marshal(cmdOrEmpty(cfg.Cmd))
		opts.Changes = []string{"ENTRYPOINT " + string(ep), "CMD " + string(cmd)}
	}
	res, err := c.eng.ContainerCommit(ctx, c.id, opts)
	if err != nil {
		return "", fmt.Errorf("commit the container of %s: %w", c.target.Addr, err)
	}
	msg := "committed image " + res.ID
	if tag := c.commitTag; tag != "" {
		msg += " as " + tag
	}
	return msg, nil
}

func cmdOrEmpty(cmd []string) []string {
	if cmd == nil {
		return []string{}
	}
	return cmd
}

// remove deletes an image-mode container, at most once. It runs from Close,
// which has no context, so it bounds itself.
func (c *Conn) remove() {
	if !c.ephemeral {
		return
	}
	c.removeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.eng.ContainerRemove(ctx, c.id, client.ContainerRemoveOptions{Force: true})
	})
}

var _ connectors.Connector = (*Conn)(nil)

// Target returns the target this connection was opened for.
func (c *Conn) Target() connectors.Target { return c.target }

// Capabilities: concurrent execs and atomic puts.
func (c *Conn) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{AtomicPut: true}
}

// Close removes an image-mode container (if Finish did not already); the
// Engine client is shared by the factory and stays open.
func (c *Conn) Close() error {
	c.remove()
	return nil
}

// Run runs cmd.Script with sh -c through exec, stdout and stderr
// demultiplexed, the exit code from exec inspect. On cancel the process
// group inside the container is killed through a second exec.
func (c *Conn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	start := time.Now()
	wrap := func(err error) error { return fmt.Errorf("run on %s: %w", c.target.Name, err) }
	if err := ctx.Err(); err != nil {
		return connectors.Result{}, wrap(err)
	}
	ex, err := c.eng.ExecCreate(ctx, c.id, client.ExecCreateOptions{
		User: c.user, AttachStdin: cmd.Stdin != nil, AttachStdout: true, AttachStderr: true,
		Cmd: []string{"sh", "-c", connectors.WithPID(cmd.Script)},
	})
	if err != nil {
		return connectors.Result{}, wrap(err)
	}
	att, err := c.eng.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return connectors.Result{}, wrap(err)
	}
	defer att.Close()

	out := connectors.NewOutput(cmd)
	pid := connectors.NewPIDWriter(out.Stdout())
	if cmd.Stdin != nil {
		go connectors.CopyStdin(ctx, stdinOf{&att.HijackedResponse}, cmd.Stdin)
	}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(pid, out.Stderr(), att.Reader)
		copied <- err
	}()
	select {
	case err = <-copied:
	case <-ctx.Done():
		c.kill(context.WithoutCancel(ctx), pid)
		att.Close()
		<-copied
		res := connectors.Result{ExitCode: -1, Duration: time.Since(start)}
		out.Fill(&res)
		return res, wrap(ctx.Err())
	}
	if err != nil && cmd.Stdin != nil && errors.Is(err, syscall.ECONNRESET) {
		// Podman resets the stream of a command that exited without
		// reading all of its input (the unread bytes make the kernel
		// send a reset); exec inspect tells whether it ended.
		err = nil
	}
	if err != nil {
		return connectors.Result{}, wrap(err)
	}
	res := connectors.Result{Duration: time.Since(start)}
	out.Fill(&res)
	// The stream ends a moment before exec inspect reports the exit.
	for i := 0; ; i++ {
		st, err := c.eng.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return res, wrap(err)
		}
		if !st.Running {
			res.ExitCode = st.ExitCode
			return res, nil
		}
		if i == 100 {
			return res, wrap(errors.New("the exec did not report its exit status"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops a cancelled command's process group with a second exec; ctx
// must not be the cancelled one.
func (c *Conn) kill(ctx context.Context, pid *connectors.PIDWriter) {
	p, ok := pid.PID(time.Second)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ex, err := c.eng.ExecCreate(ctx, c.id, client.ExecCreateOptions{User: c.user, Cmd: []string{"sh", "-c", connectors.KillScript(p)}})
	if err != nil {
		return
	}
	// Detached: Podman's compatible API waits for a non-detached start.
	c.eng.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
	for range 50 {
		if st, err := c.eng.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{}); err != nil || !st.Running {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Put sends src as a one-file tar stream (mode 0600, and owner in the
// header: an existing file's owner, or the exec user's for a new file) to a
// temporary name in dst's directory (connectors.TempName), then sets mode
// and renames it over dst in one exec. A tar header needs the size first,
// so a source of unknown length is spooled to a local temporary file (disk,
// not memory). On failure or cancel the temporary file is removed, best
// effort with a short deadline of its own; what a lost engine connection
// leaves, a later run removes (see connectors.SweepScript).
func (c *Conn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) (err error) {
	wrap := func(err error) error { return fmt.Errorf("put %s on %s: %w", dst, c.target.Name, err) }
	size, body, cleanup, err := sized(ctx, src)
	if err != nil {
		return wrap(err)
	}
	defer cleanup()
	dir, tmp := path.Dir(dst), connectors.TempName(ctx, dst)
	// An existing file keeps its owner: the tar header carries it. The
	// directory is checked here too: Podman's archive API would create it.
	uid, gid := 0, 0
	res, err := c.Run(ctx, connectors.Command{Script: "[ -d " + connectors.Quote(dir) + " ] || exit 66; stat -c '%u %g' -- " + connectors.Quote(dst) + " 2>/dev/null || echo $(id -u) $(id -g)"})
	switch {
	case err != nil:
		return wrap(err)
	case res.ExitCode == 66:
		return wrap(fmt.Errorf("directory %s: %w", dir, fs.ErrNotExist))
	}
	fmt.Sscan(string(res.Stdout), &uid, &gid)
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: path.Base(tmp), Mode: 0o600, Size: size, Uid: uid, Gid: gid, ModTime: time.Now(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, connectors.ContextReader(ctx, body))
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer func() {
		if err != nil {
			c.removeTemp(ctx, tmp)
		}
	}()
	_, err = c.eng.CopyToContainer(ctx, c.id, client.CopyToContainerOptions{DestinationPath: dir, Content: pr})
	pr.CloseWithError(err)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return wrap(fmt.Errorf("directory %s: %w", dir, fs.ErrNotExist))
		}
		if ctx.Err() != nil {
			return wrap(ctx.Err())
		}
		return wrap(err)
	}
	q := connectors.Quote(tmp)
	res, err = c.Run(ctx, connectors.Command{Script: "chmod " + fmt.Sprintf("%04o", connectors.UnixMode(mode)) + " " + q + " && mv -f -- " + q + " " + connectors.Quote(dst)})
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("rename into place: %s", bytes.TrimSpace(res.Stderr))
	}
	if err != nil {
		return wrap(err)
	}
	return nil
}

// removeTemp removes the temporary file of a failed Put, also when ctx was
// cancelled, waiting at most a few seconds for the engine.
func (c *Conn) removeTemp(ctx context.Context, tmp string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	c.Run(ctx, connectors.Command{Script: "rm -f -- " + connectors.Quote(tmp)})
}

// sized returns src's size and a reader of it: from Len() (content=) or
// Stat() (a local file, src=) without copying, else by spooling to a local
// temporary file, on disk, never in memory.
func sized(ctx context.Context, src io.Reader) (int64, io.Reader, func(), error) {
	if src == nil {
		return 0, bytes.NewReader(nil), func() {}, nil
	}
	switch r := src.(type) {
	case interface{ Len() int }:
		return int64(r.Len()), src, func() {}, nil
	case interface{ Stat() (fs.FileInfo, error) }: // a local file: put(src=)
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size(), io.LimitReader(src, fi.Size()), func() {}, nil
		}
	}
	f, err := os.CreateTemp("", "star-deploy-put-*")
	if err != nil {
		return 0, nil, nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, connectors.ContextReader(ctx, src))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return 0, nil, nil, err
	}
	return n, f, cleanup, nil
}

// Get streams the file src out of the container's archive.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	wrap := func(err error) error { return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err) }
	res, err := c.eng.CopyFromContainer(ctx, c.id, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return wrap(fs.ErrNotExist)
		}
		return wrap(err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	h, err := tr.Next()
	if err != nil {
		return wrap(err)
	}
	if h.Typeflag != tar.TypeReg {
		return wrap(fmt.Errorf("not a regular file"))
	}
	if _, err := io.Copy(dst, connectors.ContextReader(ctx, tr)); err != nil {
		return wrap(err)
	}
	return nil
}

// parsePlatform parses os/arch[/variant]; "" is nil (the engine's own).
func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return nil, fmt.Errorf("docker_platform: want os/arch or os/arch/variant (linux/amd64, linux/arm64/v8), got %q", s)
	}
	p := &ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// stdinOf is the write side of an exec's attached stream, as a command's
// standard input: Close half-closes it, which ends that input.
type stdinOf struct{ h *client.HijackedResponse }

func (s stdinOf) Write(p []byte) (int, error) { return s.h.Conn.Write(p) }
func (s stdinOf) Close() error                { return s.h.CloseWrite() }
