package connectors_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
)

// want is what a CapBuffer of limit keeps of data.
func want(data []byte, limit int) []byte {
	if len(data) <= limit {
		return data
	}
	half := limit / 2
	return append(bytes.Clone(data[:half]), data[len(data)-(limit-half):]...)
}

func TestCapBuffer(t *testing.T) {
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, limit := range []int{1, 2, 3, 10, 101, 1000, 9999, 10000, 20000} {
		for _, n := range []int{0, 1, limit - 1, limit, limit + 1, 2*limit + 7, len(data)} {
			if n < 0 || n > len(data) {
				continue
			}
			for _, chunk := range []int{1, 7, 512, 0} { // 0: random sizes
				t.Run(fmt.Sprintf("limit=%d/n=%d/chunk=%d", limit, n, chunk), func(t *testing.T) {
					b := connectors.CapBuffer{Max: int64(limit)}
					for p := data[:n]; len(p) > 0; {
						k := chunk
						if k == 0 {
							k = 1 + rng.IntN(3*limit)
						}
						k = min(k, len(p))
						if got, err := b.Write(p[:k]); got != k || err != nil {
							t.Fatalf("Write = %d, %v", got, err)
						}
						p = p[k:]
					}
					if got, w := b.Bytes(), want(data[:n], limit); !bytes.Equal(got, w) {
						t.Fatalf("kept %q, want %q", got, w)
					}
					if got, w := b.Dropped(), int64(max(0, n-limit)); got != w {
						t.Errorf("Dropped = %d, want %d", got, w)
					}
					if got := b.Bytes(); !bytes.Equal(got, want(data[:n], limit)) {
						t.Errorf("second Bytes differs: %q", got)
					}
					if c := cap(b.Bytes()); c > limit {
						t.Errorf("capacity %d exceeds the limit %d", c, limit)
					}
				})
			}
		}
	}
}

func TestCapBufferDefault(t *testing.T) {
	var b connectors.CapBuffer
	if b.Limit() != connectors.DefaultMaxOutput || connectors.DefaultMaxOutput != 16<<20 {
		t.Fatalf("Limit = %d, DefaultMaxOutput = %d, want 16 MiB", b.Limit(), connectors.DefaultMaxOutput)
	}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for range 300 {                                         // 18.75 MiB
		b.Write(chunk)
	}
	if got := int64(len(b.Bytes())); got != connectors.DefaultMaxOutput || b.Dropped() != 300*int64(len(chunk))-got {
		t.Fatalf("kept %d bytes, dropped %d", got, b.Dropped())
	}
}
