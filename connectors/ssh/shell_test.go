package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// requirePersistent fails t unless c ran its commands on persistent
// shells, with the server its data asked for (every test host has perl).
func requirePersistent(t *testing.T, c connectors.Connector) {
	t.Helper()
	if m, want := c.(*Conn).ShellMode(), wantMode(c); m != want {
		t.Fatalf("shell mode %q, want %q", m, want)
	}
}

func wantMode(c connectors.Connector) string {
	if c.(*Conn).settings.ShellPerl {
		return "persistent (perl)"
	}
	return "persistent (sh)"
}

// eachServer runs fn on each command server of the persistent shells:
// server is the data that chooses it.
func eachServer(t *testing.T, fn func(t *testing.T, server map[string]string)) {
	for _, perl := range []string{"true", "false"} {
		name := map[string]string{"true": "perl", "false": "sh"}[perl]
		t.Run(name, func(t *testing.T) { fn(t, map[string]string{"ssh_shell_perl": perl}) })
	}
}

// shellCounts returns how many shells c has live and idle.
func shellCounts(c connectors.Connector) (live, idle int) {
	p := &c.(*Conn).shells
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live, len(p.idle)
}

// checkNotSession is registered by the conformance tests' open: a subtest
// that ran a command must have run it on a persistent shell.
func checkNotSession(t *testing.T, c connectors.Connector) {
	t.Cleanup(func() {
		if m, want := c.(*Conn).ShellMode(), wantMode(c); m != want && m != "unknown" {
			t.Errorf("shell mode %q, want %q", m, want)
		}
	})
}

// The suite with ssh_persistent_shell=false: the session per command.
func TestConformanceSessionPerCommand(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	conntest.Suite(t, func(t *testing.T) (connectors.Connector, string) {
		c := mustOpen(t, f, srv, map[string]string{"ssh_persistent_shell": "false"})
		if m := c.(*Conn).ShellMode(); !strings.HasPrefix(m, "session") {
			t.Errorf("shell mode %q, want session", m)
		}
		return c, t.TempDir()
	})
}

func TestPersistentShellDataKey(t *testing.T) {
	f, _ := testFactory(t)
	for _, key := range []string{"ssh_persistent_shell", "ssh_shell_perl"} {
		if _, err := f.Parse("127.0.0.1", map[string]string{key: "maybe"}); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("bad value: err = %v, want one naming %s", err, key)
		}
	}
}

// A host whose shell lacks a tool the protocol needs falls back to a
// session per command, probed once, and every command still runs.
func TestShellProbeFallback(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	old := probeTools
	probeTools = append(append([]string(nil), old...), "no-such-tool-xyzzy")
	defer func() { probeTools = old }()
	c := mustOpen(t, f, srv, map[string]string{"ssh_shell_perl": "false"})
	for i := range 3 {
		res, err := c.Run(t.Context(), connectors.Command{Script: fmt.Sprintf("echo %d; exit %d", i, i)})
		if err != nil || string(res.Stdout) != fmt.Sprintf("%d\n", i) || res.ExitCode != i {
			t.Fatalf("run %d: %v, exit %d, stdout %q", i, err, res.ExitCode, res.Stdout)
		}
	}
	if m := c.(*Conn).ShellMode(); !strings.Contains(m, "setsid or mkfifo") {
		t.Errorf("shell mode %q, want session with the reason", m)
	}
	if n, _ := shellCounts(c); n != 0 {
		t.Errorf("%d shells live after a failed probe, want 0", n)
	}
}

func TestFrameScannerSplits(t *testing.T) {
	tok := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	payload := []byte("a\x00b" + string(other) + "e0 0\n" + string(tok[:31]) + "x\n" + "01234" + "no newline")
	stream := append(append(bytes.Clone(payload), tok...), "s42\n"...)
	stream = append(stream, "more"...)
	stream = append(append(stream, tok...), "e7 0\n"...)
	stream = append(stream, "after the end"...)
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var f frameScanner
		var got []byte
		var recs []string
		for p := stream; len(p) > 0; {
			n := 1 + r.IntN(min(len(p), 40))
			if err := f.feed(p[:n], tok, true, func(b []byte) { got = append(got, b...) }, func(rec []byte) bool {
				recs = append(recs, string(rec))
				return rec[0] == 'e'
			}); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if want := string(payload) + "more"; string(got) != want || fmt.Sprint(recs) != "[s42 e7 0]" {
			t.Fatalf("got %q and records %q, want %q and [s42 e7 0]", got, recs, want)
		}
	}
}

