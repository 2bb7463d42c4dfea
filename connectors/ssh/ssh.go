package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/star-deploy/star-deploy/connectors"
)

// Options configure the SSH factory.
type Options struct {
	// Prompt asks the person at the terminal for a secret (a key passphrase,
	// a password). nil means there is no terminal: a missing secret fails at
	// once with a message naming the data key to set.
	Prompt func(question string) (string, error)
	// Warn receives warnings, e.g. that host key checking is off. nil drops them.
	Warn func(msg string)
}

// Factory is the SSH connector's factory.
type Factory struct {
	opts Options
	env  configEnv

	mu       sync.Mutex
	hostKeys map[string]*hostKeys // by known_hosts files, shared by every host of a run
	keys     keyring

	warnedInsecure bool
	handshakes     chan struct{} // bounds concurrent handshakes (maxHandshakes)
}

var _ connectors.Factory = (*Factory)(nil)

// NewFactory returns the SSH factory.
func NewFactory(opts Options) *Factory {
	return &Factory{opts: opts, env: defaultConfigEnv(), hostKeys: map[string]*hostKeys{}, handshakes: make(chan struct{}, maxHandshakes)}
}

// Scheme returns "ssh".
func (f *Factory) Scheme() string { return "ssh" }

// Doc describes the connector.
func (f *Factory) Doc() string {
	return "Native SSH (no ssh binary needed): @ssh/HOST or a bare HOST, where HOST is user@host:port or an alias of ~/.ssh/config. " +
		"One connection per host, commands on concurrent sessions, files written through the persistent shell's Perl server (or SFTP without it) and read over SFTP, with atomic renames; host keys are verified against known_hosts (new ones accepted and recorded by default)."
}

// Fields declares the ssh_* data keys.
func (f *Factory) Fields() []connectors.Field { return fields() }

// Parse resolves addr and data against the SSH config, without network I/O,
// so that bad values fail before any host is contacted.
func (f *Factory) Parse(addr string, data map[string]string) (connectors.Target, error) {
	if addr == "" {
		return connectors.Target{}, fmt.Errorf("@ssh needs a host: @ssh/HOST")
	}
	if _, err := resolveSettings(addr, data, f.env); err != nil {
		return connectors.Target{}, err
	}
	return connectors.Target{Scheme: "ssh", Name: addr, Addr: addr, Data: data}, nil
}

// Open connects to t, through its ProxyJump hops, authenticates and
// verifies the host key.
func (f *Factory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	s, err := resolveSettings(t.Addr, t.Data, f.env)
	if err != nil {
		return nil, err
	}
	c := &Conn{target: t, settings: s, sessions: make(chan struct{}, maxSessions), done: make(chan struct{}), warn: f.opts.Warn}
	if err := c.connect(ctx, f); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to %s: %w", t.Name, err)
	}
	return c, nil
}

// hostKeysFor returns the host key checker shared by every connection
// that uses the same known_hosts files.
func (f *Factory) hostKeysFor(s settings) (*hostKeys, error) {
	key := fmt.Sprint(s.KnownHostsFiles)
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.StrictHostKeyChecking == "no" && !f.warnedInsecure && f.opts.Warn != nil {
		f.warnedInsecure = true
		f.opts.Warn("WARNING: ssh_strict_host_key_checking=no: host keys are NOT verified; anyone on the network path can impersonate these hosts")
	}
	if hk, ok := f.hostKeys[key]; ok {
		return hk, nil
	}
	files := s.KnownHostsFiles
	if len(files) == 0 {
		files = []string{"/dev/null"} // UserKnownHostsFile none, allowed with strictness "no"
	}
	hk, err := newHostKeys(files)
	if err != nil {
		return nil, err
	}
	if f.opts.Warn != nil {
		for _, w := range hk.warnings() {
			f.opts.Warn(w)
		}
	}
	f.hostKeys[key] = hk
	return hk, nil
}

