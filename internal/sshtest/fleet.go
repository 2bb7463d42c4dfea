package sshtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const ownerLabel = "org.star-deploy.test.owner"

// Container is a Debian container of a Fleet, running sshd (with PAM, as
// root, the Debian way) on a port published on 127.0.0.1. sshd runs under
// docker's init, so killing it (Exec "pkill", "-KILL", "sshd") takes the
// whole container down: the host vanishes mid-connection.
//
// Its users are UserNopasswd ("deploy", passwordless sudo) and UserPasswd
// ("deploy2", whose sudo asks for SudoPassword); both accept ClientKeyPath.
// root does not accept it: use Exec for root's view.
type Container struct {
	Name            string   // the docker container name, "star-deploy-test-<random>"
	Addr            string   // host:port on 127.0.0.1
	Host            string   // "127.0.0.1"
	Port            int      // the published port
	ClientKeyPath   string   // an unencrypted ed25519 private key that both users accept
	ClientPublicKey string   // its public key, authorized_keys format
	HostPublicKeys  []string // the container's own host keys (ed25519, rsa)
	Users           []string // "deploy", "deploy2"
	SudoPassword    string   // deploy2's sudo password; deploy needs none
	LoginPassword   string   // deploy2's login password (the same: sudo asks for the user's own)

	// Published maps each port of FleetOptions.Publish to the address
	// ("127.0.0.1:49153") it is published on.
	Published map[int]string
}

// FleetOptions are the options of FleetWith.
type FleetOptions struct {
	// Publish lists container TCP ports (besides 22) to publish on
	// 127.0.0.1, on ports docker picks; see Container.Published.
	Publish []int
}

// KnownHostsLine returns the known_hosts entry for the container under the
// name host ("" means c.Host): one line per host key, each ending in a
// newline.
func (c *Container) KnownHostsLine(host string) string {
	if host == "" {
		host = c.Host
	}
	return knownHosts(host, c.Port, c.HostPublicKeys)
}