func TestStdinCode(t *testing.T) {
	for _, in := range []string{"-n", "%s%d\\n\\", "it's", "\x00\x01\xff\n", "plain text 123"} {
		code := string(shStdinCode([]byte(in)))
		if strings.Count(code, "'") != 2 || strings.Contains(code, "\x00") {
			t.Errorf("%q: code %q", in, code)
		}
	}
}

// Output that no framing may confuse: random bytes with NULs, a previous
// command's token followed by a fake record, no trailing newline, and more
// output than MaxOutput keeps.
func TestShellFramingTorture(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, _ := testFactory(t)
		c := mustOpen(t, f, srv, server)
		var mu sync.Mutex
		var tokens []string
		orig := newToken
		newToken = func() []byte {
			tok := orig()
			mu.Lock()
			tokens = append(tokens, string(tok))
			mu.Unlock()
			return tok
		}
		defer func() { newToken = orig }()

		dir := t.TempDir()
		random := make([]byte, 1<<20)
		r := rand.New(rand.NewPCG(3, 4))
		for i := range random {
			random[i] = byte(r.UintN(256))
		}
		file := filepath.Join(dir, "random")
		if err := c.Put(t.Context(), file, bytes.NewReader(random), 0o644); err != nil {
			t.Fatal(err)
		}
		res := run(t, c, "cat "+file+"; cat "+file+" >&2")
		if !bytes.Equal(res.Stdout, random) || !bytes.Equal(res.Stderr, random) {
			t.Errorf("random bytes: got %d and %d bytes, want %d each, intact", len(res.Stdout), len(res.Stderr), len(random))
		}
		res, err := c.Run(t.Context(), connectors.Command{Script: "cat", Stdin: bytes.NewReader(random)})
		if err != nil || !bytes.Equal(res.Stdout, random) {
			t.Errorf("random stdin through cat: %v, got %d bytes", err, len(res.Stdout))
		}

		mu.Lock()
		prev := tokens[len(tokens)-1]
		mu.Unlock()
		fake := prev + "e0 0\n" + prev + "s1\n" + prev + "f\n" + prev
		res = run(t, c, fmt.Sprintf("printf '%%s' '%s'; printf '%%s' '%s' >&2; exit 5", fake, fake))
		if string(res.Stdout) != fake || string(res.Stderr) != fake || res.ExitCode != 5 {
			t.Errorf("fake records: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
		}
		res = run(t, c, "printf 'no newline'; printf 'err no newline' >&2")
		if string(res.Stdout) != "no newline" || string(res.Stderr) != "err no newline" {
			t.Errorf("no newline: stdout %q, stderr %q", res.Stdout, res.Stderr)
		}

		const size, limit = 10 << 20, 1 << 20
		var live conntest.SyncBuffer
		res, err = c.Run(t.Context(), connectors.Command{Script: fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", size), Stdout: &live, MaxOutput: limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Stdout) != limit || res.StdoutDropped != size-limit || len(live.Bytes()) != size || bytes.Count(live.Bytes(), []byte("x")) != size {
			t.Errorf("10 MiB: kept %d, dropped %d, live %d", len(res.Stdout), res.StdoutDropped, len(live.Bytes()))
		}
		requirePersistent(t, c)
		if _, n := shellCounts(c); n != 1 {
			t.Errorf("%d idle shells after sequential commands, want 1", n)
		}
	})
}

// Cancelling kills the whole process group, grandchildren included, also
// one whose parent has exited.
func TestShellCancelKillsGrandchildren(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, _ := testFactory(t)
		c := mustOpen(t, f, srv, server)
		dir := t.TempDir()
		script := fmt.Sprintf(`(sleep 300 & echo $! > %[1]s/orphan)
sh -c 'sleep 300 & echo $! > %[1]s/grandchild; wait' &
while [ ! -s %[1]s/grandchild ]; do sleep 0.05; done
echo ready
wait`, dir)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ready := &readyWriter{marker: "ready", fn: cancel}
		_, err := c.Run(ctx, connectors.Command{Script: script, Stdout: ready})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		for _, name := range []string{"orphan", "grandchild"} {
			requireGonePID(t, c, strings.TrimSpace(string(run(t, c, "cat "+dir+"/"+name).Stdout)), name+" after the cancel")
		}
		requirePersistent(t, c)
	})
}

