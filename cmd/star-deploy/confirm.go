package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/star-deploy/star-deploy/connectors"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// --confirm runs in two passes: a dry run that shows what would change on
// each host, a question on the terminal, then the real run. Unlike pyinfra 3,
// which asks by default, asking is opt-in: a plain run stays one pass (half
// the connections and round trips), and scripts and CI that call
// star-deploy today keep working without -y. A config file with
// confirm = True makes it the default for a project.

// checkConfirm refuses --confirm when it cannot ask: with stdin not a
// terminal, or with --json, whose stdout is for programs. It runs before
// any host is touched. It reports whether the run asks.
func checkConfirm(f *flags, args []string) (bool, error) {
	if !f.Confirm || f.Yes || f.Dry {
		return false, nil // -y answers yes; --dry changes nothing to confirm
	}
	if len(args) > 0 && (args[0] == "fact" || args[0] == "inventory") {
		return false, nil // they change nothing
	}
	if !stdinTerminal() {
		return false, usagef("--confirm asks on the terminal before changing the hosts, and stdin is not a terminal; pass -y (--yes) to apply without asking, or --dry to only see what would change")
	}
	if f.JSON {
		return false, usagef("--confirm shows the changes and asks on the terminal, which --json output cannot carry; pass -y (--yes) to apply without asking, or --no-confirm")
	}
	return true, nil
}

// stdinTerminal reports whether stdin is a terminal, the one --confirm
// reads its answer from.
func stdinTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// confirmRun does the dry run, and when it would change something and
// succeeded on every host, asks whether to apply it and does the real run.
// dry and real run the two passes and render them; their connections are
// pool's.
func confirmRun(ctx context.Context, pool *connPool, stderr io.Writer, dry, real func() *sdrt.Report) *sdrt.Report {
	defer pool.closeAll()
	rep := dry()
	if rep.Interrupted || ctx.Err() != nil {
		return rep
	}
	if n := rep.Failed(); n > 0 {
		fmt.Fprintf(stderr, "star-deploy: the dry run failed on %d of %d %s; nothing was changed\n", n, len(rep.Hosts), plural(len(rep.Hosts), "host"))
		return rep
	}
	changing := 0
	for _, h := range rep.Hosts {
		if h.Counts.Changed > 0 {
			changing++
		}
	}
	if changing == 0 {
		fmt.Fprintf(stderr, "star-deploy: nothing to change on %d %s; not asking, not applying\n", len(rep.Hosts), plural(len(rep.Hosts), "host"))
		return rep
	}
	yes, err := askYesNo(ctx, os.Stdin, stderr, fmt.Sprintf("Apply these changes to %d %s? [y/N] ", changing, plural(changing, "host")))
	if err != nil {
		// Interrupted at the question (or stdin closed): nothing changed.
		fmt.Fprintln(stderr)
		if ctx.Err() == nil {
			fmt.Fprintf(stderr, "star-deploy: no answer (%v); nothing was changed\n", err)
		}
		rep.Interrupted = ctx.Err() != nil
		return rep
	}
	if !yes {
		fmt.Fprintln(stderr, "star-deploy: not applied; nothing was changed")
		return rep
	}
	pool.reuse()
	return real()
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// askYesNo writes question to w and reads one line from in: y or yes (any
// case) is yes, anything else, an empty line included, is no. A cancelled
// ctx (Ctrl-C) ends the question at once with ctx's error.
func askYesNo(ctx context.Context, in io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	type answer struct {
		line string
		err  error
	}
	read := make(chan answer, 1)
	go func() {
		// Left behind on a cancel; the process is about to exit.
		line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
		if err == io.EOF && line != "" {
			err = nil
		}
		read <- answer{line, err}
	}()
	select {
	case a := <-read:
		if a.err != nil {
			return false, a.err
		}
		switch strings.ToLower(strings.TrimSpace(a.line)) {
		case "y", "yes":
			return true, nil
		}
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// connPool carries the connections of the dry run of --confirm over to the
// real run, so that the real run does not connect (and ask for passphrases)
// again. While it keeps, a connection's Close parks it; after reuse, the
// real run's Open takes the parked connection of its host, once, if it
// still answers (a host may have dropped it while the question waited), and
// otherwise connects anew. Connections with something to finish
// (connectors.Finisher: a container started from an image) are never kept:
// the dry run finishes them.
type connPool struct {
	mu   sync.Mutex
	keep bool
	idle map[string]connectors.Connector
}

func newConnPool() *connPool {
	return &connPool{keep: true, idle: map[string]connectors.Connector{}}
}

// registry returns reg with every factory's Open going through the pool.
func (p *connPool) registry(reg *connectors.Registry) *connectors.Registry {
	out := &connectors.Registry{}
	for _, f := range reg.Factories() {
		if err := out.Register(pooledFactory{Factory: f, pool: p}); err != nil {
			panic("internal error: " + err.Error())
		}
	}
	return out
}

// reuse ends keeping: from now on Close closes, and Open takes what was
// kept.
func (p *connPool) reuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keep = false
}

// closeAll closes the connections no run took.
func (p *connPool) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string]connectors.Connector{}
	p.keep = false
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

func poolKey(t connectors.Target) string { return t.Scheme + "\x00" + t.Name + "\x00" + t.Addr }

// take removes and returns the parked connection of t, if there is one,
// and whether the pool still keeps.
func (p *connPool) take(t connectors.Target) (connectors.Connector, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := poolKey(t)
	c := p.idle[k]
	delete(p.idle, k)
	return c, p.keep
}

// park keeps c as the connection of the target with key k, or closes it
// when the pool no longer keeps.
func (p *connPool) park(k string, c connectors.Connector) error {
	p.mu.Lock()
	if p.keep {
		old := p.idle[k]
		p.idle[k] = c
		p.mu.Unlock()
		if old != nil && old != c {
			old.Close()
		}
		return nil
	}
	p.mu.Unlock()
	return c.Close()
}

// aliveTimeout bounds the check that a parked connection still answers.
const aliveTimeout = 10 * time.Second

type pooledFactory struct {
	connectors.Factory
	pool *connPool
}

func (f pooledFactory) Open(ctx context.Context, t connectors.Target) (connectors.Connector, error) {
	c, keep := f.pool.take(t)
	if c != nil && !alive(ctx, c) {
		c.Close()
		c = nil
	}
	if c == nil {
		var err error
		if c, err = f.Factory.Open(ctx, t); err != nil {
			return nil, err
		}
	}
	if _, finishes := c.(connectors.Finisher); keep && !finishes {
		return &parkedConn{Connector: c, pool: f.pool, key: poolKey(t)}, nil
	}
	return c, nil
}

// alive reports whether c still runs a command.
func alive(ctx context.Context, c connectors.Connector) bool {
	ctx, cancel := context.WithTimeout(ctx, aliveTimeout)
	defer cancel()
	res, err := c.Run(ctx, connectors.Command{Script: "true"})
	return err == nil && res.ExitCode == 0
}

// parkedConn is a connection of the dry run: closing it parks it.
type parkedConn struct {
	connectors.Connector
	pool *connPool
	key  string // of the target it was opened for
	once sync.Once
}

func (c *parkedConn) Close() error {
	var err error
	c.once.Do(func() { err = c.pool.park(c.key, c.Connector) })
	return err
}

func (c *parkedConn) Unwrap() connectors.Connector { return c.Connector }