// maxHandshakes bounds the SSH handshakes in progress at once: a run on
// hundreds of hosts connects in waves instead of all at once, so that no
// handshake starves for CPU past its connect timeout, which only starts
// counting once its turn has come.
const maxHandshakes = 32

// maxSessions bounds the concurrent sessions of one connection, below
// OpenSSH's default MaxSessions of 10 (one is kept for kills and SFTP).
const maxSessions = 8

// Conn is a connected SSH host.
type Conn struct {
	target   connectors.Target
	settings settings

	client *ssh.Client
	jumps  []*ssh.Client // ProxyJump hops, closed after client
	agent  io.Closer     // agent socket, if any
	// forward is the agent socket forwarded to the host (ssh_forward_agent),
	// "" when forwarding is off or was refused.
	forward string
	warn    func(msg string)
	// fwdMu guards fwdAsked: whether the host has answered a forwarding
	// request. OpenSSH's sshd grants one per connection, whose socket every
	// later session gets, and refuses more; so only the first session asks.
	fwdMu    sync.Mutex
	fwdAsked bool

	sessions chan struct{} // semaphore of maxSessions
	shells   shellPool     // persistent shells (shell.go)

	sftpMu sync.Mutex
	sftp   *sftp.Client

	cleanups sync.WaitGroup // cleanUp goroutines of cancelled commands

	closeOnce sync.Once
	done      chan struct{} // closed by Close; stops keepalives
	lost      error         // set when keepalives gave up
	lostMu    sync.Mutex
	endedOnce sync.Once
	endedCh   chan struct{} // closed when the connection has ended (ended)
}

var _ connectors.Connector = (*Conn)(nil)

// Target returns the target this connection was opened for.
func (c *Conn) Target() connectors.Target { return c.target }

// Capabilities: concurrent sessions, PTYs and atomic puts.
func (c *Conn) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{MaxSessions: maxSessions, PTY: true, AtomicPut: true}
}

// connect dials (through jumps), retrying refused and reset connections
// with exponential backoff and jitter.
func (c *Conn) connect(ctx context.Context, f *Factory) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = c.dialChain(ctx, f)
		if err == nil {
			break
		}
		if attempt >= c.settings.ConnectRetries || !retryable(err) || ctx.Err() != nil {
			return err
		}
		delay := time.Duration(250<<attempt) * time.Millisecond
		delay += time.Duration(mrand.Int64N(int64(delay / 2)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	if c.settings.KeepaliveInterval > 0 {
		go c.keepalive()
	}
	return nil
}

// retryable reports connection errors worth another try: refused or reset.
func retryable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

func (c *Conn) dialChain(ctx context.Context, f *Factory) error {
	hops := c.settings.ProxyJump
	var prev *ssh.Client
	var jumps []*ssh.Client
	fail := func(err error) error {
		for i := len(jumps) - 1; i >= 0; i-- {
			jumps[i].Close()
		}
		return err
	}
	for _, hop := range hops {
		hs, err := resolveSettings(hop, hopData(c.target.Data), f.env)
		if err != nil {
			return fail(fmt.Errorf("proxy jump %s: %w", hop, err))
		}
		hs.ProxyJump = nil
		cl, closer, _, err := dialOne(ctx, f, hs, prev, c.settings.ConnectTimeout)
		if closer != nil {
			defer closer.Close()
		}
		if err != nil {
			return fail(fmt.Errorf("proxy jump %s: %w", hop, err))
		}
		jumps = append(jumps, cl)
		prev = cl
	}
	cl, closer, verified, err := dialOne(ctx, f, c.settings, prev, c.settings.ConnectTimeout)
	if err != nil {
		return fail(err)
	}
	c.client, c.jumps, c.agent = cl, jumps, closer
	if c.settings.ForwardAgent {
		c.forwardAgent(verified)
	}
	return nil
}

// forwardAgent sets up agent forwarding (ssh_forward_agent) on the new
// connection: channels the host opens to the agent reach the local agent
// socket, which each session then asks for (see begin). It refuses, with a
// warning, when the host key was not verified (ssh_strict_host_key_checking
// no and a key that known_hosts does not hold): the agent would sign for
// whoever answers. Only the target gets the agent, never a jump host.
func (c *Conn) forwardAgent(verified bool) {
	warn := func(why string) {
		if c.warn != nil {
			c.warn(fmt.Sprintf("WARNING: %s: not forwarding the ssh agent (ssh_forward_agent): %s", c.target.Name, why))
		}
	}
	if !verified {
		warn("the host key was not verified (ssh_strict_host_key_checking=no and the key is not in known_hosts), so the host may be an impostor that would use your keys")
		return
	}
	sock := agentSocket(c.settings)
	if sock == "" {
		warn("there is no agent: SSH_AUTH_SOCK is unset or IdentityAgent is none")
		return
	}
	if err := agent.ForwardToRemote(c.client, sock); err != nil {
		warn(err.Error())
		return
	}
	c.forward = sock
}

// hopData is the connector data a jump host inherits from its target: where
// the config and known hosts are and how strict to be, not the target's
// own host, port, user or key.
func hopData(data map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"ssh_config_file", "ssh_known_hosts_file", "ssh_strict_host_key_checking", "ssh_allow_agent", "ssh_connect_timeout"} {
		if v, ok := data[k]; ok {
			out[k] = v
		}
	}
	return out
}

