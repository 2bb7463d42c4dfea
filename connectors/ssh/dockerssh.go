package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// DockerSSHFactory is the factory of @dockerssh/HOST:CONTAINER (pyinfra's
// dockerssh): it connects to HOST as @ssh does, with the same ssh_* data
// keys, and runs commands and moves files inside CONTAINER through the
// Docker CLI on HOST (docker exec). It shares the SSH factory's known
// hosts, key passphrases and handshake limit.
type DockerSSHFactory struct {
	ssh *Factory
}

var (
	_ connectors.Factory      = (*DockerSSHFactory)(nil)
	_ connectors.DataBorrower = (*DockerSSHFactory)(nil)
)

// NewDockerSSHFactory returns the @dockerssh factory that connects with f.
func NewDockerSSHFactory(f *Factory) *DockerSSHFactory { return &DockerSSHFactory{ssh: f} }

// Scheme returns "dockerssh".
func (d *DockerSSHFactory) Scheme() string { return "dockerssh" }

// Doc describes the connector.
func (d *DockerSSHFactory) Doc() string {
	return "A container on an SSH host (pyinfra's @dockerssh): @dockerssh/HOST:CONTAINER connects to HOST as @ssh does (the ssh_* keys apply) and runs commands in CONTAINER with `docker exec` on HOST; " +
		"files go through `docker exec -i` and are renamed into place. @dockerssh/HOST:IMAGE, when no container has that name, starts a container of the image on HOST for the run, commits it to a new image when every script succeeded and removes it, as @docker/IMAGE does. " +
		"The SSH user must be allowed to run docker on HOST (root, the docker group, or dockerssh_docker=\"sudo -n docker\")."
}

// ExampleAddr is the address the generated docs show.
func (d *DockerSSHFactory) ExampleAddr() string { return "deploy@web1:app" }

// Fields declares the dockerssh_* keys; the ssh_* keys of @ssh apply too.
func (d *DockerSSHFactory) Fields() []connectors.Field {
	return []connectors.Field{
		{Name: "dockerssh_docker", Type: "string", Default: "docker",
			Doc: "The Docker CLI command on the SSH host, as shell words: docker, `sudo -n docker`, or podman (whose CLI takes the same exec arguments)."},
		{Name: "dockerssh_user", Type: "string",
			Doc: "User (name or uid[:gid]) that commands run as inside the container, as `docker exec -u`; the container's user when empty."},
		{Name: "dockerssh_platform", Type: "string",
			Doc: "Image mode: the platform (os/arch[/variant], e.g. linux/arm64) of the container started from the image, as `docker run --platform`; the engine's own when empty."},
		{Name: "dockerssh_commit_tag", Type: "string",
			Doc: "Image mode: the name:tag given to the committed image (e.g. myapp:deployed); untagged when empty. The image id is printed either way."},
	}
}

// BorrowsData returns "ssh": the host's ssh_* keys reach Parse.
func (d *DockerSSHFactory) BorrowsData() []string { return []string{"ssh"} }

// splitDockerSSH splits HOST:CONTAINER at the first colon, as pyinfra does
// ("[::1]:web" keeps the brackets' colons); the SSH port is set with
// ssh_port or in ~/.ssh/config.
func splitDockerSSH(addr string) (host, ctr string, err error) {
	rest, off := addr, 0
	if strings.HasPrefix(addr, "[") || strings.Contains(addr, "@[") {
		if i := strings.Index(addr, "]"); i >= 0 {
			rest, off = addr[i:], i
		}
	}
	i := strings.IndexByte(rest, ':')
	if i < 0 {
		return "", "", fmt.Errorf("@dockerssh/%s: want HOST:CONTAINER, such as @dockerssh/deploy@web1:app (the SSH port goes in ssh_port)", addr)
	}
	host, ctr = addr[:off+i], addr[off+i+1:]
	if host == "" || ctr == "" {
		return "", "", fmt.Errorf("@dockerssh/%s: want HOST:CONTAINER, both non-empty", addr)
	}
	// An image reference may hold a registry's port, a path and a tag or
	// digest (registry:5000/team/app:v1, app@sha256:...).
	if strings.ContainsAny(ctr, " \t\n'\"\\") || strings.HasPrefix(ctr, "-") {
		return "", "", fmt.Errorf("@dockerssh/%s: %q is not a container or image name", addr, ctr)
	}
	return host, ctr, nil
}

