package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/modules"
)

// gitStderr bounds what an error keeps of git-upload-pack's standard
// error (its head and tail).
const gitStderr = 8 << 10

// gitAccess returns o with how the CLI reaches git servers: git+ssh through
// ssh (gitSSH), git+https with the credentials of ~/.netrc, else of git's
// credential helpers. Runs, the mod commands and pull's git sources all
// fetch this way.
func gitAccess(o modules.Options, ssh modules.SSHRunner) modules.Options {
	o.SSH = ssh
	o.Credentials, o.CredentialsFrom = modules.Netrc(""), modules.NetrcHelp()
	o.Helper = modules.GitCredentials()
	return o
}

// gitIdle is how long a git server's connection stays open after its last
// command, for the next fetch or listing of the same run to reuse.
const gitIdle = 2 * time.Second

// gitSSH returns how git+ssh:// modules are fetched: git-upload-pack runs
// on the repository's host through the SSH connector, opened as the host
// @ssh/[USER@]HOST[:PORT] of a deploy is, so that ~/.ssh/config (Host,
// Match, Include, HostName, User, Port, IdentityFile, ProxyJump,
// StrictHostKeyChecking, ...), known_hosts and the agent apply as they do
// to a deploy host; nil when there is no SSH connector.
//
// Each command gets an SSH session of its own (ssh_persistent_shell=false):
// the pack streams through the session's standard input and output as
// `ssh HOST git-upload-pack PATH` streams it, with no shell in between. The
// commands to one host share its connection (a fetch after a listing, the
// sources of one server), which closes gitIdle after the last; a shared
// connection that fails is replaced once.
func (f *flags) gitSSH() modules.SSHRunner {
	reg := f.registry
	if reg == nil {
		return nil
	}
	factory, ok := reg.Lookup("ssh")
	if !ok {
		return nil
	}
	pool := &gitConns{open: map[string]*gitConn{}}
	// open connects to host; its SSH config is read only then, not for
	// each command on a shared connection.
	open := func(ctx context.Context, host string) (connectors.Connector, error) {
		t, err := reg.Target("@ssh/"+host, map[string]string{"ssh_persistent_shell": "false"})
		if err != nil {
			return nil, err
		}
		return factory.Open(ctx, t)
	}
	return func(ctx context.Context, host, command string, stdin io.Reader, stdout io.Writer) error {
		run := func(conn connectors.Connector) (connectors.Result, error) {
			return conn.Run(ctx, connectors.Command{Script: command, Stdin: stdin, Stdout: stdout, StreamOnly: true, MaxOutput: gitStderr})
		}
		conn, shared, err := pool.get(ctx, host, open)
		if err != nil {
			return err
		}
		res, err := run(conn)
		if err != nil && shared {
			// The server closed it while it was idle: once more, anew.
			pool.drop(host, conn)
			if conn, _, err = pool.get(ctx, host, open); err == nil {
				res, err = run(conn)
			}
		}
		if err != nil {
			if conn != nil {
				pool.drop(host, conn)
			}
			return err
		}
		pool.release(host)
		if res.ExitCode != 0 {
			return fmt.Errorf("%s on %s: exit status %d: %s", command, host, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
		}
		return nil
	}
}

// gitConns are the open connections of gitSSH, one per git server.
type gitConns struct {
	mu   sync.Mutex
	open map[string]*gitConn
}

type gitConn struct {
	conn  connectors.Connector
	users int         // commands running on it
	idle  *time.Timer // closes it gitIdle after the last command
}

// get returns host's open connection (shared true) or a new one from open.
func (p *gitConns) get(ctx context.Context, host string, open func(context.Context, string) (connectors.Connector, error)) (connectors.Connector, bool, error) {
	p.mu.Lock()
	if c, ok := p.open[host]; ok {
		c.users++
		if c.idle != nil {
			c.idle.Stop()
		}
		p.mu.Unlock()
		return c.conn, true, nil
	}
	p.mu.Unlock()
	conn, err := open(ctx, host)
	if err != nil {
		return nil, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.open[host]; ok {
		// Another command opened one meanwhile: use that.
		c.users++
		if c.idle != nil {
			c.idle.Stop()
		}
		go conn.Close()
		return c.conn, true, nil
	}
	p.open[host] = &gitConn{conn: conn, users: 1}
	return conn, false, nil
}

// release ends a command on name's connection; the last one starts the
// idle timer.
func (p *gitConns) release(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.open[name]
	if !ok {
		return
	}
	if c.users--; c.users == 0 {
		c.idle = time.AfterFunc(gitIdle, func() {
			p.mu.Lock()
			if cur, ok := p.open[name]; !ok || cur != c || c.users > 0 {
				p.mu.Unlock()
				return // taken again, or already gone
			}
			delete(p.open, name)
			p.mu.Unlock()
			c.conn.Close()
		})
	}
}

// drop closes conn and forgets it, if it is still name's connection.
func (p *gitConns) drop(name string, conn connectors.Connector) {
	p.mu.Lock()
	if c, ok := p.open[name]; ok && c.conn == conn {
		delete(p.open, name)
	}
	p.mu.Unlock()
	conn.Close()
}