// dialOne opens one SSH connection to s, directly or through via. The
// timeout covers the TCP connection and the whole handshake.
//
// verified reports whether the host key was verified: it matched
// known_hosts, or was recorded there under accept-new, as OpenSSH trusts
// it; not under ssh_strict_host_key_checking=no with a key that known_hosts
// does not hold.
func dialOne(ctx context.Context, f *Factory, s settings, via *ssh.Client, timeout time.Duration) (cl *ssh.Client, agentConn io.Closer, verified bool, err error) {
	hk, err := f.hostKeysFor(s)
	if err != nil {
		return nil, nil, false, err
	}
	guard := &passwordGuard{}
	auth, closer, err := f.authMethods(s, guard)
	if err != nil {
		return nil, nil, false, err
	}
	var unverified atomic.Bool // set by the callback, also on a later key exchange
	addr := net.JoinHostPort(s.Hostname, strconv.Itoa(s.Port))
	// Ask for the key types on file, not the client's favourite; with
	// strictness "no", any other type will do after them.
	algorithms := hk.algorithms(addr, s.HostKeyAlias)
	if s.StrictHostKeyChecking == "no" && len(algorithms) > 0 {
		for _, a := range ssh.SupportedAlgorithms().HostKeys {
			if !slices.Contains(algorithms, a) {
				algorithms = append(algorithms, a)
			}
		}
	}
	mismatch := func(err error) {
		guard.refuse(fmt.Errorf("no password sent to %s: %s; ssh_strict_host_key_checking=no connects anyway, "+
			"but password and keyboard-interactive authentication are off for a host that may be an impostor: "+
			"fix known_hosts or log in with a key", s.Alias, mismatchReason(err)))
		if f.opts.Warn != nil {
			f.opts.Warn(fmt.Sprintf("WARNING: %s; ssh_strict_host_key_checking=no connects anyway, "+
				"with password and keyboard-interactive authentication disabled for this host (key and agent authentication go on)", mismatchReason(err)))
		}
	}
	cfg := &ssh.ClientConfig{
		User:              s.User,
		Auth:              auth,
		AuthCallback:      guard.next,
		HostKeyCallback:   hk.callback(addr, s.HostKeyAlias, s.StrictHostKeyChecking, mismatch, func() { unverified.Store(true) }),
		HostKeyAlgorithms: algorithms,
		Timeout:           timeout,
		ClientVersion:     "SSH-2.0-star-deploy",
	}
	select {
	case f.handshakes <- struct{}{}:
		defer func() { <-f.handshakes }()
	case <-ctx.Done():
		closeIf(closer)
		return nil, nil, false, ctx.Err()
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var conn net.Conn
	if via == nil {
		var d net.Dialer
		if conn, err = d.DialContext(ctx, "tcp", addr); err == nil {
			conn = quickAck(conn)
		}
	} else {
		conn, err = via.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		closeIf(closer)
		return nil, nil, false, err
	}
	// The handshake has no context of its own: a deadline bounds it, and
	// cancelling ctx closes the connection.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() && err == nil {
		// The deadline or a cancel closed the connection just as the
		// handshake finished.
		sc.Close()
		err = os.ErrDeadlineExceeded
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = ctx.Err()
		}
	}
	if err != nil {
		conn.Close()
		closeIf(closer)
		if timeout > 0 && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)) {
			return nil, nil, false, fmt.Errorf("ssh handshake with %s timed out after %s (ssh_connect_timeout): %w", addr, timeout, context.DeadlineExceeded)
		}
		if ctx.Err() != nil {
			return nil, nil, false, ctx.Err()
		}
		return nil, nil, false, err
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), closer, !unverified.Load(), nil
}

