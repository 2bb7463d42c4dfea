package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// Image mode of @dockerssh/HOST:IMAGE, as @docker/IMAGE does it through
// the Engine API: when no container has the name but an image on HOST does,
// a container of the image is started for the run (kept alive by a small
// shell loop instead of the image's entrypoint, with no network), the
// host's scripts run in it, and Finish commits it to a new image when every
// script succeeded (restoring the image's entrypoint and command) and
// removes it in every case.

// errNoImage is fromImage's error when HOST has no image of that name.
var errNoImage = errors.New("no such image")

// imageKeepAlive is the script of an image-mode container's shell: it idles
// until stopped, whatever the image's own entrypoint would do, and ends at
// once on SIGTERM (the same loop as connectors/docker's).
const imageKeepAlive = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"

// imageLabel marks image-mode containers (its value is the image), so that
// one a lost connection left behind can be found:
// docker ps -a --filter label=star-deploy.image-mode.
const imageLabel = "star-deploy.image-mode"

// removeTimeout bounds the removal of an image-mode container; it runs
// from Close, which has no context.
const removeTimeout = 30 * time.Second

// validPlatform reports whether p is os/arch[/variant].
func validPlatform(p string) bool {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	for _, s := range parts {
		if s == "" || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != "" {
			return false
		}
	}
	return true
}

// fromImage starts a container of image on the SSH host for the run. It
// returns errNoImage when the host has no such image; on any other failure
// (a cancel included) it removes what it may have created.
func (c *DockerConn) fromImage(ctx context.Context, image, host string) (*DockerImageConn, error) {
	q := connectors.Quote(image)
	var cfg bytes.Buffer
	// JSON never holds a raw newline, so one line each.
	res, err := c.ssh.Run(ctx, connectors.Command{
		Script: c.docker + " image inspect --format " + connectors.Quote("{{json .Config.Entrypoint}}\n{{json .Config.Cmd}}") + " " + q,
		Stdout: &cfg, StreamOnly: true, MaxOutput: 1 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("docker image inspect: %w", err)
	}
	if res.ExitCode != 0 {
		return nil, errNoImage
	}
	lines := strings.Split(strings.TrimSpace(cfg.String()), "\n")
	if len(lines) != 2 || !json.Valid([]byte(lines[0])) || !json.Valid([]byte(lines[1])) {
		return nil, fmt.Errorf("docker image inspect %s printed %q", image, cfg.String())
	}
	ic := &DockerImageConn{DockerConn: c, image: image, commitTag: c.target.Data["dockerssh_commit_tag"],
		entrypoint: orEmpty(lines[0]), cmd: orEmpty(lines[1])}
	var rnd [6]byte
	rand.Read(rnd[:])
	ic.name = "star-deploy-" + hex.EncodeToString(rnd[:])

	run := c.docker + " run -d --pull never --name " + ic.name + " --label " + connectors.Quote(imageLabel+"="+image) + " --network none"
	if p := c.target.Data["dockerssh_platform"]; p != "" {
		run += " --platform " + connectors.Quote(p)
	}
	run += " --entrypoint /bin/sh " + q + " -c " + connectors.Quote(imageKeepAlive)
	id, err := c.printedID(ctx, run, "it printed no container id")
	if err != nil {
		// By name: the id is unknown when docker run was cut short.
		ic.remove()
		return nil, fmt.Errorf("start a container of image %s on %s: docker run: %w", image, host, err)
	}
	c.id = id
	return ic, nil
}

// printedID runs a docker command on the SSH host and returns the last
// word it printed, an id. A non-zero exit is an error with the last line
// of its standard error, and so is no output (the error is then none).
func (c *DockerConn) printedID(ctx context.Context, script, none string) (string, error) {
	var out bytes.Buffer
	res, err := c.ssh.Run(ctx, connectors.Command{Script: script, Stdout: &out, StreamOnly: true, MaxOutput: 1 << 16})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("exit status %d: %s", res.ExitCode, connectors.LastLine(res.Stderr))
	}
	f := strings.Fields(out.String())
	if len(f) == 0 {
		return "", errors.New(none)
	}
	return f[len(f)-1], nil
}

// orEmpty is the JSON of an image's entrypoint or command, [] for null: a
// commit change that resets the keep-alive loop's.
func orEmpty(j string) string {
	if j == "null" || j == "" {
		return "[]"
	}
	return j
}

// DockerImageConn is a container that @dockerssh started from an image for
// the run (image mode): a DockerConn that commits and removes it.
type DockerImageConn struct {
	*DockerConn
	image      string
	name       string // the container's name, star-deploy-RANDOM
	commitTag  string // "" for an untagged image
	entrypoint string // the image's, JSON
	cmd        string
	removeOnce sync.Once
}

var (
	_ connectors.Connector = (*DockerImageConn)(nil)
	_ connectors.Finisher  = (*DockerImageConn)(nil)
)

// Finish commits the container to a new image when ok (docker commit on
// the SSH host, with the image's entrypoint and command restored) and
// removes the container in every case.
func (c *DockerImageConn) Finish(ctx context.Context, ok bool) (string, error) {
	defer c.remove()
	if !ok {
		return "", nil
	}
	script := c.docker + " commit -m " + connectors.Quote("star-deploy run on "+c.image) +
		" -c " + connectors.Quote("ENTRYPOINT "+c.entrypoint) +
		" -c " + connectors.Quote("CMD "+c.cmd) + " " + c.id
	if c.commitTag != "" {
		script += " " + connectors.Quote(c.commitTag)
	}
	id, err := c.printedID(ctx, script, "docker commit printed no image id")
	if err != nil {
		return "", fmt.Errorf("commit the container of %s: %w", c.image, err)
	}
	msg := "committed image " + id
	if c.commitTag != "" {
		msg += " as " + c.commitTag
	}
	return msg, nil
}

// remove deletes the container (docker rm -f, by name), at most once,
// within removeTimeout.
func (c *DockerImageConn) remove() {
	c.removeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		defer cancel()
		c.ssh.Run(ctx, connectors.Command{Script: c.docker + " rm -f " + c.name + " >/dev/null"})
	})
}

// Close removes the container (unless Finish did) and closes the SSH
// connection.
func (c *DockerImageConn) Close() error {
	c.remove()
	return c.ssh.Close()
}
