package chroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

const (
	// killGrace is how long a cancelled command's process group has between
	// SIGTERM and SIGKILL (as connectors/local's).
	killGrace = 500 * time.Millisecond
	// pipeGrace is how long Run waits, after the shell exited, for
	// processes it left in the background to close its output.
	pipeGrace = time.Second
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
	if err := ctx.Err(); err != nil {
		return connectors.Result{}, fmt.Errorf("run on %s: %w", c.target.Name, err)
	}
	out := connectors.NewOutput(cmd)
	ex := exec.Command(c.bin, c.dir, "/bin/sh", "-c", cmd.Script)
	ex.Env = env()
	ex.Dir = "/"
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		var err error
		if stdin, err = ex.StdinPipe(); err != nil {
			return connectors.Result{}, fmt.Errorf("run on %s: %w", c.target.Name, err)
		}
	}
	ex.Stdout = out.Stdout()
	ex.Stderr = out.Stderr()
	ex.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ex.WaitDelay = pipeGrace

	start := time.Now()
	if err := ex.Start(); err != nil {
		return connectors.Result{}, fmt.Errorf("run on %s: start chroot: %w", c.target.Name, err)
	}
	pgid := ex.Process.Pid
	if stdin != nil {
		go connectors.CopyStdin(ctx, stdin, cmd.Stdin)
	}
	stop := make(chan struct{})
	watched := make(chan bool, 1) // true when ctx ended and the group was killed
	go func() {
		select {
		case <-stop:
			watched <- false
			return
		case <-ctx.Done():
		}
		select {
		case <-stop:
			watched <- false
			return
		default:
		}
		killGroup(pgid)
		watched <- true
	}()
	waitErr := ex.Wait()
	close(stop)
	cancelled := <-watched
	res := connectors.Result{Duration: time.Since(start), ExitCode: exitCode(ex.ProcessState)}
	out.Fill(&res)
	if cancelled {
		return res, fmt.Errorf("run on %s: %w", c.target.Name, ctx.Err())
	}
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil, errors.Is(waitErr, exec.ErrWaitDelay), errors.As(waitErr, &exitErr):
	default:
		return res, fmt.Errorf("run on %s: %w", c.target.Name, waitErr)
	}
	if err := out.Err(); err != nil {
		return res, fmt.Errorf("run on %s: copy live output: %w", c.target.Name, err)
	}
	// chroot(8) exits 125 when it cannot change root and 126 or 127 when
	// it cannot run the shell; its message says which.
	if res.ExitCode >= 125 && res.ExitCode <= 127 && bytes.HasPrefix(res.Stderr, []byte("chroot: ")) {
		return res, fmt.Errorf("run on %s: %s", c.target.Name, bytes.TrimSpace(res.Stderr))
	}
	return res, nil
}

// killGroup sends SIGTERM to the process group pgid, waits up to killGrace
// for it to end, then sends SIGKILL.
func killGroup(pgid int) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // gone already
	}
	for deadline := time.Now().Add(killGrace); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if !groupAlive(pgid) {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// groupAlive reports whether process group pgid has a process that has not
// exited (a zombie waiting for a late init does not count), judged by
// /proc where there is one.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	found := false
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		found = true
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 {
			continue
		}
		if pg, err := strconv.Atoi(f[2]); err == nil && pg == pgid && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return !found
}

// exitCode returns the exit status as a shell reports it: 128+N for a
// process killed by signal N.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
