package sshtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

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