// mismatchReason says how the key of a host contradicts known_hosts, for
// a warning: err is what strictness "yes" would have refused it with.
func mismatchReason(err error) string {
	var changed *HostKeyChangedError
	if errors.As(err, &changed) {
		return fmt.Sprintf("the host key of %s does not match known_hosts %s:%d (which has %s %s; the server offered %s): "+
			"someone could be impersonating the host, or it was reinstalled", changed.Host, changed.File, changed.Line, changed.KeyType, changed.Want, changed.Got)
	}
	return strings.TrimSuffix(err.Error(), "; refusing to connect")
}

func closeIf(c io.Closer) {
	if c != nil {
		c.Close()
	}
}

// keepalive sends OpenSSH keepalive requests; after KeepaliveCountMax
// unanswered intervals it closes the connection, which fails whatever runs.
func (c *Conn) keepalive() {
	interval, max := c.settings.KeepaliveInterval, c.settings.KeepaliveCountMax
	if max <= 0 {
		max = 3
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case <-c.done:
			return
		case err := <-reply:
			if err != nil {
				c.setLost(fmt.Errorf("connection lost: %w", err))
				return
			}
			missed = 0
		case <-time.After(interval):
			missed++
			if missed >= max {
				c.setLost(fmt.Errorf("server stopped answering: %d keepalives over %s went unanswered", missed, time.Duration(missed)*interval))
				c.client.Close()
				return
			}
		}
	}
}

func (c *Conn) setLost(err error) {
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	if c.lost == nil {
		c.lost = err
	}
}

// explain adds why the connection was lost, if keepalives found out.
func (c *Conn) explain(err error) error {
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	if c.lost != nil {
		return fmt.Errorf("%w (%v)", err, c.lost)
	}
	return err
}

