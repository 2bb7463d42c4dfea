package sshtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// statFields returns the fields of /proc/PID/stat after the command name
// (which is in parentheses and may hold spaces): element 0 is field 3,
// the state, of proc(5).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// parents maps every process ID to its parent's, read from /proc.
func parents() map[int]int {
	m := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may contain spaces and parentheses.
		// (Not statFields: this reads every process, once.)
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 2 {
			continue
		}
		pid, err1 := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		ppid, err2 := strconv.Atoi(string(f[1]))
		if err1 == nil && err2 == nil {
			m[pid] = ppid
		}
	}
	return m
}

// descendants returns root followed by all its live descendants. sshd's
// connection processes call setsid, so a process group does not hold them.
func descendants(root int) []int {
	return append([]int{root}, below(map[int]bool{root: true})...)
}

// below adds the live descendants of the processes in seen to it, and
// returns them.
func below(seen map[int]bool) []int {
	var out []int
	ps := parents()
	for changed := true; changed; {
		changed = false
		for pid, ppid := range ps {
			if seen[ppid] && !seen[pid] {
				seen[pid], changed = true, true
				out = append(out, pid)
			}
		}
	}
	return out
}

// killTree SIGKILLs root and all its descendants. It stops them first,
// level by level, so that none can fork a new process or notice the others
// dying before all are killed.
func killTree(root int) {
	stopped := map[int]bool{root: true}
	syscall.Kill(root, syscall.SIGSTOP)
	for changed := true; changed; {
		changed = false
		for pid, ppid := range parents() {
			if stopped[ppid] && !stopped[pid] {
				syscall.Kill(pid, syscall.SIGSTOP)
				stopped[pid], changed = true, true
			}
		}
	}
	for pid := range stopped {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Processes returns how many processes run under the servers now: their
// connection processes and the commands those run, not the listening sshd
// processes themselves. It reads /proc once.
func Processes(servers []*Server) int {
	seen := map[int]bool{}
	for _, s := range servers {
		s.mu.Lock()
		if s.cmd != nil {
			seen[s.cmd.Process.Pid] = true
		}
		s.mu.Unlock()
	}
	return len(below(seen))
}

// HostCPU returns the CPU time (user and system) that the servers'
// connection processes and everything they ran have used since the servers
// started: the listening sshd's cutime and cstime, which count a process
// once it has been reaped. It first waits, up to about five seconds, until
// no connection process is left, so that a run that just ended is counted
// whole. The kernel counts in ticks of 10 ms (USER_HZ), so compare sums
// over many connections.
func HostCPU(servers []*Server) time.Duration {
	for i := 0; i < 200 && Processes(servers) > 0; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	var ticks int
	for _, s := range servers {
		s.mu.Lock()
		var f []string
		if s.cmd != nil {
			f = statFields(s.cmd.Process.Pid)
		}
		s.mu.Unlock()
		if len(f) > 14 {
			// Fields 16 and 17 of proc(5): cutime, cstime.
			u, _ := strconv.Atoi(f[13])
			sy, _ := strconv.Atoi(f[14])
			ticks += u + sy
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