// requireGonePID fails t unless the process pid (what) is gone within
// five seconds, as c sees it; one still there is killed.
func requireGonePID(t *testing.T, c connectors.Connector, pid, what string) {
	t.Helper()
	for range 100 {
		if run(t, c, "kill -0 "+pid+" 2>/dev/null").ExitCode != 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%s (pid %s) still runs", what, pid)
	run(t, c, "kill -9 "+pid)
}

type readyWriter struct {
	mu     sync.Mutex
	seen   []byte
	marker string
	fn     func()
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, p...)
	if w.fn != nil && bytes.Contains(w.seen, []byte(w.marker)) {
		w.fn()
		w.fn = nil
	}
	return len(p), nil
}

// Concurrent commands each get their own output and status, and a long
// command does not hold the quick ones up.
func TestShellConcurrent(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, _ := testFactory(t)
		c := mustOpen(t, f, srv, server)
		dir := t.TempDir()
		long := make(chan error, 1)
		go func() {
			_, err := c.Run(t.Context(), connectors.Command{Script: fmt.Sprintf("while [ ! -e %s/quick-done ]; do sleep 0.05; done", dir)})
			long <- err
		}()
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				for j := range 5 {
					want := fmt.Sprintf("%d-%d", i, j)
					res, err := c.Run(t.Context(), connectors.Command{Script: fmt.Sprintf("echo %s; echo err%s >&2; exit %d", want, want, (i+j)%7)})
					if err != nil || string(res.Stdout) != want+"\n" || string(res.Stderr) != "err"+want+"\n" || res.ExitCode != (i+j)%7 {
						t.Errorf("run %s: %v, exit %d, stdout %q, stderr %q", want, err, res.ExitCode, res.Stdout, res.Stderr)
					}
				}
			})
		}
		wg.Wait()
		run(t, c, "touch "+dir+"/quick-done")
		select {
		case err := <-long:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the long command did not end")
		}
		requirePersistent(t, c)
		if n, _ := shellCounts(c); n > maxShells {
			t.Errorf("%d shells, want at most %d", n, maxShells)
		}
	})
}

// Under OpenSSH's default MaxSessions of 10, persistent shells, commands
// on sessions of their own (PTY ones), SFTP and a kill share the sessions
// of a connection, in both modes: a session sshd refuses for a moment
// (one closed just before may not be freed there yet) is asked for again.
func TestShellSessionLimit(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{MaxSessions: 10})
	for _, mode := range []string{"perl", "sh", "session"} {
		t.Run(mode, func(t *testing.T) {
			f, _ := testFactory(t)
			c := mustOpen(t, f, srv, map[string]string{"ssh_persistent_shell": strconv.FormatBool(mode != "session"), "ssh_shell_perl": strconv.FormatBool(mode == "perl")})
			dir := t.TempDir()
			if err := c.Put(t.Context(), dir+"/f", strings.NewReader("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				var wg sync.WaitGroup
				for i := range maxSessions {
					wg.Go(func() {
						cmd := connectors.Command{Script: fmt.Sprintf("sleep 0.2; echo %d", i), PTY: (i+round)%3 == 0}
						res, err := c.Run(t.Context(), cmd)
						if err != nil || !strings.HasPrefix(string(res.Stdout), strconv.Itoa(i)) {
							t.Errorf("round %d, run %d (pty %v): %v, stdout %q", round, i, cmd.PTY, err, res.Stdout)
						}
					})
				}
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
					defer cancel()
					if _, err := c.Run(ctx, connectors.Command{Script: "sleep 30"}); !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("round %d: the cancelled run: %v", round, err)
					}
				})
				wg.Wait()
			}
			if err := c.Put(t.Context(), dir+"/g", strings.NewReader("y"), 0o644); err != nil {
				t.Error(err)
			}
		})
	}
}

