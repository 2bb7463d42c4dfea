package connectors

import "slices"

// DefaultMaxOutput is how many bytes of each stream of a command (standard
// output, standard error) a Result keeps when Command.MaxOutput is 0:
// 16 MiB.
const DefaultMaxOutput = 16 << 20

// CapBuffer keeps at most Max bytes of what is written to it: everything
// while the total fits, otherwise the first Max/2 bytes and the last
// Max-Max/2 bytes, with the bytes between them dropped and counted. Its
// memory never exceeds Max bytes, so a command may print without bound.
// Write never fails. The zero value keeps DefaultMaxOutput bytes. A
// CapBuffer is not safe for concurrent use.
type CapBuffer struct {
	Max int64 // bytes kept at most; DefaultMaxOutput when 0 or negative

	buf     []byte // head, then (once wrapped) the tail as a ring
	total   int64  // bytes written
	wrapped bool   // the total exceeded Max: buf[half:] is a ring
	pos     int    // next write position in the ring
}

// Limit returns the number of bytes b keeps at most.
func (b *CapBuffer) Limit() int64 {
	if b.Max <= 0 {
		return DefaultMaxOutput
	}
	return b.Max
}

// Write keeps what fits of p. It always returns len(p), nil.
func (b *CapBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.total += int64(n)
	limit := b.Limit()
	if !b.wrapped {
		if int64(len(b.buf))+int64(len(p)) <= limit {
			b.buf = appendCapped(b.buf, p, int(limit))
			return n, nil
		}
		// The first overflow: keep the head, make the rest a ring.
		half := int(limit / 2)
		if len(b.buf) < half {
			k := half - len(b.buf)
			b.buf = appendCapped(b.buf, p[:k], int(limit))
			p = p[k:]
		}
		filled := len(b.buf) - half
		if cap(b.buf) < int(limit) {
			b.buf = append(make([]byte, 0, int(limit)), b.buf...)
		}
		b.buf = b.buf[:limit]
		b.wrapped = true
		b.pos = filled % (int(limit) - half)
	}
	b.writeRing(p)
	return n, nil
}

// appendCapped appends p to buf, never growing its capacity beyond limit.
func appendCapped(buf, p []byte, limit int) []byte {
	if need := len(buf) + len(p); need > cap(buf) {
		grown := min(max(2*cap(buf), need, 512), limit)
		buf = append(make([]byte, 0, grown), buf...)
	}
	return append(buf, p...)
}

// writeRing writes p into the tail ring, overwriting its oldest bytes.
func (b *CapBuffer) writeRing(p []byte) {
	ring := b.buf[b.Limit()/2:]
	if len(ring) == 0 {
		return
	}
	if len(p) >= len(ring) {
		copy(ring, p[len(p)-len(ring):])
		b.pos = 0
		return
	}
	k := copy(ring[b.pos:], p)
	copy(ring, p[k:])
	b.pos = (b.pos + len(p)) % len(ring)
}

// Bytes returns what b kept, in order: the head, then the tail. The slice
// aliases b's memory and is valid until the next Write.
func (b *CapBuffer) Bytes() []byte {
	if b.wrapped && b.pos != 0 {
		ring := b.buf[b.Limit()/2:]
		slices.Reverse(ring[:b.pos])
		slices.Reverse(ring[b.pos:])
		slices.Reverse(ring)
		b.pos = 0
	}
	return b.buf
}

// Dropped returns the number of bytes written to b and not kept.
func (b *CapBuffer) Dropped() int64 { return max(0, b.total-b.Limit()) }
