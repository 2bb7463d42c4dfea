package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// hugeOutput is what the command of TestOutputMemoryIsBounded prints: far
// more than the 100 MiB the process may grow to.
const hugeOutput = 300_000_000

// TestOutputMemoryIsBounded runs the real binary (built without -race) on
// a command that prints 300 MB, on @local and over a loopback sshd, as a
// deploy script and as exec: the peak RSS of the process stays under
// 100 MiB, and the result and the events report the dropped bytes.
func TestOutputMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and prints 300 MB per case")
	}
	srv := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	bin := buildBinary(t)
	kh := writeFile(t, dir, "known_hosts", srv.KnownHostsLine(""))
	ssh := []string{"--key", srv.ClientKeyPath, "--user", srv.User, "--data", "ssh_allow_agent=false",
		"--data", "ssh_known_hosts_file=" + kh, "@ssh/" + srv.Addr}
	long := "head -c 300000000 /dev/zero | tr '\\0' x" // one long line
	script := writeFile(t, dir, "big.star", `
r = shell("`+strings.ReplaceAll(long, `\`, `\\`)+`; seq 1 10 >&2")
print("kept=%d dropped=%d max=%d stderr=%r" % (len(r.stdout), r.stdout_dropped, r.max_output, r.stderr))
`)
	const maxRSS = 100 << 20
	dropped := int64(hugeOutput - connectors.DefaultMaxOutput)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"local/script", []string{"--json", "@local", script}},
		{"local/exec", []string{"@local", "exec", "--", "yes | head -c 300000000"}},
		{"ssh/script", append(append([]string{"--json"}, ssh...), script)},
		{"ssh/exec", append(ssh, "exec", "--", "yes | head -c 300000000")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, tc.args...)
			var stdout tailWriter
			var stderr conntest.SyncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			peak := watchPeakRSS(t, cmd.Process.Pid)
			err := cmd.Wait()
			rss := peak()
			t.Logf("peak RSS %.1f MiB, %d bytes on stdout", float64(rss)/(1<<20), stdout.n)
			if err != nil {
				t.Fatalf("%v\nstdout ends:\n%s\nstderr:\n%s", err, stdout.tail, stderr.String())
			}
			if rss >= maxRSS {
				t.Errorf("peak RSS %d bytes, want under %d", rss, maxRSS)
			}
			if strings.HasSuffix(tc.name, "/exec") {
				// 16 MiB of "y\n" lines, each shown as "[host] y".
				if note := "16777216 bytes per stream: 283222784 bytes of stdout and 0 of stderr dropped"; !strings.Contains(stderr.String(), note) {
					t.Errorf("stderr lacks %q:\n%s", note, stderr.String())
				}
				if lines := int64(connectors.DefaultMaxOutput / 2); stdout.lines != lines {
					t.Errorf("stdout has %d lines, want %d", stdout.lines, lines)
				}
				return
			}
			want := `kept=16777216 dropped=283222784 max=16777216 stderr="1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"`
			var sawPrint, sawEnd bool
			for line := range strings.Lines(string(stdout.tail)) {
				var e struct {
					Kind, Message string
					MaxOutput     int64 `json:"max_output"`
					StdoutDropped int64 `json:"stdout_dropped"`
				}
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("not a JSON event: %q", line)
				}
				switch e.Kind {
				case "print":
					sawPrint = strings.TrimSpace(e.Message) == want
				case "op_end":
					sawEnd = e.MaxOutput == connectors.DefaultMaxOutput && e.StdoutDropped == dropped
				}
			}
			if !sawPrint || !sawEnd {
				t.Errorf("want print %q and an op_end with max_output and stdout_dropped, got:\n%s", want, stdout.tail)
			}
		})
	}
}

// watchPeakRSS samples the VmHWM (peak resident set) of process pid from
// /proc every 2 ms until the returned function is called, after the
// process has been waited for; that function returns the last reading,
// in bytes. The rusage of a waited-for child cannot serve: Go starts it
// with vfork, so the kernel counts the parent's peak as the child's.
func watchPeakRSS(t *testing.T, pid int) func() int64 {
	t.Helper()
	var hwm atomic.Int64
	read := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return false
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				var kib int64
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kib)
				hwm.Store(max(hwm.Load(), kib<<10))
				return true
			}
		}
		return false // a zombie has no memory left to read
	}
	if !read() {
		t.Fatalf("cannot read VmHWM of process %d from /proc", pid)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for tick := time.NewTicker(2 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
				read()
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return hwm.Load()
	}
}

// tailWriter counts what is written to it, and its lines, and keeps the
// last 64 KiB.
type tailWriter struct {
	n, lines int64
	tail     []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	w.lines += int64(strings.Count(string(p), "\n"))
	w.tail = append(w.tail, p...)
	if over := len(w.tail) - 64<<10; over > 0 {
		w.tail = append(w.tail[:0], w.tail[over:]...)
	}
	return len(p), nil
}

// TestMaxOutputFromData: max_output is a control default like the others,
// from --data (with a unit) and from an inventory, and a keyword wins.
func TestMaxOutputFromData(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "s.star", `
r = shell("seq 1 10000")
print("max=%d kept=%d dropped=%d" % (r.max_output, len(r.stdout), r.stdout_dropped))
print("keyword=%d" % shell("true", max_output = 2048).max_output)
`)
	code, out, errOut := runCLI(t, "--data", "max_output=1KiB", "@local", script)
	if code != 0 || !strings.Contains(out, "max=1024 kept=1024 dropped=47870") || !strings.Contains(out, "keyword=2048") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	inv := writeFile(t, dir, "inventory.star", `local = [("@local", {"max_output": 4096})]`)
	code, out, errOut = runCLI(t, inv, script)
	if code != 0 || !strings.Contains(out, "max=4096 kept=4096") {
		t.Fatalf("inventory: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "--data", "max_output=lots", "@local", script)
	if code == 0 || !strings.Contains(errOut, "max_output") {
		t.Fatalf("max_output=lots: exit %d\n%s", code, errOut)
	}
}