// Parse checks HOST as @ssh does (its SSH config and ssh_* keys) and the
// container name. It does no I/O beyond reading the SSH config.
func (d *DockerSSHFactory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	host, _, err := splitDockerSSH(addr)
	if err != nil {
		return connectors.Target{}, err
	}
	if _, err := resolveSettings(host, data, d.ssh.env); err != nil {
		return connectors.Target{}, err
	}
	if strings.TrimSpace(data["dockerssh_docker"]) == "" && data["dockerssh_docker"] != "" {
		return connectors.Target{}, errors.New("dockerssh_docker: empty command")
	}
	if p := data["dockerssh_platform"]; p != "" && !validPlatform(p) {
		return connectors.Target{}, fmt.Errorf("dockerssh_platform: %q is not os/arch[/variant], such as linux/amd64 or linux/arm64/v8", p)
	}
	if tag := data["dockerssh_commit_tag"]; tag != "" && (strings.ContainsAny(tag, " \t\n'\"\\") || strings.HasPrefix(tag, "-")) {
		return connectors.Target{}, fmt.Errorf("dockerssh_commit_tag: %q is not an image name[:tag], such as myapp:deployed", tag)
	}
	return connectors.Target{Scheme: "dockerssh", Name: "@dockerssh/" + addr, Addr: addr, Data: data}, nil
}

// Open connects to the SSH host and checks that the container runs there;
// when HOST has no container of that name but an image, it starts a
// container of the image (image mode, see DockerImageConn).
func (d *DockerSSHFactory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	host, ctr, err := splitDockerSSH(t.Addr)
	if err != nil {
		return nil, err
	}
	st := t
	st.Scheme, st.Name, st.Addr = "ssh", t.Name, host
	sc, err := d.ssh.Open(ctx, st)
	if err != nil {
		return nil, err
	}
	docker := strings.TrimSpace(t.Data["dockerssh_docker"])
	if docker == "" {
		docker = "docker"
	}
	c := &DockerConn{ssh: sc.(*Conn), target: t, docker: docker, user: t.Data["dockerssh_user"]}
	res, err := c.ssh.Run(ctx, connectors.Command{Script: docker + " inspect --type container --format '{{.Id}} {{.State.Running}}' " + connectors.Quote(ctr)})
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("connect to %s: docker inspect: %w", t.Name, err)
	}
	f := strings.Fields(string(res.Stdout))
	switch {
	case res.ExitCode == 127:
		sc.Close()
		return nil, fmt.Errorf("connect to %s: %s: command not found on %s: install Docker there or set dockerssh_docker", t.Name, docker, host)
	case res.ExitCode != 0 || len(f) != 2:
		ic, err := c.fromImage(ctx, ctr, host)
		if err != nil {
			sc.Close()
			if errors.Is(err, errNoImage) {
				return nil, fmt.Errorf("connect to %s: no container and no image named %q on %s (nothing is pulled from a registry: start a container, or build or load the image there): %s", t.Name, ctr, host, connectors.LastLine(res.Stderr))
			}
			return nil, fmt.Errorf("connect to %s: %w", t.Name, err)
		}
		return ic, nil
	case f[1] != "true":
		sc.Close()
		return nil, fmt.Errorf("connect to %s: container %q on %s is not running (start it with docker start %s)", t.Name, ctr, host, ctr)
	}
	c.id = f[0]
	return c, nil
}

// DockerConn is a container on an SSH host.
type DockerConn struct {
	ssh    *Conn
	target connectors.Target
	docker string // the CLI command, shell words
	user   string // docker exec -u
	id     string // the container's full id
}

var _ connectors.Connector = (*DockerConn)(nil)

// Target returns the target this connection was opened for.
func (c *DockerConn) Target() connectors.Target { return c.target }

// Capabilities: the SSH connection's sessions, no PTY, atomic puts.
func (c *DockerConn) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{MaxSessions: maxSessions, AtomicPut: true}
}

// Close closes the SSH connection.
func (c *DockerConn) Close() error { return c.ssh.Close() }

