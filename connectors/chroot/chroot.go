package chroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/star-deploy/star-deploy/connectors"
)

var (
	_ connectors.Factory   = Factory{}
	_ connectors.Connector = (*Conn)(nil)
)

// Factory is the connectors.Factory of the "chroot" scheme. It declares no
// data keys.
type Factory struct{}

// NewFactory returns the factory of the "chroot" scheme.
func NewFactory() connectors.Factory { return Factory{} }

// Scheme returns "chroot".
func (Factory) Scheme() string { return "chroot" }

// Doc describes the chroot connector.
func (Factory) Doc() string {
	return "A root file system on this machine, as root (pyinfra's @chroot): @chroot/DIR runs commands with `chroot DIR sh -c` and reads and writes files inside DIR, " +
		"symbolic links resolved within DIR (Linux 5.6 or later), uploads renamed into place. Nothing is mounted: bind-mount /dev, /proc or /sys into DIR yourself when commands need them."
}

// ExampleAddr is the address the generated docs show.
func (Factory) ExampleAddr() string { return "srv/rootfs" }

// Fields returns nil: the chroot connector takes no data keys.
func (Factory) Fields() []connectors.Field { return nil }

// Parse takes the directory: an absolute path, cleaned ("@chroot//srv/root"
// and "@chroot/srv/root" both name /srv/root, as in pyinfra).
func (Factory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if addr == "" {
		return connectors.Target{}, errors.New("@chroot needs a directory: @chroot/DIR, such as @chroot/srv/rootfs for /srv/rootfs")
	}
	for k := range data {
		return connectors.Target{}, fmt.Errorf("@chroot takes no data keys, got %q", k)
	}
	dir := filepath.Clean("/" + addr)
	if dir == "/" {
		return connectors.Target{}, fmt.Errorf("@chroot/%s: the directory is /, which is this machine itself: use @local", addr)
	}
	return connectors.Target{Scheme: "chroot", Name: "@chroot" + dir, Addr: dir}, nil
}

// Open checks that the directory exists and that star-deploy runs as root
// (chroot(2) needs it). It starts nothing.
func (Factory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	// The runtime puts "connect to NAME: " in front of these errors.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(t.Addr)
	if err != nil {
		return nil, fmt.Errorf("the root directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("the root %s is not a directory", t.Addr)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("chroot needs root: run star-deploy as root (for example with sudo)")
	}
	bin, err := exec.LookPath("chroot")
	if err != nil {
		for _, p := range []string{"/usr/sbin/chroot", "/sbin/chroot"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
				break
			}
		}
		if err != nil {
			return nil, errors.New("the chroot program is not installed (coreutils)")
		}
	}
	return &Conn{target: t, dir: t.Addr, bin: bin}, nil
}

// Conn is a connectors.Connector for a chroot. It holds no resources; its
// methods are safe for concurrent use without limit.
type Conn struct {
	target connectors.Target
	dir    string // the root, absolute and clean
	bin    string // the chroot program
}

// Target returns the target the Conn was opened for.
func (c *Conn) Target() connectors.Target { return c.target }

// Capabilities reports unlimited sessions, no PTY and atomic Put.
func (c *Conn) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{AtomicPut: true}
}

// Close does nothing; it is safe to call any number of times.
func (c *Conn) Close() error { return nil }

// env is the environment of commands in the chroot: a clean one, as sudo
// and sshd give (this machine's PATH or TMPDIR may not exist in the tree),
// with the terminal type and the locale passed on, as OpenSSH's SendEnv
// LANG LC_* does on Debian.
func env() []string {
	out := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/sh"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TERM=") || strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "LC_") {
			out = append(out, kv)
		}
	}
	return out
}

// Run runs `chroot DIR sh -c cmd.Script` in a new process group, with the
// environment of env; the working directory is the chroot's /. Output is
// captured in the Result and copied live to cmd.Stdout and cmd.Stderr when
// set; cmd.PTY is ignored.
//
// When ctx ends first, the whole process group gets SIGTERM and, after a
// short grace period, SIGKILL (processes in a chroot are this machine's
// processes); Run then returns an error wrapping ctx.Err().
func (c *Conn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	ex := exec.Command(c.bin, c.dir, "/bin/sh", "-c", cmd.Script)
	ex.Env = env()
	ex.Dir = "/"
	res, err := connectors.RunProcess(ctx, c.target.Name, ex, cmd)
	// chroot(8) exits 125 when it cannot change root and 126 or 127 when
	// it cannot run the shell; its message says which.
	if err == nil && res.ExitCode >= 125 && res.ExitCode <= 127 && bytes.HasPrefix(res.Stderr, []byte("chroot: ")) {
		return res, fmt.Errorf("run on %s: %s", c.target.Name, bytes.TrimSpace(res.Stderr))
	}
	return res, err
}
