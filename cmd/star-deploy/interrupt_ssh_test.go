package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// stallProxy forwards TCP connections to a target until it stalls: from
// then on it forwards nothing, in either direction, and keeps every
// connection open, as a host that froze (or a network that drops
// everything) does. Nothing reaches the client: no reset, no FIN.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled chan struct{}
	stall   func()
	done    chan struct{}

	// armed, once set, stalls the proxy after limit more bytes went
	// through in either direction.
	armed atomic.Bool
	limit atomic.Int64
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target, stalled: make(chan struct{}), done: make(chan struct{})}
	p.stall = sync.OnceFunc(func() { close(p.stalled) })
	var conns sync.WaitGroup
	t.Cleanup(func() {
		close(p.done)
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				p.serve(c)
			}()
		}
	}()
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

// stallAfter stalls the proxy once n more bytes have been forwarded.
func (p *stallProxy) stallAfter(n int64) {
	p.limit.Store(n)
	p.armed.Store(true)
}

func (p *stallProxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(s, c) }()
	go func() { defer wg.Done(); p.pipe(c, s) }()
	// Both ends close when the test ends (or one side hung up before
	// a stall), which ends both pipes.
	select {
	case <-p.done:
	case <-p.pipesDone(&wg):
	}
	c.Close()
	s.Close()
	wg.Wait()
}

func (p *stallProxy) pipesDone(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// pipe copies src to dst until an error or a stall; after a stall it
// neither reads nor writes.
func (p *stallProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-p.stalled:
			<-p.done
			return
		default:
		}
		n, err := src.Read(buf)
		if n > 0 {
			if p.armed.Load() && p.limit.Add(-int64(n)) < 0 {
				p.stall()
			}
			select {
			case <-p.stalled:
				<-p.done
				return
			default:
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// interruptBound is how long a run may take to exit after SIGINT or
// SIGTERM while a host has stalled (issue 10: within 5 s).
const interruptBound = 5 * time.Second

// stallRig is what the stalled-host tests share: sshd on loopback, the
// binary, and a temporary directory for scripts and known_hosts.
type stallRig struct {
	srv *sshtest.Server
	bin string
	dir string
}

// newStallRig starts sshd and builds the binary; under -short it skips.
func newStallRig(t *testing.T) stallRig {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	return stallRig{srv: sshtest.Start(t, sshtest.Options{}), bin: buildBinary(t), dir: t.TempDir()}
}

// start runs the binary on script against the sshd behind proxy, with
// keepalives every keepalive seconds (0: none) and the extra KEY=VALUE data.
func (g stallRig) start(t *testing.T, proxy *stallProxy, keepalive, script string, data ...string) *binaryRun {
	t.Helper()
	args := []string{"--key", g.srv.ClientKeyPath, "--user", g.srv.User,
		"--data", "ssh_allow_agent=false", "--data", "ssh_known_hosts_file=" + filepath.Join(g.dir, "kh"),
		"--data", "ssh_keepalive_interval=" + keepalive}
	for _, d := range data {
		args = append(args, "--data", d)
	}
	return startBinary(t, g.bin, append(args, "@ssh/"+proxy.addr(), script)...)
}

// TestInterruptStalledSSH interrupts the real binary while its host has
// stalled (a proxy that stops forwarding), with keepalives on and off,
// during a command, a put, a get and the handshake: it exits 130 within
// interruptBound, without waiting for the host to answer.
func TestInterruptStalledSSH(t *testing.T) {
	rig := newStallRig(t)
	dir := rig.dir
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<30); err != nil { // sparse: never sent whole
		t.Fatal(err)
	}
	cases := []struct {
		name, keepalive string
		sig             syscall.Signal
		script          string // MARK is replaced by the file that arms the proxy
		stall           int64  // bytes forwarded after MARK exists; -1: stall from the start
	}{
		{"shell", "0", syscall.SIGINT, `shell("touch MARK; sleep 39")`, 0},
		{"shell keepalive", "15", syscall.SIGTERM, `shell("touch MARK; sleep 39")`, 0},
		{"next session", "0", syscall.SIGINT, `shell("touch MARK")` + "\n" + `shell("sleep 39")`, 0},
		{"put", "0", syscall.SIGINT, `shell("touch MARK")` + "\n" + `put("` + dir + `/put-dest", src = "` + big + `")`, 1 << 20},
		{"get", "0", syscall.SIGINT, `shell("touch MARK")` + "\n" + `get("` + big + `", "` + dir + `/get-dest")`, 1 << 20},
		{"handshake", "0", syscall.SIGINT, `shell("true")`, -1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each has its own proxy; they mostly wait
			mark := filepath.Join(dir, "mark"+strconv.Itoa(i))
			script := writeFile(t, dir, "s"+strconv.Itoa(i)+".star", strings.ReplaceAll(tc.script, "MARK", mark))
			proxy := startStallProxy(t, rig.srv.Addr)
			if tc.stall < 0 {
				proxy.stall()
			}
			r := rig.start(t, proxy, tc.keepalive, script, "ssh_connect_timeout=0")
			if tc.stall >= 0 {
				r.waitForFile(t, mark)
				proxy.stallAfter(tc.stall)
				if tc.stall > 0 {
					select {
					case <-proxy.stalled:
					case <-time.After(20 * time.Second):
						t.Fatalf("the transfer did not start\nstdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
					}
				}
			}
			time.Sleep(300 * time.Millisecond) // let the client block on the stalled host
			took := r.signalAndWait(t, tc.sig, interruptBound)
			t.Logf("%s: exit %d %v after %s", tc.name, r.cmd.ProcessState.ExitCode(), took.Round(time.Millisecond), tc.sig)
			if code := r.cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInterrupted, r.stdout.String(), r.stderr.String())
			}
			noGoStack(t, r.stdout.String(), r.stderr.String())
		})
	}
}

