package connectors

import (
	"context"
	"errors"
	"io"
)

// CopyStdin copies r into w, a running command's standard input, and then
// closes w, so that the command sees the end of its input. When ctx ends
// first, w is left open: an end of file would tell the command that its
// input is complete, and a script like `cat > tmp && mv tmp dest` would
// then install a cut-short file before the cancel's kill arrives. The
// connector's cancel path (which ctx's end always starts) stops the
// command instead. Connectors call it in a goroutine.
func CopyStdin(ctx context.Context, w io.WriteCloser, r io.Reader) {
	_, err := io.Copy(w, ContextReader(ctx, r))
	if InputEnded(ctx, err) {
		w.Close()
	}
}

// InputEnded reports whether a copy of a command's input that stopped with
// err (nil or io.EOF at the end of the input) should tell the command that
// its input is complete. It should not when ctx has ended, nor when err is a
// context's error: a reader tied to an ancestor of ctx fails as soon as that
// ancestor ends, a moment before ctx itself reports it, and the cancel is
// then on its way.
func InputEnded(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return true
}