// A host whose perl cannot run the server (here one that dies at start)
// gets the sh server, probed once per connection, and every command runs.
func TestShellPerlFallsBack(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	old := perlServer
	perlServer = "die 'no server here';\n"
	defer func() { perlServer = old }()
	c := mustOpen(t, f, srv, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			res, err := c.Run(t.Context(), connectors.Command{Script: fmt.Sprintf("echo %d; exit %d", i, i)})
			if err != nil || string(res.Stdout) != fmt.Sprintf("%d\n", i) || res.ExitCode != i {
				t.Errorf("run %d: %v, exit %d, stdout %q", i, err, res.ExitCode, res.Stdout)
			}
		})
	}
	wg.Wait()
	if m := c.(*Conn).ShellMode(); m != "persistent (sh)" {
		t.Errorf("shell mode %q, want persistent (sh)", m)
	}
}

// cmdline prints the argv of the shell that runs it.
const cmdline = `tr '\0' ' ' </proc/$$/cmdline`

// spareArgv is a spare's argv as cmdline prints it.
const spareArgv = "sh -c . /dev/stdin sh "

// waitSpare runs commands until one runs on a spare: the first commands
// of a shell may come before its probe spare has answered.
func waitSpare(t *testing.T, c connectors.Connector) {
	t.Helper()
	for range 200 {
		if string(run(t, c, cmdline).Stdout) == spareArgv {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no command ran on a spare")
}

// On the Perl server a command without input runs on a spare, an sh
// started before the command came: it has the session's stdout and
// stderr, /dev/null for stdin, a process group of its own, its exit
// status and the script's line numbers. A command with input, or too long
// for the spare's pipe, is started as `sh -c SCRIPT`, as is every command
// with ssh_shell_spares=false.
func TestShellPerlSpare(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, nil)
	waitSpare(t, c)
	for i := range 3 {
		res := run(t, c, cmdline+`; echo; readlink /proc/$$/fd/0; cut -d' ' -f5 /proc/$$/stat; echo $$; echo err >&2; exit 7`)
		lines := strings.Split(string(res.Stdout), "\n")
		if len(lines) != 5 || lines[0] != spareArgv || lines[1] != "/dev/null" || lines[2] != lines[3] || res.ExitCode != 7 || string(res.Stderr) != "err\n" {
			t.Fatalf("command %d on a spare: exit %d, stdout %q, stderr %q; want its argv, /dev/null, its pid as its group, exit 7", i, res.ExitCode, res.Stdout, res.Stderr)
		}
	}
	res := run(t, c, "true\nno-such-command-x")
	if res.ExitCode != 127 || !strings.Contains(string(res.Stderr), ": 2: ") || !strings.Contains(string(res.Stderr), "no-such-command-x: not found") {
		t.Errorf("a missing command on line 2: exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	in, err := c.Run(t.Context(), connectors.Command{Script: cmdline + "; cat", Stdin: strings.NewReader("input")})
	if err != nil || string(in.Stdout) != "sh -c "+cmdline+"; cat input" {
		t.Errorf("a command with input: %v, stdout %q, want it started as sh -c", err, in.Stdout)
	}
	long := ": " + strings.Repeat("x", 4000) + "; " + cmdline
	if got := string(run(t, c, long).Stdout); got != "sh -c "+long+" " {
		t.Errorf("a command of 4,000 bytes: stdout %.40q..., want it started as sh -c", got)
	}
	waitSpare(t, c)
	requirePersistent(t, c)

	off := mustOpen(t, f, srv, map[string]string{"ssh_shell_spares": "false"})
	for i := range 5 {
		if got := string(run(t, off, cmdline).Stdout); got != "sh -c "+cmdline+" " {
			t.Fatalf("command %d with ssh_shell_spares=false: argv %q, want sh -c", i, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A host whose sh cannot source a pipe (here an sh in PATH that reads the
// script and exits 0 when asked to) fails the server's probe, and every command is started
// as `sh -c SCRIPT`.
func TestShellPerlSpareProbe(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "sh"), []byte("#!/bin/sh\n[ \"$2\" = '. /dev/stdin' ] && { cat >/dev/null; exit 0; }\nexec /bin/sh \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"SetEnv PATH=" + bin + ":/usr/bin:/bin"}})
	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, nil)
	for i := range 20 {
		res := run(t, c, fmt.Sprintf("echo %d; %s", i, cmdline))
		if want := fmt.Sprintf("%d\n/bin/sh -c echo %d; %s ", i, i, cmdline); string(res.Stdout) != want {
			t.Fatalf("command %d: stdout %q, want %q", i, res.Stdout, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if m := c.(*Conn).ShellMode(); m != "persistent (perl)" {
		t.Errorf("shell mode %q, want persistent (perl)", m)
	}
}

// The shell reads the whole boot code before it execs perl, whatever the
// server's length: here padded by a comment in steps of 256 bytes across
// the 8 KiB of the shell's reads, shorter than the sh server's boot, so
// that one of its reads ends inside that. No byte of the sh server's boot
// reaches the Perl server, which would take it for a bad message and exit.
func TestShellPerlLongBoot(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	old := perlServer
	defer func() { perlServer = old }()
	for pad := 0; pad < 8192; pad += 256 {
		perlServer = "#" + strings.Repeat("p", pad) + "\n" + old
		c := mustOpen(t, f, srv, nil)
		if got := run(t, c, "echo ok").Stdout; string(got) != "ok\n" {
			t.Fatalf("padding %d: stdout %q", pad, got)
		}
		if st, err := c.(*Conn).Stat(t.Context(), "/", false); err != nil || st.Type != "directory" {
			t.Fatalf("padding %d: stat / on the Perl server: %+v, %v", pad, st, err)
		}
		if m := c.(*Conn).ShellMode(); m != "persistent (perl)" {
			t.Fatalf("padding %d: shell mode %q, want persistent (perl)", pad, m)
		}
		c.Close()
	}
}

// A command's input goes to the Perl server at most putWindow bytes ahead
// of what it has written to the command: one that does not read yet (it
// waits on a FIFO) stops the reading of its source, and then gets all of
// it.
func TestShellPerlStdinWindow(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, nil)
	run(t, c, "true")
	requirePersistent(t, c)
	fifo := filepath.Join(t.TempDir(), "gate")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	src := &countingSource{n: size}
	done := make(chan connectors.Result, 1)
	go func() {
		res, err := c.Run(t.Context(), connectors.Command{Script: "read g < " + connectors.Quote(fifo) + "; wc -c", Stdin: src})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	var read int64
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatalf("the source was read to %d bytes and on", read)
		}
		time.Sleep(50 * time.Millisecond)
		if now := src.count(); now == read && now > 0 {
			break
		} else {
			read = now
		}
	}
	// What the server wrote to the pipe, which the command does not read
	// yet, is acknowledged; the window is not.
	if limit := int64(64<<10 + putWindow + 2*putChunk); read > limit {
		t.Errorf("with the command not reading, %d bytes of its input were read: more than %d (a pipe and the window)", read, limit)
	}
	g, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.WriteString("go\n")
	g.Close()
	if res := <-done; strings.TrimSpace(string(res.Stdout)) != strconv.Itoa(size) || res.ExitCode != 0 {
		t.Errorf("the command read %q of its input (exit %d), want %d bytes", res.Stdout, res.ExitCode, size)
	}
}

// Where the shell cannot make a FIFO (here mktemp -d fails), a command
// with input takes a session of its own and gets all of its input; other
// commands stay on the shell.
func TestShellNoFIFOFallsBack(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"SetEnv TMPDIR=/nonexistent-star-deploy"}})
	f, _ := testFactory(t)
	c := mustOpen(t, f, srv, map[string]string{"ssh_shell_perl": "false"})
	in := bytes.Repeat([]byte("input line\n"), 1000)
	for range 2 {
		res, err := c.Run(t.Context(), connectors.Command{Script: "cat", Stdin: bytes.NewReader(in)})
		if err != nil || !bytes.Equal(res.Stdout, in) {
			t.Fatalf("cat: %v, got %d bytes, want %d", err, len(res.Stdout), len(in))
		}
	}
	if got := run(t, c, "echo $TMPDIR").Stdout; string(got) != "/nonexistent-star-deploy\n" {
		t.Fatalf("TMPDIR %q: the test does not test", got)
	}
	requirePersistent(t, c)
}

// A command run with sudo leaves nothing of its Guard behind, so its shell
// is reused rather than retired.
func TestShellSudoReusesShell(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, _ := testFactory(t)
		c := mustOpen(t, f, srv, server)
		if run(t, c, "command -v sudo").ExitCode != 0 {
			sshtest.Skip(t, "sudo is not installed")
		}
		script, err := connectors.Render("id -u", connectors.Wrap{Sudo: true})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if res := run(t, c, script); res.ExitCode != 0 || string(res.Stdout) != "0\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
			}
			if live, idle := shellCounts(c); live != 1 || idle != 1 {
				t.Errorf("%d shells live, %d idle after a sudo command, want 1 and 1", live, idle)
			}
		}
	})
}

// A command that leaves a background process holding its stdout returns
// when it exits, without waiting for that process; the shell it ran on is
// retired, and the next command runs on another one.
func TestShellBackgroundHoldsStdout(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, _ := testFactory(t)
		c := mustOpen(t, f, srv, server)
		dir := t.TempDir()
		res := run(t, c, "sleep 30 & echo $! > "+dir+"/pid; echo started")
		if string(res.Stdout) != "started\n" || res.ExitCode != 0 {
			t.Fatalf("exit %d, stdout %q", res.ExitCode, res.Stdout)
		}
		pid := strings.TrimSpace(string(run(t, c, "cat "+dir+"/pid").Stdout))
		if run(t, c, "kill -0 "+pid).ExitCode != 0 {
			t.Error("the background process is gone: Run waited for it")
		}
		if got := run(t, c, "echo next").Stdout; string(got) != "next\n" {
			t.Errorf("next command: stdout %q", got)
		}
		run(t, c, "kill "+pid)
		requirePersistent(t, c)
	})
}

