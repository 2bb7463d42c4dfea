package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBinary runs bin with args and returns its exit code and output.
func runBinary(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run %s: %v", bin, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// jsonLines decodes --json output into one map per line.
func jsonLines(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, line)
		}
		out = append(out, m)
	}
	if len(out) < 2 || out[0]["kind"] != kindRunStart || out[len(out)-1]["kind"] != kindRunEnd {
		t.Fatalf("--json does not open with run_start and end with run_end:\n%s", stdout)
	}
	return out
}

// hostEndStatuses counts the host_end events by status, checking that
// every host has exactly one.
func hostEndStatuses(t *testing.T, lines []map[string]any) map[string]int {
	t.Helper()
	seen := map[string]bool{}
	counts := map[string]int{}
	for _, m := range lines {
		if m["kind"] != "host_end" {
			continue
		}
		host := m["host"].(string)
		if seen[host] {
			t.Errorf("two host_end events for %s", host)
		}
		seen[host] = true
		counts[m["status"].(string)]++
	}
	return counts
}

// downAddrs returns n loopback addresses where nothing listens.
func downAddrs(t *testing.T, n int) []string {
	var out []string
	for i := range n {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", 60+i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Addr().String())
		l.Close()
	}
	return out
}

// TestHostStatusesBinary runs the real binary against SSH hosts that
// nothing listens for, a failing script and --fail-percent, and checks
// that the summary, the table and the JSON events tell unreachable,
// failed and not started apart, with exit 1 for each.
func TestHostStatusesBinary(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ok := writeFile(t, dir, "ok.star", "shell('true')\n")
	sshData := []string{"--data", "ssh_password=unused", "--data", "ssh_connect_retries=0", "--data", "ssh_allow_agent=false",
		"--data", "ssh_known_hosts_file=" + filepath.Join(dir, "kh")}

	t.Run("unreachable", func(t *testing.T) {
		down := downAddrs(t, 1)[0]
		code, stdout, stderr := runBinary(t, bin, append(sshData, "--json", "@ssh/"+down, ok)...)
		if code != exitFailed {
			t.Errorf("exit %d, want %d\n%s", code, exitFailed, stderr)
		}
		lines := jsonLines(t, stdout)
		if got := hostEndStatuses(t, lines); got["unreachable"] != 1 || len(got) != 1 {
			t.Errorf("host_end statuses %v, want one unreachable\n%s", got, stdout)
		}
		end := lines[len(lines)-1]
		counts, _ := end["counts"].(map[string]any)
		if end["exit_code"] != 1.0 || counts["unreachable"] != 1.0 || counts["failed"] != 0.0 || end["hosts"] != 1.0 {
			t.Errorf("run_end = %v", end)
		}
		for _, want := range []string{down + "  unreachable", "1 host: 1 unreachable in", "connection refused"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("summary lacks %q:\n%s", want, stderr)
			}
		}
	})

	t.Run("failed", func(t *testing.T) {
		fail := writeFile(t, dir, "fail.star", "shell('exit 3')\n")
		code, stdout, _ := runBinary(t, bin, "@local", fail)
		if code != exitFailed {
			t.Errorf("exit %d, want %d", code, exitFailed)
		}
		for _, want := range []string{"@local  failed", "1 host: 1 failed in"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
		code, stdout, _ = runBinary(t, bin, "--json", "@local", fail)
		if got := hostEndStatuses(t, jsonLines(t, stdout)); code != exitFailed || got["failed"] != 1 {
			t.Errorf("exit %d, host_end statuses %v, want 1 and one failed", code, got)
		}
	})

	t.Run("not started", func(t *testing.T) {
		// One host at a time: the first to fail stops the rest, so one
		// host is unreachable, @local is ok or not started, and at least
		// two never start.
		var names []string
		for _, a := range downAddrs(t, 3) {
			names = append(names, "@ssh/"+a)
		}
		names = append(names, "@local")
		args := append(sshData, "--json", "--fail-percent", "0", "--parallel", "1", strings.Join(names, ","), ok)
		code, stdout, stderr := runBinary(t, bin, args...)
		if code != exitFailed {
			t.Errorf("exit %d, want %d\n%s", code, exitFailed, stderr)
		}
		lines := jsonLines(t, stdout)
		got := hostEndStatuses(t, lines)
		if got["unreachable"] != 1 || got["not_started"] < 2 || got["unreachable"]+got["not_started"]+got["ok"] != 4 {
			t.Errorf("host_end statuses %v, want 1 unreachable, 2 or 3 not_started, the rest ok\n%s", got, stdout)
		}
		counts := lines[len(lines)-1]["counts"].(map[string]any)
		if counts["not_started"] != float64(got["not_started"]) || counts["unreachable"] != 1.0 {
			t.Errorf("run_end counts %v, host_end statuses %v", counts, got)
		}
		for _, want := range []string{"not started", fmt.Sprintf("1 unreachable, %d not started in", got["not_started"]),
			"stopped: more than 0% of hosts failed (--fail-percent)"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("summary lacks %q:\n%s", want, stderr)
			}
		}
	})

	t.Run("binary output", func(t *testing.T) {
		code, stdout, stderr := runBinary(t, bin, "--json", "@local", "exec", "--", `printf '\377\376'`)
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		var found bool
		for _, m := range jsonLines(t, stdout) {
			if m["kind"] == "op_end" {
				found = true
				if m["stdout_base64"] != "//4=" {
					t.Errorf("op_end without the bytes in stdout_base64: %v", m)
				}
			}
		}
		if !found {
			t.Errorf("no op_end:\n%s", stdout)
		}
	})
}