// Run runs cmd.Script on a new session with `sh -c`. The command is wrapped
// so that its process group id comes first on stdout (and is stripped).
//
// Cancelling ctx returns at once, whatever the host does: opening the
// session, starting the command and waiting for it all give way to ctx.
// Stopping the remote command is left to the background (see cleanUp): the
// whole group gets SIGTERM, then SIGKILL, from a second session (sudo
// relays those to what it runs), best effort within killTimeout; a host
// that does not answer by then has its connection closed. Output that
// arrives after the cancel is dropped.
func (c *Conn) Run(ctx context.Context, cmd connectors.Command) (connectors.Result, error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return connectors.Result{}, fmt.Errorf("run on %s: %w", c.target.Name, err)
	}
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return connectors.Result{}, fmt.Errorf("run on %s: %w", c.target.Name, ctx.Err())
	}
	if c.usesShell(cmd) {
		if res, err, ran := c.runShell(ctx, cmd, start); ran {
			return res, err
		}
	}
	c.makeRoom()
	out := connectors.NewOutput(cmd)
	g := &gate{}
	pid := connectors.NewPIDWriter(g.writer(out.Stdout()))
	begun := make(chan started, 1)
	go func() { begun <- c.begin(cmd, pid, g.writer(out.Stderr())) }()
	cancelled := func() (connectors.Result, error) {
		g.close()
		c.cleanUp(begun, pid)
		res := connectors.Result{ExitCode: -1, Duration: time.Since(start)}
		out.Fill(&res)
		return res, fmt.Errorf("run on %s: %w", c.target.Name, ctx.Err())
	}
	var st started
	select {
	case st = <-begun:
	case <-ctx.Done():
		return cancelled()
	}
	if st.err != nil {
		<-c.sessions
		return connectors.Result{}, c.explain(fmt.Errorf("run on %s: %w", c.target.Name, st.err))
	}
	if st.stdin != nil {
		go connectors.CopyStdin(ctx, st.stdin, cmd.Stdin)
	}
	waited := make(chan error, 1)
	go func() { waited <- st.sess.Wait() }()
	var err error
	select {
	case err = <-waited:
		st.sess.Close()
		<-c.sessions
	case <-ctx.Done():
		begun <- st // for cleanUp, which kills and closes it
		return cancelled()
	}
	res := connectors.Result{Duration: time.Since(start)}
	out.Fill(&res)
	var exit *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
		if sig := exit.Signal(); sig != "" {
			res.ExitCode = 128 + signalNumber(sig)
		}
	default:
		return res, c.explain(fmt.Errorf("run on %s: %w", c.target.Name, err))
	}
	return res, nil
}

// started is a session with a command started on it, or why not.
type started struct {
	sess  *ssh.Session
	stdin io.WriteCloser // nil unless the command has stdin
	err   error
}

// begin opens a session and starts cmd on it. Each step waits for the
// host, so Run calls it in a goroutine.
func (c *Conn) begin(cmd connectors.Command, stdout, stderr io.Writer) started {
	sess, err := c.newSession(context.Background()) // Run waits for ctx
	if err != nil {
		return started{err: fmt.Errorf("open session: %w", err)}
	}
	sess.Stdout, sess.Stderr = stdout, stderr
	// Stdin is copied by hand: a command that exits without reading all
	// of it closes the channel, and that write error is not the command's.
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		if stdin, err = sess.StdinPipe(); err != nil {
			sess.Close()
			return started{err: err}
		}
	}
	if c.forward != "" {
		c.requestForwarding(sess)
	}
	if cmd.PTY {
		if err := sess.RequestPty("xterm", 40, 120, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
			sess.Close()
			return started{err: fmt.Errorf("request pty: %w", err)}
		}
	}
	if err := sess.Start(connectors.WithPID(cmd.Script)); err != nil {
		sess.Close()
		return started{err: err}
	}
	return started{sess: sess, stdin: stdin}
}

// requestForwarding asks the host, on the connection's first session, to
// forward the agent (see fwdMu); later sessions wait for that answer, so
// that they start after the host's agent socket exists. A refusal (sshd's
// AllowAgentForwarding no) is warned about once; commands run without it.
func (c *Conn) requestForwarding(sess *ssh.Session) {
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	if c.fwdAsked {
		return
	}
	c.fwdAsked = true
	if err := agent.RequestAgentForwarding(sess); err != nil && c.warn != nil {
		c.warn(fmt.Sprintf("WARNING: %s refused agent forwarding (ssh_forward_agent): %v; commands run without the agent", c.target.Name, err))
	}
}

// killTimeout bounds the cleanup of a cancelled command: starting its
// session (when the cancel came first) and killing its process group. A
// host that has not answered by then has its connection closed, which
// ends whatever waits on it; the command may then still run there.
const killTimeout = 3 * time.Second

// cleanUp finishes a cancelled command in the background: it waits for
// begin's result on begun, kills the command's process group, closes the
// session and frees its slot. Close waits for it.
func (c *Conn) cleanUp(begun <-chan started, pid *connectors.PIDWriter) {
	c.cleanups.Add(1)
	go func() {
		defer c.cleanups.Done()
		defer func() { <-c.sessions }()
		deadline := time.NewTimer(killTimeout)
		defer deadline.Stop()
		var st started
		select {
		case st = <-begun:
		case <-deadline.C:
			c.abort(fmt.Errorf("the host did not open a session within %s", killTimeout))
			st = <-begun // fails at once on the closed connection
		}
		if st.err != nil {
			return
		}
		defer st.sess.Close()
		c.kill(pid.PID, deadline.C)
	}()
}