// The bytes of standard input are written by printf, a builtin of the
// host's shell: they never appear in a process list, even while the write
// blocks.
func TestShellStdinNotInProcessList(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, _ := testFactory(t)
		c := mustOpen(t, f, srv, server)
		checkStdinNotListed(t, c)
	})
}

func checkStdinNotListed(t *testing.T, c connectors.Connector) {
	t.Helper()
	const canary = "stdin-canary-7f3a"
	in := bytes.Repeat([]byte(canary+"\n"), 20000) // beyond a pipe's buffer: the shell's write blocks
	res, err := c.Run(t.Context(), connectors.Command{Script: "sleep 1; ps -eo args; cat >/dev/null", Stdin: bytes.NewReader(in)})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%v, exit %d, stderr %q", err, res.ExitCode, res.Stderr)
	}
	if bytes.Contains(res.Stdout, []byte(canary)) || !bytes.Contains(res.Stdout, []byte("ps -eo args")) {
		t.Errorf("process list shows the input, or is not a process list:\n%s", res.Stdout)
	}
	requirePersistent(t, c)
}

// Close ends the host's shells, and a command running in one; so does a
// connection that is cut without Close.
func TestShellCloseLeavesNothing(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	eachServer(t, func(t *testing.T, server map[string]string) {
		for _, how := range []string{"Close", "cut"} {
			t.Run(how, func(t *testing.T) { checkCloseLeavesNothing(t, srv, server, how == "cut") })
		}
	})
}