// exec is the host's command line that runs script in the container with
// sh -c, attaching stdin when stdin is true.
func (c *DockerConn) exec(script string, stdin bool) string {
	var b strings.Builder
	b.WriteString(c.docker + " exec")
	if stdin {
		b.WriteString(" -i")
	}
	if c.user != "" {
		b.WriteString(" -u " + connectors.Quote(c.user))
	}
	b.WriteString(" " + c.id + " sh -c " + connectors.Quote(script))
	return b.String()
}

// Run runs cmd.Script with sh -c in the container (docker exec on the SSH
// host). The exit status is the command's.
//
// Killing the docker client does not stop what it started in the container,
// and its end closes the command's standard input there, which a command
// would take for the end of a complete input. So on cancel the command's
// process group in the container is killed first, through a second docker
// exec (bounded by killTimeout), and only then is the client killed (see
// Conn.Run), its input left open until then.
func (c *DockerConn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	wrap := func(err error) error { return fmt.Errorf("run on %s: %w", c.target.Name, err) }
	if err := ctx.Err(); err != nil {
		return connectors.Result{}, wrap(err)
	}
	out := connectors.NewOutput(cmd)
	pid := connectors.NewPIDWriter(out.Stdout())
	outer, stopOuter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOuter()
	killed := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(killed)
		c.killInside(outer, pid)
		stopOuter()
	})
	var stdin io.Reader
	if cmd.Stdin != nil {
		stdin = &holdReader{r: cmd.Stdin, ctx: ctx, hold: outer.Done()}
	}
	res, err := c.ssh.Run(outer, connectors.Command{
		Script: c.exec(connectors.WithPID(cmd.Script), cmd.Stdin != nil),
		Stdin:  stdin, Stdout: pid, Stderr: out.Stderr(), StreamOnly: true, MaxOutput: cmd.MaxOutput,
	})
	if !stopWatch() {
		<-killed // the cancel came: wait for the kill
	}
	exit, dur := res.ExitCode, res.Duration
	res = connectors.Result{ExitCode: exit, Duration: dur}
	out.Fill(&res)
	if ctx.Err() != nil {
		return res, wrap(ctx.Err())
	}
	if err != nil {
		return res, wrap(err)
	}
	if exit != 0 {
		if _, started := pid.PID(50 * time.Millisecond); !started {
			// The shell never started in the container: docker's own error.
			return res, wrap(fmt.Errorf("docker exec in %s failed (exit status %d): %s", c.id[:min(12, len(c.id))], exit, connectors.LastLine(res.Stderr)))
		}
	}
	if err := out.Err(); err != nil {
		return res, wrap(fmt.Errorf("copy live output: %w", err))
	}
	return res, nil
}

// holdReader is a command's standard input that, once ctx (the caller's)
// has ended, holds back the error of its reader until hold is closed: the
// copy into the session then sees the session's own context ended and
// leaves the input open (connectors.CopyStdin), instead of closing it
// before the command was killed.
type holdReader struct {
	r    io.Reader
	ctx  context.Context
	hold <-chan struct{}
}

func (h *holdReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if err != nil && h.ctx.Err() != nil {
		<-h.hold
		return n, h.ctx.Err()
	}
	return n, err
}

// killInside stops a cancelled command's process group in the container,
// within a few seconds; ctx must not be the cancelled one.
func (c *DockerConn) killInside(ctx context.Context, pid *connectors.PIDWriter) {
	p, ok := pid.PID(time.Second)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	c.ssh.Run(ctx, connectors.Command{Script: c.exec(connectors.KillScript(p), false)})
}

// script runs a helper script in the container and returns an error with
// its standard error unless it exits 0.
func (c *DockerConn) script(ctx context.Context, s string, stdin io.Reader, stdout io.Writer) (connectors.Result, error) {
	cmd := connectors.Command{Script: c.exec(s, stdin != nil), Stdin: stdin}
	if stdout != nil {
		cmd.Stdout, cmd.StreamOnly = stdout, true
	}
	return c.ssh.Run(ctx, cmd)
}

// Exit statuses of the helper scripts that mean a missing file or directory.
const exitMissing = 66

