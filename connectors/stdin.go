package connectors

import (
	"context"
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
	io.Copy(w, ContextReader(ctx, r))
	if ctx.Err() == nil {
		w.Close()
	}
}
