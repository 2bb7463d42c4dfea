//go:build !unix

package main

import (
	"context"
	"errors"
)

var errLocked = errors.New("locked")

// acquireLock is unsupported off Unix: pull runs on Unix hosts.
func acquireLock(context.Context, string, bool, func()) (func(), error) {
	return nil, errors.New("pull needs file locks (flock), which this platform lacks")
}
