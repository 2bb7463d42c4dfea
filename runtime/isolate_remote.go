package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Remote modules in an isolated run. Options.Remote is the app's and
// cannot cross into the child, so the child's Runner gets a childRemote
// that asks the parent: each call goes out as a message on the child's
// standard output, and its reply comes back as a line on the child's
// standard input, after the request. The parent answers with its own
// Options.Remote and reads only keys of its Options.RemoteAllow: the child
// checks them too, but it runs the untrusted script.

// maxRemoteCalls bounds the calls the parent answers at once, so that a
// script cannot make it hold many large files.
const maxRemoteCalls = 4

// remoteCall is a child's question to its parent.
type remoteCall struct {
	ID   int
	Op   string // "resolve" (From, Name) or "read" (Key)
	From string `json:",omitempty"`
	Name string `json:",omitempty"`
	Key  string `json:",omitempty"`
}

// remoteReply is the parent's answer to the call ID.
type remoteReply struct {
	ID   int
	Key  string `json:",omitempty"` // of a resolve
	Data []byte `json:",omitempty"` // of a read
	Err  string `json:",omitempty"`
}

// serveRemote answers a child's call with Options.Remote.
func (r *Runner) serveRemote(ctx context.Context, c remoteCall) remoteReply {
	rep := remoteReply{ID: c.ID}
	var err error
	switch {
	case r.opts.Remote == nil || len(r.opts.RemoteAllow) == 0:
		err = errors.New("remote modules are off here")
	case c.Op == "resolve":
		rep.Key, err = r.opts.Remote.Resolve(c.From, c.Name)
	case c.Op == "read" && (!strings.HasPrefix(c.Key, remotePrefix) || !r.remoteAllowed(c.Key)):
		err = fmt.Errorf("%s is not an allowed source here", c.Key)
	case c.Op == "read":
		rep.Data, err = r.opts.Remote.Read(ctx, c.Key)
		if err == nil && len(rep.Data) > maxIsolatedFiles {
			rep.Data, err = nil, fmt.Errorf("%s is larger than the %d MiB an isolated run takes", c.Key, maxIsolatedFiles>>20)
		}
	default:
		err = fmt.Errorf("internal error: unknown remote call %q", c.Op)
	}
	if err != nil {
		rep.Err = err.Error()
	}
	return rep
}

// childRemote is the child's Options.Remote: it asks the parent.
type childRemote struct {
	send func(message)

	mu      sync.Mutex
	next    int
	waiting map[int]chan remoteReply
	gone    bool // the parent's end of standard input closed
}

var _ RemoteModules = (*childRemote)(nil)

func newChildRemote(send func(message)) *childRemote {
	return &childRemote{send: send, waiting: map[int]chan remoteReply{}}
}

func (c *childRemote) Resolve(from, name string) (string, error) {
	rep, err := c.call(context.Background(), remoteCall{Op: "resolve", From: from, Name: name})
	return rep.Key, err
}

func (c *childRemote) Read(ctx context.Context, key string) ([]byte, error) {
	rep, err := c.call(ctx, remoteCall{Op: "read", Key: key})
	return rep.Data, err
}

func (c *childRemote) call(ctx context.Context, rc remoteCall) (remoteReply, error) {
	ch := make(chan remoteReply, 1)
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return remoteReply{}, errParentGone
	}
	c.next++
	rc.ID = c.next
	c.waiting[rc.ID] = ch
	c.mu.Unlock()
	c.send(message{Remote: &rc})
	select {
	case rep, ok := <-ch:
		if !ok {
			return remoteReply{}, errParentGone
		}
		if rep.Err != "" {
			return rep, errors.New(rep.Err)
		}
		return rep, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, rc.ID)
		c.mu.Unlock()
		return remoteReply{}, ctx.Err()
	}
}

var errParentGone = errors.New("isolate: the parent stopped answering")

// receive hands the parent's replies, read from dec, to their calls until
// the parent's end closes.
func (c *childRemote) receive(dec *json.Decoder) {
	for {
		var rep remoteReply
		err := dec.Decode(&rep)
		c.mu.Lock()
		if err != nil {
			c.gone = true
			for id, ch := range c.waiting {
				close(ch)
				delete(c.waiting, id)
			}
			c.mu.Unlock()
			return
		}
		if ch, ok := c.waiting[rep.ID]; ok {
			ch <- rep
			delete(c.waiting, rep.ID)
		}
		c.mu.Unlock()
	}
}
