package main

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/term"
)

// terminalPrompt asks for secrets on the controlling terminal, one question
// at a time, without echo. It is nil when there is no terminal, so that a
// missing secret fails at once instead of hanging.
func terminalPrompt() func(question string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil
	}
	var mu sync.Mutex
	return func(question string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		restore := echoOff(int(tty.Fd()))
		defer restore()
		fmt.Fprint(tty, question)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return "", err
		}
		return string(b), nil
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
