package main

import "golang.org/x/sys/unix"

// echoOff turns off echo on the terminal fd and returns a function that
// restores it. Prompts turn echo off before they print the question, so
// that an answer typed at once is never shown.
func echoOff(fd int) func() {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	quiet := *t
	quiet.Lflag &^= unix.ECHO
	if unix.IoctlSetTermios(fd, unix.TCSETS, &quiet) != nil {
		return func() {}
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, t) }
}
