package connectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestInputEnded: only a copy that reached the end of its input ends the
// command's input; a reader that failed with a context's error (its own,
// an ancestor's) does not, even while ctx itself still looks alive.
func TestInputEnded(t *testing.T) {
	alive := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{alive, nil, true},
		{alive, io.EOF, true},
		{alive, errors.New("disk read error"), true},
		{alive, context.Canceled, false},
		{alive, fmt.Errorf("read: %w", context.DeadlineExceeded), false},
		{done, nil, false},
	} {
		if got := InputEnded(c.ctx, c.err); got != c.want {
			t.Errorf("InputEnded(ctx err %v, %v) = %v, want %v", c.ctx.Err(), c.err, got, c.want)
		}
	}
}