// kill stops the process group of a cancelled command from a new session,
// unless deadline fires first: then it closes the connection.
func (c *Conn) kill(pidOf func(wait time.Duration) (int, bool), deadline <-chan time.Time) {
	p, ok := pidOf(time.Second)
	if !ok {
		return
	}
	done := make(chan error, 1)
	go func() {
		sess, err := c.newSession(context.Background()) // bounded by deadline
		if err != nil {
			done <- err
			return
		}
		defer sess.Close()
		done <- sess.Run(connectors.KillScript(p))
	}()
	select {
	case <-done:
	case <-deadline:
		c.abort(fmt.Errorf("the host did not answer within %s when asked to stop a cancelled command, which may still run", killTimeout))
	}
}

// abort closes the connection at once, without waiting for the host, and
// records why: whatever waits on the host fails.
func (c *Conn) abort(why error) {
	c.setLost(why)
	c.client.Close()
}

// answerGrace is how long a cancelled transfer may take to stop before the
// connection is closed under it: on a healthy connection it stops within a
// round trip.
const answerGrace = 2 * time.Second

// watch closes the connection when ctx is done and the caller has not
// called the returned stop within answerGrace, so that a cancelled Put or
// Get returns even when the host has stalled.
func (c *Conn) watch(ctx context.Context, what string) (stop func()) {
	stopped := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		select {
		case <-stopped:
		case <-time.After(answerGrace):
			c.abort(fmt.Errorf("the host did not answer within %s when %s was cancelled", answerGrace, what))
		}
	})
	return func() {
		stopAfter()
		close(stopped)
	}
}

// gate passes writes on to the writers it made until it is closed, then
// drops them: the late output of a cancelled command reaches neither its
// result nor the caller's writers.
type gate struct {
	mu     sync.Mutex
	closed bool
}

func (g *gate) writer(w io.Writer) io.Writer { return gated{g, w} }

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

type gated struct {
	g *gate
	w io.Writer
}

func (w gated) Write(p []byte) (int, error) {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	if w.g.closed {
		return len(p), nil
	}
	return w.w.Write(p)
}

// signalNumber maps SSH signal names to Linux numbers.
func signalNumber(name string) int {
	switch ssh.Signal(name) {
	case ssh.SIGHUP:
		return 1
	case ssh.SIGINT:
		return 2
	case ssh.SIGQUIT:
		return 3
	case ssh.SIGILL:
		return 4
	case ssh.SIGABRT:
		return 6
	case ssh.SIGFPE:
		return 8
	case ssh.SIGKILL:
		return 9
	case ssh.SIGUSR1:
		return 10
	case ssh.SIGSEGV:
		return 11
	case ssh.SIGUSR2:
		return 12
	case ssh.SIGPIPE:
		return 13
	case ssh.SIGALRM:
		return 14
	case ssh.SIGTERM:
		return 15
	}
	return 0
}

// sftpHint adds what to do to the error of a server that refuses the
// SFTP subsystem, which put, get and template need.
func sftpHint(err error) error {
	if strings.Contains(err.Error(), "subsystem request failed") {
		return fmt.Errorf("%w (the server offers no SFTP subsystem: add `Subsystem sftp internal-sftp` to its sshd_config)", err)
	}
	return err
}

// files returns the connection's SFTP client, starting it on first use.
func (c *Conn) files() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	cl, err := sftp.NewClient(c.client, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
	if err != nil {
		return nil, c.explain(fmt.Errorf("start sftp on %s: %w", c.target.Name, sftpHint(err)))
	}
	c.sftp = cl
	return cl, nil
}