func checkCloseLeavesNothing(t *testing.T, srv *sshtest.Server, server map[string]string, cut bool) {
	f, _ := testFactory(t)
	check := mustOpen(t, f, srv, map[string]string{"ssh_persistent_shell": "false"})
	c := mustOpen(t, f, srv, server)
	dir := t.TempDir()
	run(t, c, "true")
	c.(*Conn).shells.mu.Lock()
	shellPID := c.(*Conn).shells.idle[0].pid
	c.(*Conn).shells.mu.Unlock()
	started := make(chan struct{})
	go c.Run(context.WithoutCancel(t.Context()), connectors.Command{Script: "sleep 300 & echo $! > " + dir + "/pid; echo ready; wait",
		Stdout: &readyWriter{marker: "ready", fn: func() { close(started) }}})
	<-started
	pid := strings.TrimSpace(string(run(t, check, "cat "+dir+"/pid").Stdout))
	if cut {
		c.(*Conn).client.Close()
	} else {
		c.Close()
	}
	requireGonePID(t, check, strconv.Itoa(shellPID), "the shell after Close")
	requireGonePID(t, check, pid, "the command after Close")
}

// As a user whose sudo asks for a password, in the Debian container: the
// password goes through the persistent shell's input when sudo asks, and
// the conformance suite passes for deploy (passwordless sudo) there, on
// persistent shells (TestConformanceDebian).
func TestShellSudoPasswordDebian(t *testing.T) {
	ct := sshtest.Fleet(t, 1)[0]
	eachServer(t, func(t *testing.T, server map[string]string) {
		f, home := testFactory(t)
		server["ssh_known_hosts_file"] = filepath.Join(home, "kh")
		c, err := open(t, f, &sshtest.Server{Addr: ct.Addr, Host: ct.Host, Port: ct.Port, User: sshtest.UserPasswd, ClientKeyPath: ct.ClientKeyPath}, server)
		if err != nil {
			t.Fatal(err)
		}
		prompt := "[test:" + string(newToken()[:8]) + "] sudo password: "
		script, err := connectors.Render("id -u; ps -eo args", connectors.Wrap{Sudo: true, SudoPrompt: prompt})
		if err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		defer pr.Close()
		feeder := &readyWriter{marker: prompt, fn: func() {
			go func() { io.WriteString(pw, ct.SudoPassword+"\n"); pw.Close() }()
		}}
		res, err := c.Run(t.Context(), connectors.Command{Script: script, Stdin: pr, Stderr: feeder})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%v, exit %d, stderr %q", err, res.ExitCode, res.Stderr)
		}
		if !strings.HasPrefix(string(res.Stdout), "0\n") {
			t.Errorf("stdout %q, want uid 0 first", res.Stdout)
		}
		if bytes.Contains(res.Stdout, []byte(ct.SudoPassword)) || bytes.Contains(res.Stderr, []byte(ct.SudoPassword)) {
			t.Errorf("the sudo password shows in the output or the process list:\n%s", res.Stdout)
		}
		requirePersistent(t, c)
		checkStdinNotListed(t, c)
	})
}