// Put streams src into a new temporary file in dst's directory
// (connectors.TempName, created 0600 and exclusive with umask and
// noclobber) through docker exec -i
// cat; only when all of src arrived does a second exec give it the old
// file's owner, set mode and rename it over dst. A cut input (cancel, a
// failing reader) never reaches dst; the temporary file is removed, best
// effort within a few seconds, and what a lost connection leaves a later
// run removes (connectors.SweepScript).
func (c *DockerConn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) (err error) {
	wrap := func(err error) error { return fmt.Errorf("put %s on %s: %w", dst, c.target.Name, err) }
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	if src == nil {
		src = bytes.NewReader(nil)
	}
	if dst == "" || strings.HasSuffix(dst, "/") {
		return wrap(errors.New("destination must name a file"))
	}
	// The name is chosen here, not by mktemp, so that a cancel that cuts the
	// creating exec short still knows what to remove.
	dir, tmp := path.Dir(dst), connectors.TempName(ctx, dst)
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
			defer cancel()
			c.script(rctx, "rm -f -- "+connectors.Quote(tmp), nil, nil)
		}
	}()
	// umask and noclobber: created 0600 and exclusive, as mktemp would. A
	// tiny command, not cut short by a cancel, so that it has ended (and
	// the file exists or not) when the removal above runs.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
	defer ccancel()
	res, err := c.script(cctx, fmt.Sprintf(`[ -d %s ] || exit %d; umask 077 && set -C && : > %s`, connectors.Quote(dir), exitMissing, connectors.Quote(tmp)), nil, nil)
	switch {
	case err != nil:
		return wrap(err)
	case res.ExitCode == exitMissing:
		return wrap(fmt.Errorf("directory %s: %w", dir, fs.ErrNotExist))
	case res.ExitCode != 0:
		return wrap(fmt.Errorf("create a temporary file in %s: %s", dir, connectors.LastLine(res.Stderr)))
	}
	// Through Run, which on a cancel kills cat inside the container and
	// waits for it (killing the docker client alone leaves cat writing), so
	// that the removal above comes after the last write.
	in := &errReader{r: src}
	res, err = c.Run(ctx, connectors.Command{Script: "cat > " + connectors.Quote(tmp), Stdin: in})
	if err != nil {
		return wrap(err)
	}
	if err := in.failed(); err != nil {
		return wrap(err)
	}
	if res.ExitCode != 0 {
		return wrap(fmt.Errorf("write %s: %s", tmp, connectors.LastLine(res.Stderr)))
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	q, qd := connectors.Quote(tmp), connectors.Quote(dst)
	// The owner of an existing regular file, where the exec user may set it.
	finish := fmt.Sprintf(`if [ -f %[2]s ] && [ ! -L %[2]s ]; then o=$(stat -c %%u:%%g -- %[2]s) && chown "$o" %[1]s 2>/dev/null; fi; chmod %04[3]o %[1]s && mv -f -- %[1]s %[2]s`, q, qd, connectors.UnixMode(mode))
	res, err = c.script(ctx, finish, nil, nil)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("rename into place: %s", connectors.LastLine(res.Stderr))
	}
	if err != nil {
		return wrap(err)
	}
	return nil
}

// errReader records the error (not io.EOF) of the reader it wraps, which
// CopyStdin swallows: the input was cut short.
type errReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.mu.Lock()
		e.err = err
		e.mu.Unlock()
	}
	return n, err
}

func (e *errReader) failed() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Get streams the file src out of the container (docker exec cat). A
// missing src yields an error wrapping fs.ErrNotExist.
func (c *DockerConn) Get(ctx context.Context, src string, dst io.Writer) error {
	wrap := func(err error) error { return fmt.Errorf("get %s from %s: %w", src, c.target.Name, err) }
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	q := connectors.Quote(src)
	res, err := c.script(ctx, fmt.Sprintf(`[ -e %[1]s ] || exit %[2]d; exec cat -- %[1]s`, q, exitMissing), nil, dst)
	switch {
	case err != nil:
		return wrap(err)
	case res.ExitCode == exitMissing:
		return wrap(fs.ErrNotExist)
	case res.ExitCode != 0:
		return wrap(errors.New(connectors.LastLine(res.Stderr)))
	}
	return nil
}
