package connectors

import (
	"errors"
	"io"
	"sync"
)

// Output collects the two streams of a running command, for the Result,
// and copies them to the Command's live writers. It honours
// Command.StreamOnly, and writes to the live writers one at a time, since
// they may be one and the same. A failing live writer is dropped and its
// error kept (Err), so a slow or broken consumer never stops the command.
// What it keeps of each stream is capped at Command.MaxOutput (see
// CapBuffer); the live writers get everything. Connectors give Stdout()
// and Stderr() to their transport and Fill the Result from it.
type Output struct {
	mu             sync.Mutex // serialises writes to the live writers
	stdout, stderr stream
}

type stream struct {
	o       *Output
	keep    CapBuffer
	discard bool // keep nothing (Command.StreamOnly)
	live    io.Writer
	err     error
}

// NewOutput returns an Output for cmd.
func NewOutput(cmd Command) *Output {
	o := &Output{}
	o.stdout = stream{o: o, live: cmd.Stdout, discard: cmd.StreamOnly && cmd.Stdout != nil, keep: CapBuffer{Max: cmd.MaxOutput}}
	o.stderr = stream{o: o, live: cmd.Stderr, keep: CapBuffer{Max: cmd.MaxOutput}}
	return o
}

// Stdout is the writer for the command's standard output.
func (o *Output) Stdout() io.Writer { return &o.stdout }

// Stderr is the writer for the command's standard error.
func (o *Output) Stderr() io.Writer { return &o.stderr }

// Fill sets what res reports of the output: Stdout, Stderr, MaxOutput and
// the numbers of bytes dropped. Call it once the transport has stopped
// writing.
func (o *Output) Fill(res *Result) {
	res.Stdout, res.Stderr = o.stdout.keep.Bytes(), o.stderr.keep.Bytes()
	res.MaxOutput = o.stdout.keep.Limit()
	res.StdoutDropped, res.StderrDropped = o.stdout.keep.Dropped(), o.stderr.keep.Dropped()
}

// Err returns the errors of the live writers, if any failed.
func (o *Output) Err() error { return errors.Join(o.stdout.err, o.stderr.err) }

func (s *stream) Write(p []byte) (int, error) {
	if !s.discard {
		s.keep.Write(p)
	}
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	if s.live != nil {
		if _, err := s.live.Write(p); err != nil {
			s.err, s.live = err, nil
		}
	}
	return len(p), nil
}
