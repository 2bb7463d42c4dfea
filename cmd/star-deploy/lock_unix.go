//go:build unix

package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// errLocked is acquireLock's error when another process holds the lock
// and the caller does not wait.
var errLocked = errors.New("locked")

// acquireLock takes an exclusive flock on the file p (created if need be).
// When another process holds it, it returns errLocked, or with wait polls
// until the lock is free or ctx ends (so that Ctrl-C never hangs on a
// lock), calling waiting once. The lock ends with the process, so a killed
// run leaves no stale lock.
func acquireLock(ctx context.Context, p string, wait bool, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if !wait {
			f.Close()
			return nil, errLocked
		}
		if !told {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
