package runtime

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// stepSlack is about how many steps past its limit a thread may take to
// stop on an instruction with a position of its own.
const stepSlack = 64

// limitSteps bounds the steps of thread to max; 0 means no bound. A
// thread it stops has *why set to ErrStepLimit.
//
// go.starlark.net gives the instructions that test a while loop's
// condition (and the constants that start its body) no position of their
// own: they borrow the position of the statement before the loop, often
// line 1, and a thread stopped on one of them names that line. So a thread
// out of steps runs on a little, in the frame it was in, until it reaches
// a position later in the file than the one it ran out on (the loop's
// borrowed position comes before all of its own), or, after stepSlack
// steps, that position again.
func limitSteps(thread *starlark.Thread, max uint64, why *error) {
	if max == 0 {
		return
	}
	thread.SetMaxExecutionSteps(max)
	reason := fmt.Sprintf("too many steps (the limit is %d)", max)
	var first syntax.Position
	depth, extra := 0, 0
	thread.OnMaxSteps = func(t *starlark.Thread) {
		d, pos := t.CallStackDepth(), t.CallFrame(0).Pos
		extra++
		switch {
		case extra > 4*stepSlack:
			*why = ErrStepLimit
			t.Cancel(reason)
		case extra == 1 || d < depth:
			depth, first = d, pos // start, or start again in the caller
		case d > depth:
			// In a call: wait for its return.
		case after(pos, first) || (extra > stepSlack && pos == first):
			*why = ErrStepLimit
			t.Cancel(reason)
		}
	}
}

// after reports whether a is later than b in the same file.
func after(a, b syntax.Position) bool {
	if a.Filename() != b.Filename() {
		return false
	}
	return a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col)
}
