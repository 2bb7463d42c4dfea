package builtins

import (
	"time"
)

// Control holds the control arguments every operation accepts. Defaults
// come from CLI flags and host data; a keyword on the call wins.
type Control struct {
	Sudo             bool
	SudoUser         string
	SuUser           string
	Doas             bool
	DoasUser         string
	Env              map[string]string
	Chdir            string
	ShellExecutable  string
	SuccessExitCodes []int // default [0]
	Timeout          time.Duration
	Stdin            string
	Retries          int
	RetryDelay       time.Duration
	IgnoreErrors     bool
	GetPTY           bool
}