// Exec runs cmd in the container as root with docker exec and returns its
// standard output. A failure, including a non-zero exit, is an error that
// carries the standard error output.
func (c *Container) Exec(t testing.TB, cmd ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	// No t.Context(): Exec also serves Cleanup functions, which run after
	// the test's context is cancelled.
	x := exec.Command("docker", append([]string{"exec", "-u", "root", c.Name}, cmd...)...)
	x.Stdout, x.Stderr = &stdout, &stderr
	if err := x.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker exec %s %q: %w: %s", c.Name, cmd, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Fleet starts n containers of the test image for the lifetime of t and
// removes them (docker rm -f) when it ends. The first call on a machine
// builds the image star-deploy-test/debian:<codename> with debootstrap
// from the machine's apt mirror, which takes a minute or two; later calls
// reuse it (see ensureImage). Containers left behind by a test process
// that died before its cleanup are removed on the next call.
//
// With -short, Fleet skips t. It also skips t (fails it under CI=true)
// when docker is not installed or the engine does not answer, or when the
// image must be built and debootstrap or root is missing.
func Fleet(t testing.TB, n int) []*Container {
	t.Helper()
	return FleetWith(t, n, FleetOptions{})
}

// FleetWith is Fleet with options.
func FleetWith(t testing.TB, n int, opts FleetOptions) []*Container {
	t.Helper()
	requireDocker(t)
	ctx := t.Context()
	reapLeaked(ctx, t)
	image := ensureImage(ctx, t)

	clientKey, clientPub := KeyPair(t, "ed25519", "")
	owner := ownerID(os.Getpid())
	fleet := make([]*Container, n)
	payloads := make([][]byte, n)
	for i := range fleet {
		c := &Container{
			Name:            "star-deploy-test-" + randomHex(6),
			Host:            "127.0.0.1",
			ClientKeyPath:   clientKey,
			ClientPublicKey: clientPub,
			Users:           []string{UserNopasswd, UserPasswd},
			SudoPassword:    SudoPassword,
			LoginPassword:   SudoPassword,
		}
		fleet[i] = c
		var err error
		payloads[i], c.HostPublicKeys, err = containerFiles(t, clientPub)
		if err != nil {
			t.Fatalf("sshtest: %v", err)
		}
	}

	// Cleanup runs after the test's context is cancelled.
	cleanupCtx := context.WithoutCancel(ctx)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range fleet {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(cleanupCtx, time.Minute)
			defer cancel()
			if t.Failed() {
				logs, _ := exec.CommandContext(ctx, "docker", "logs", c.Name).CombinedOutput()
				t.Logf("sshtest: log of container %s (%s):\n%s", c.Name, c.Addr, logs)
			}
			exec.CommandContext(ctx, "docker", "rm", "-f", "-v", c.Name).Run()
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = startContainer(ctx, c, image, owner, payloads[i], opts.Publish)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("sshtest: start fleet: %v", err)
	}
	return fleet
}

// requireDocker skips t with -short, and skips it (fails it under CI=true)
// when docker is not installed or the engine does not answer.
func requireDocker(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("sshtest: no containers with -short")
	}
	if findProgram("docker", "") == "" {
		Skip(t, "docker is not installed (apt-get install docker.io)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		Skip(t, fmt.Sprintf("the Docker engine does not answer: %v: %s", err, bytes.TrimSpace(out)))
	}
}

// Image returns the fleet's image (star-deploy-test/debian:CODENAME),
// building it as Fleet does when it is missing or stale, for tests that
// make images of their own from it: nothing is pulled. It skips t as Fleet
// does (fails it under CI=true) when docker or the engine is missing.
func Image(t testing.TB) string {
	t.Helper()
	requireDocker(t)
	return ensureImage(t.Context(), t)
}

// startContainer creates c, copies its host keys and authorized keys in,
// starts it and waits until sshd answers.
func startContainer(ctx context.Context, c *Container, image, owner string, payload []byte, publish []int) error {
	docker := func(stdin []byte, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "docker", args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("docker %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	args := []string{"create", "--name", c.Name, "--label", ownerLabel + "=" + owner,
		"--hostname", c.Name, "--init", "-p", "127.0.0.1::22"}
	for _, p := range publish {
		args = append(args, "-p", fmt.Sprintf("127.0.0.1::%d", p))
	}
	if _, err := docker(nil, append(args, image)...); err != nil {
		return err
	}
	if _, err := docker(payload, "cp", "-", c.Name+":/"); err != nil {
		return err
	}
	if _, err := docker(nil, "start", c.Name); err != nil {
		return err
	}
	out, err := docker(nil, "port", c.Name, "22/tcp")
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(out, "\n")
	host, port, err := net.SplitHostPort(strings.TrimSpace(first))
	if err != nil || host != c.Host {
		return fmt.Errorf("container %s: docker port said %q, want a port on %s (%v)", c.Name, out, c.Host, err)
	}
	c.Port, _ = strconv.Atoi(port)
	c.Addr = net.JoinHostPort(host, port)
	c.Published = map[int]string{}
	for _, p := range publish {
		out, err := docker(nil, "port", c.Name, fmt.Sprintf("%d/tcp", p))
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(out, "\n")
		addr := strings.TrimSpace(first)
		if h, _, err := net.SplitHostPort(addr); err != nil || h != c.Host {
			return fmt.Errorf("container %s: docker port %d said %q, want a port on %s", c.Name, p, out, c.Host)
		}
		c.Published[p] = addr
	}
	if err := waitBanner(c.Addr, 30*time.Second, nil); err != nil {
		logs, _ := exec.CommandContext(ctx, "docker", "logs", c.Name).CombinedOutput()
		return fmt.Errorf("container %s: %w\n%s", c.Name, err, logs)
	}
	return nil
}

// containerFiles generates host keys and returns a tar of them and of the
// users' authorized_keys, for docker cp into the container's root, and the
// host public keys.
func containerFiles(t testing.TB, clientPub string) ([]byte, []string, error) {
	t.Helper()
	dir := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, uid int, data string) error {
		return errors.Join(tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Uid: uid, Gid: uid,
			Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}), write(tw, data))
	}
	var hostPubs []string
	for _, typ := range []string{"ed25519", "rsa"} {
		key := filepath.Join(dir, "ssh_host_"+typ+"_key")
		pub := keygen(t, typ, "", key)
		priv, err := os.ReadFile(key)
		if err != nil {
			return nil, nil, err
		}
		hostPubs = append(hostPubs, stripComment(pub))
		if err := errors.Join(add("etc/ssh/ssh_host_"+typ+"_key", 0o600, 0, string(priv)),
			add("etc/ssh/ssh_host_"+typ+"_key.pub", 0o644, 0, pub+"\n")); err != nil {
			return nil, nil, err
		}
	}
	for uid, u := range map[int]string{1000: UserNopasswd, 1001: UserPasswd} {
		if err := add("home/"+u+"/.ssh/authorized_keys", 0o600, uid, clientPub+"\n"); err != nil {
			return nil, nil, err
		}
	}
	return buf.Bytes(), hostPubs, tw.Close()
}

func write(tw *tar.Writer, s string) error {
	_, err := tw.Write([]byte(s))
	return err
}

// ownerID identifies a process across PID reuse: host name, PID and start
// time. Containers carry their test process's ID in ownerLabel.
func ownerID(pid int) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, pid, procStartTime(pid))
}

// procStartTime returns field 22 (starttime) of /proc/PID/stat, or "".
func procStartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// reapLeaked removes fleet containers whose test process on this machine
// is gone (it was killed, or timed out, before its cleanup ran).
func reapLeaked(ctx context.Context, t testing.TB) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "--filter", "label="+ownerLabel,
		"--format", fmt.Sprintf("{{.Names}} {{.Label %q}}", ownerLabel)).Output()
	if err != nil {
		return
	}
	host, _ := os.Hostname()
	var dead []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, owner, _ := strings.Cut(l, " ")
		parts := strings.Split(owner, "/")
		if len(parts) != 3 || parts[0] != host {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || ownerID(pid) == owner {
			continue // still running
		}
		dead = append(dead, name)
	}
	if len(dead) > 0 {
		t.Logf("sshtest: removing containers left by dead test processes: %s", strings.Join(dead, " "))
		exec.CommandContext(ctx, "docker", append([]string{"rm", "-f", "-v"}, dead...)...).Run()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