// startFileOp begins op ("put" or "get") of the file path, on or from
// (prep) the host: it returns the SFTP client, how to report an error (one
// after a cancel as the cancel), and stop, which ends the watch for a
// stalled host that startFileOp starts; the caller defers it.
func (c *Conn) startFileOp(ctx context.Context, op, path, prep string) (sc *sftp.Client, wrap func(error) error, stop func(), err error) {
	wrap = func(err error) error {
		if ctx.Err() != nil {
			err = ctx.Err() // what failed after a cancel is the cancel's doing
		}
		return c.explain(fmt.Errorf("%s %s %s %s: %w", op, path, prep, c.target.Name, err))
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, wrap(err)
	}
	stop = c.watch(ctx, op+" "+path)
	if sc, err = c.files(); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return sc, wrap, stop, nil
}

// Put streams src to a new temporary file in dst's directory
// (connectors.TempName; 0600 before any byte is written), gives it, where
// allowed, the old file's owner, then sets mode and renames it over dst
// with posix-rename. A temporary file that a lost connection leaves behind
// is removed by a later run (see connectors.SweepScript).
//
// Where the host runs the Perl server, the file goes to it instead
// (putServed), in the same steps, and no sftp-server is started; what the
// server cannot begin is done over SFTP, whose errors are the ones
// reported.
func (c *Conn) Put(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) (err error) {
	var done bool
	if done, src, err = c.putServed(ctx, dst, src, mode); done || err != nil {
		if err != nil {
			err = c.explain(fmt.Errorf("put %s on %s: %w", dst, c.target.Name, err))
		}
		return err
	}
	return c.putSFTP(ctx, dst, src, mode)
}

// putSFTP is Put over SFTP.
func (c *Conn) putSFTP(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) (err error) {
	sc, wrap, unwatch, err := c.startFileOp(ctx, "put", dst, "on")
	if err != nil {
		return err
	}
	defer unwatch()
	tmp := connectors.TempName(ctx, dst)
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return wrap(fmt.Errorf("directory %s: %w", path.Dir(dst), fs.ErrNotExist))
		}
		return wrap(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			sc.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return wrap(err)
	}
	if _, err = f.ReadFromWithConcurrency(connectors.ContextReader(ctx, src), 0); err != nil {
		return wrap(err)
	}
	if old, statErr := sc.Lstat(dst); statErr == nil && old.Mode().IsRegular() {
		if st, ok := old.Sys().(*sftp.FileStat); ok {
			_ = f.Chown(int(st.UID), int(st.GID)) // keeps the owner where permitted
		}
	}
	if err = f.Chmod(mode); err != nil { // after the chown, which may clear set-id bits
		return wrap(err)
	}
	if err = f.Close(); err != nil {
		return wrap(err)
	}
	if err = sc.PosixRename(tmp, dst); err != nil {
		return wrap(err)
	}
	return nil
}

// Get streams the file src into dst.
func (c *Conn) Get(ctx context.Context, src string, dst io.Writer) error {
	sc, wrap, unwatch, err := c.startFileOp(ctx, "get", src, "from")
	if err != nil {
		return err
	}
	defer unwatch()
	f, err := sc.Open(src)
	if err != nil {
		return wrap(err)
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	if _, err := f.WriteTo(dst); err != nil {
		return wrap(err)
	}
	return nil
}

// Close waits for the cleanup of cancelled commands (each bounded by
// killTimeout), lets the idle persistent shells exit (within
// shellCloseGrace), then closes the connection, SFTP and the jump hosts. It
// never waits for a host that does not answer: the connection goes first,
// since a graceful SFTP close would wait for the host.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		waited := make(chan struct{})
		go func() { c.cleanups.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(killTimeout + time.Second): // a backstop: each cleanup has its own deadline
		}
		c.closeShells()
		close(c.done)
		if c.client != nil {
			c.client.Close()
		}
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		for i := len(c.jumps) - 1; i >= 0; i-- {
			c.jumps[i].Close()
		}
		closeIf(c.agent)
	})
	return nil
}