// BenchmarkRunLatency runs `true` over a connected loopback sshd, on a
// session per command and on a persistent shell with each server. ms/op is the latency of
// one command after connecting; host-ms/op is the CPU time that sshd and
// everything it started spent per command, connecting and closing included
// (read from the listener's cutime and cstime once the connection's
// processes have exited).
func BenchmarkRunLatency(b *testing.B) {
	srv := sshtest.Start(b, sshtest.Options{})
	for _, mode := range []struct{ name, persistent, perl string }{{"session", "false", "false"}, {"persistent-sh", "true", "false"}, {"persistent-perl", "true", "true"}} {
		b.Run(mode.name, func(b *testing.B) {
			f := NewFactory(Options{})
			f.env = configEnv{User: "nobody-local", Home: b.TempDir()}
			target, err := f.Parse(srv.Addr, map[string]string{"ssh_key": srv.ClientKeyPath, "ssh_user": srv.User, "ssh_allow_agent": "false", "ssh_persistent_shell": mode.persistent, "ssh_shell_perl": mode.perl})
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := sshtest.HostCPU([]*sshtest.Server{srv})
			c, err := f.Open(b.Context(), target)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Run(b.Context(), connectors.Command{Script: "true"}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				res, err := c.Run(b.Context(), connectors.Command{Script: "true"})
				if err != nil || res.ExitCode != 0 {
					b.Fatal(err, res.ExitCode)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
			b.StopTimer()
			c.Close()
			host := sshtest.HostCPU([]*sshtest.Server{srv}) - cpu0
			b.ReportMetric(float64(host.Microseconds())/1000/float64(b.N), "host-ms/op")
		})
	}
}

// BenchmarkConnectFirstCommand times what a host's first operation waits
// for: connecting (key exchange, authentication) and the first command,
// which opens the connection's first channel (see ackGlobalRequests).
func BenchmarkConnectFirstCommand(b *testing.B) {
	srv := sshtest.Start(b, sshtest.Options{HostKeyTypes: []string{"ed25519"}})
	f := NewFactory(Options{})
	f.env = configEnv{User: "nobody-local", Home: b.TempDir()}
	target, err := f.Parse(srv.Addr, map[string]string{"ssh_key": srv.ClientKeyPath, "ssh_user": srv.User, "ssh_allow_agent": "false"})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for range b.N {
		c, err := f.Open(b.Context(), target)
		if err != nil {
			b.Fatal(err)
		}
		if res, err := c.Run(b.Context(), connectors.Command{Script: "true"}); err != nil || res.ExitCode != 0 {
			b.Fatal(err, res.ExitCode)
		}
		c.Close()
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}