// TestSecondInterruptSSH sends a second SIGINT while the first one is still
// cleaning up on a stalled host: the binary exits 130 at once and says that
// remote commands may still run.
func TestSecondInterruptSSH(t *testing.T) {
	rig := newStallRig(t)
	mark := filepath.Join(rig.dir, "mark")
	script := writeFile(t, rig.dir, "s.star", `shell("touch `+mark+`; sleep 39")`)
	proxy := startStallProxy(t, rig.srv.Addr)
	r := rig.start(t, proxy, "0", script)
	r.waitForFile(t, mark)
	proxy.stall()
	time.Sleep(300 * time.Millisecond)
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the first is being handled: the kill waits for the host
	// Generous against a loaded machine; the first interrupt alone takes
	// longer than this on a stalled host.
	took := r.signalAndWait(t, syscall.SIGINT, 2*time.Second)
	t.Logf("exit %d %s after the second SIGINT", r.cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
	if code := r.cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit code %d, want %d\nstderr:\n%s", code, exitInterrupted, r.stderr.String())
	}
	if !strings.Contains(r.stderr.String(), "remote commands may still run") {
		t.Errorf("stderr does not say that remote commands may still run:\n%s", r.stderr.String())
	}
}

// TestInterruptAtPassphrasePrompt presses Ctrl-C (on a pseudo-terminal,
// util-linux script) while the binary asks for a key's passphrase: the
// prompt gives way and the run exits 130 at once, with echo back on.
func TestInterruptAtPassphrasePrompt(t *testing.T) {
	// After the run, stty shows whether echo is on again.
	p := startAtPassphrasePrompt(t, "; echo exit=$?; stty -a")
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	io.WriteString(p.stdin, "\x03") // the terminal turns it into SIGINT
	select {
	case <-p.done:
	case <-time.After(interruptBound):
		t.Fatalf("still running %s after Ctrl-C at the prompt:\n%s", interruptBound, p.out.String())
	}
	t.Logf("exited %s after Ctrl-C at the prompt", time.Since(start).Round(time.Millisecond))
	out := p.out.String()
	if !strings.Contains(out, "exit=130") {
		t.Errorf("want exit=130:\n%s", out)
	}
	if !regexp.MustCompile(`(^|\s)echo(\s|$)`).MatchString(out) {
		t.Errorf("echo is still off after the run:\n%s", out)
	}
}
