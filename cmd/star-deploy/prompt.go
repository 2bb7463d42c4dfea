package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/term"
)

// terminalPrompt asks for secrets on the controlling terminal, one question
// at a time, without echo. It is nil when there is no terminal, so that a
// missing secret fails at once instead of hanging. Cancelling ctx (Ctrl-C
// at the prompt) ends a pending question at once, with echo restored, and
// fails every later one.
func terminalPrompt(ctx context.Context) func(question string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil
	}
	fd := int(tty.Fd())
	var mu sync.Mutex
	return func(question string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if err := ctx.Err(); err != nil {
			return "", err
		}
		restore := echoOff(fd)
		defer restore()
		fmt.Fprint(tty, question)
		type answer struct {
			b   []byte
			err error
		}
		// The read cannot be interrupted; on a cancel it is left behind,
		// and the process is about to exit.
		read := make(chan answer, 1)
		go func() {
			b, err := term.ReadPassword(fd)
			read <- answer{b, err}
		}()
		var a answer
		select {
		case a = <-read:
		case <-ctx.Done():
			a.err = ctx.Err()
		}
		fmt.Fprintln(tty)
		if a.err != nil {
			return "", a.err
		}
		return string(a.b), nil
	}
}

// askSecret asks for one secret that a flag requested, e.g. --password.
func askSecret(prompt func(string) (string, error), flag, question string) (string, error) {
	if prompt == nil {
		return "", usagef("%s asks on a terminal, and there is none; give the secret as host data instead", flag)
	}
	s, err := prompt(question)
	if err != nil {
		return "", usagef("%s: %w", flag, err)
	}
	if s == "" {
		return "", usagef("%s: %w", flag, errors.New("empty answer"))
	}
	return s, nil
}
