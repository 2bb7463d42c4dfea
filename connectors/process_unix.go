//go:build unix

package connectors

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
)

const (
	// killGrace is how long a cancelled command's process group has between
	// SIGTERM and SIGKILL; short, so that Ctrl-C stops a run within a second.
	killGrace = 500 * time.Millisecond
	// pipeGrace is how long RunProcess waits, after the shell exited, for
	// processes it left in the background to close its stdout and stderr.
	pipeGrace = time.Second
)

// RunProcess is the Run of a connector whose commands are processes on
// this machine (@local, @chroot): it runs ex, which runs cmd.Script, in a
// process group of its own, feeds it cmd.Stdin (CopyStdin), collects its
// output as cmd asks (NewOutput), and reports the exit status as a shell
// does (128+N for signal N). name is the host, for errors.
//
// When ctx ends before the command does, the whole process group gets
// SIGTERM and, after a short grace period, SIGKILL; RunProcess then returns
// an error wrapping ctx.Err(). A command that exits normally keeps any
// background processes it started; RunProcess waits at most about a second
// for them to close its output.
func RunProcess(ctx context.Context, name string, ex *exec.Cmd, cmd Command) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("run on %s: %w", name, err)
	}
	out := NewOutput(cmd)
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		// Fed by hand: os/exec would close the pipe when the reader fails
		// on cancel, and the command would take a cut-short input for a
		// whole one (CopyStdin).
		var err error
		if stdin, err = ex.StdinPipe(); err != nil {
			return Result{}, fmt.Errorf("run on %s: %w", name, err)
		}
	}
	ex.Stdout = out.Stdout()
	ex.Stderr = out.Stderr()
	ex.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ex.WaitDelay = pipeGrace

	start := time.Now()
	if err := ex.Start(); err != nil {
		return Result{}, fmt.Errorf("run on %s: start %s: %w", name, filepath.Base(ex.Path), err)
	}
	pgid := ex.Process.Pid
	if stdin != nil {
		go CopyStdin(ctx, stdin, cmd.Stdin)
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
		case <-stop: // finished on its own at the same moment
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
	res := Result{Duration: time.Since(start), ExitCode: exitStatus(ex.ProcessState)}
	out.Fill(&res)
	if cancelled {
		return res, fmt.Errorf("run on %s: %w", name, ctx.Err())
	}
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil, errors.Is(waitErr, exec.ErrWaitDelay), errors.As(waitErr, &exitErr):
		// ErrWaitDelay: the shell exited and a background process kept
		// the output open; the exit status is known.
	default:
		return res, fmt.Errorf("run on %s: %w", name, waitErr)
	}
	if err := out.Err(); err != nil {
		return res, fmt.Errorf("run on %s: copy live output: %w", name, err)
	}
	return res, nil
}

// killGroup sends SIGTERM to the process group pgid, waits up to killGrace
// for its processes to exit, then sends SIGKILL.
func killGroup(pgid int) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // ESRCH: the group is gone already
	}
	deadline := time.Now().Add(killGrace)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if !groupAlive(pgid) {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // ESRCH only: gone in the meantime
}

// groupAlive reports whether process group pgid has a process that has not
// exited. Orphans that exited stay zombies until init reaps them, which
// some inits do late, and kill(2) still finds them; so where /proc exists
// it decides, and without it the group counts as alive.
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
			continue // exited while we looked
		}
		found = true
		// pid (comm) state ppid pgrp ...; comm may hold spaces and ")".
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
	return !found // an empty or unreadable /proc tells nothing
}

// exitStatus returns the exit status the way a shell reports it: 128+N for a
// process killed by signal N.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
