//go:build !linux

package main

// echoOff does nothing where the termios calls differ; term.ReadPassword
// still turns echo off while it reads.
func echoOff(fd int) func() { return func() {} }
