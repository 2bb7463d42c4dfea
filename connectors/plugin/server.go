package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"sync"

	"github.com/star-deploy/star-deploy/connectors"
)

// Serve is the whole main function of a connector plugin written in Go: it
// serves f over the process's standard input and output and exits when
// star-deploy closes the input.
//
//	func main() { plugin.Serve(myconn.NewFactory()) }
//
// Standard output belongs to the protocol, so Serve points os.Stdout at
// standard error: what the connector prints with fmt.Println goes there.
func Serve(f connectors.Factory) {
	out := os.Stdout
	os.Stdout = os.Stderr
	if err := ServeIO(context.Background(), f, os.Stdin, out); err != nil {
		fmt.Fprintf(os.Stderr, "%s plugin: %v\n", f.Scheme(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ServeIO serves f, reading requests from r and writing responses and
// notifications to w, until r ends (then it cancels what still runs and
// closes the connection) or ctx does.
func ServeIO(ctx context.Context, f connectors.Factory, r io.Reader, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &server{
		f: f, ctx: ctx, w: bufio.NewWriter(w),
		inflight: map[string]context.CancelFunc{},
		runs:     map[string]*runInput{},
		puts:     map[string]*transfer{},
		gets:     map[string]*transfer{},
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxMessage)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.JSONRPC != "2.0" {
			s.respond(json.RawMessage("null"), nil, errorf(CodeParseError, "not a JSON-RPC 2.0 message: %.80q", sc.Bytes()))
			continue
		}
		switch {
		case m.Method == "":
			// A response: the client sends none in v1.
		case len(m.ID) == 0:
			s.notification(m)
		default:
			s.request(m)
		}
	}
	err := sc.Err()
	cancel()
	s.mu.Lock()
	for _, p := range s.puts {
		p.pw.CloseWithError(errAborted)
	}
	for _, g := range s.gets {
		g.pr.CloseWithError(context.Canceled)
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	return err
}

type server struct {
	f   connectors.Factory
	ctx context.Context

	wmu sync.Mutex
	w   *bufio.Writer

	wg       sync.WaitGroup
	mu       sync.Mutex
	conn     connectors.Connector
	opening  bool
	inflight map[string]context.CancelFunc // request id -> its cancel
	runs     map[string]*runInput          // run request id -> its stdin, when it takes one
	puts     map[string]*transfer
	gets     map[string]*transfer
	handles  int
}

type runInput struct {
	pr *io.PipeReader
	pw *io.PipeWriter
}

// transfer is one put or get in progress: a pipe between the protocol's
// chunks and the connector's Put (which reads pr) or Get (which writes pw),
// running in a goroutine of its own that sends its error to done.
type transfer struct {
	pr     *io.PipeReader
	pw     *io.PipeWriter
	cancel context.CancelFunc
	done   chan error
}

var errAborted = errors.New("put aborted by star-deploy")

// send writes one message as a line.
func (s *server) send(m message) {
	b := encode(m)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.w.Write(b)
	s.w.Flush()
}

func (s *server) respond(id json.RawMessage, result any, err error) {
	m := message{ID: id}
	if err != nil {
		m.Error = toError(err)
	} else {
		if result == nil {
			result = empty{}
		}
		b, merr := json.Marshal(result)
		if merr != nil {
			m.Error = errorf(CodeInternal, "encode result: %v", merr)
		} else {
			m.Result = b
		}
	}
	s.send(m)
}

func (s *server) notification(m message) {
	if m.Method != methodCancel {
		return // unknown notifications are ignored, for later versions
	}
	var p cancelParams
	if json.Unmarshal(m.Params, &p) != nil {
		return
	}
	s.mu.Lock()
	cancel := s.inflight[string(p.ID)]
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// request handles m in a goroutine of its own. What a later message may
// refer to is registered first, in order: the request's cancel, and a
// run's input, which stdin requests feed.
func (s *server) request(m message) {
	ctx, cancel := context.WithCancel(s.ctx)
	key := string(m.ID)
	s.mu.Lock()
	s.inflight[key] = cancel
	if m.Method == methodRun {
		if p, err := decode[runParams](m.Params); err == nil && p.Stdin {
			pr, pw := io.Pipe()
			s.runs[key] = &runInput{pr, pw}
		}
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		result, err := s.handle(ctx, m)
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
		cancel()
		s.respond(m.ID, result, err)
	}()
}

func decode[P any](raw json.RawMessage) (P, error) {
	var p P
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, errorf(CodeInvalidParams, "invalid params: %v", err)
	}
	return p, nil
}

func (s *server) connector() (connectors.Connector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil, errorf(CodeInvalidRequest, "no connection: call open first")
	}
	return s.conn, nil
}

// handle answers request m: each method has a function of its own.
func (s *server) handle(ctx context.Context, m message) (any, error) {
	switch m.Method {
	case methodDescribe:
		return s.describe(m)
	case methodParse:
		return s.parse(m)
	case methodOpen:
		return s.open(ctx, m)
	case methodRun:
		return s.run(ctx, m)
	case methodStdin:
		return s.stdin(m)
	case methodPutBegin:
		return s.putBegin(m)
	case methodPutWrite, methodPutEnd, methodPutAbort:
		return s.putStep(m)
	case methodGetOpen:
		return s.getOpen(m)
	case methodGetRead, methodGetClose:
		return s.getStep(m)
	case methodClose:
		s.mu.Lock()
		conn := s.conn
		s.mu.Unlock()
		if conn != nil {
			return nil, conn.Close()
		}
		return nil, nil
	}
	return nil, errorf(CodeMethodNotFound, "unknown method %q", m.Method)
}

func (s *server) describe(m message) (any, error) {
	p, err := decode[describeParams](m.Params)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(p.Protocol, Version) {
		return nil, errorf(CodeProtocolVersion, "this plugin speaks protocol version %d; star-deploy offered %v", Version, p.Protocol)
	}
	res := describeResult{Protocol: Version, Scheme: s.f.Scheme(), Doc: s.f.Doc(), Parse: true, Fields: []fieldInfo{}}
	for _, f := range s.f.Fields() {
		res.Fields = append(res.Fields, fieldInfo{Name: f.Name, Type: f.Type, Default: f.Default, Doc: f.Doc, Secret: f.Secret})
	}
	return res, nil
}

func (s *server) parse(m message) (any, error) {
	p, err := decode[parseParams](m.Params)
	if err != nil {
		return nil, err
	}
	t, err := s.f.Parse(p.Addr, p.Data)
	if err != nil {
		return nil, errorf(CodeInvalidParams, "%v", err)
	}
	return infoOf(t), nil
}

// stdin feeds a running command's input.
func (s *server) stdin(m message) (any, error) {
	p, err := decode[stdinParams](m.Params)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	in := s.runs[string(p.ID)]
	s.mu.Unlock()
	if in == nil {
		return nil, errorf(CodeInvalidParams, "stdin: no running command with id %s takes input", p.ID)
	}
	if len(p.Data) > 0 {
		if _, err := in.pw.Write(p.Data); err != nil {
			return nil, fmt.Errorf("stdin: %w", err)
		}
	}
	if p.EOF {
		in.pw.Close()
	}
	return nil, nil
}

// putStep feeds a put (put.write), ends it (put.end: its result is the
// Put's) or aborts it (put.abort). The last two send only the handle.
func (s *server) putStep(m message) (any, error) {
	p, err := decode[putWriteParams](m.Params)
	if err != nil {
		return nil, err
	}
	put, err := s.put(p.Handle, m.Method != methodPutWrite)
	if err != nil {
		return nil, err
	}
	switch m.Method {
	case methodPutWrite:
		if _, err := put.pw.Write(p.Data); err != nil {
			return nil, err // the Put failed: this is its error
		}
		return nil, nil
	case methodPutAbort:
		put.cancel()
		put.pw.CloseWithError(errAborted)
		<-put.done
		return nil, nil
	}
	put.pw.Close()
	return nil, <-put.done
}

// getStep reads from a get (get.read) or closes it (get.close, which sends
// only the handle; closing an unknown handle is no error).
func (s *server) getStep(m message) (any, error) {
	p, err := decode[getReadParams](m.Params)
	if err != nil {
		return nil, err
	}
	closing := m.Method == methodGetClose
	s.mu.Lock()
	g := s.gets[p.Handle]
	if closing {
		delete(s.gets, p.Handle)
	}
	s.mu.Unlock()
	switch {
	case closing && g != nil:
		g.cancel()
		g.pr.CloseWithError(errors.New("get closed by star-deploy"))
		return nil, nil
	case closing:
		return nil, nil
	case g == nil:
		return nil, errorf(CodeInvalidParams, "get.read: no open file with handle %q", p.Handle)
	}
	buf := make([]byte, min(max(p.Max, 1), ChunkSize))
	n, err := io.ReadFull(g.pr, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return getReadResult{Data: buf[:n], EOF: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return getReadResult{Data: buf[:n]}, nil
}

func (s *server) open(ctx context.Context, m message) (any, error) {
	p, err := decode[openParams](m.Params)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.conn != nil || s.opening {
		s.mu.Unlock()
		return nil, errorf(CodeInvalidRequest, "open: a plugin process serves one connection, and it is open")
	}
	s.opening = true
	s.mu.Unlock()
	conn, err := s.f.Open(ctx, p.Target.target())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opening = false
	if err != nil {
		return nil, err
	}
	s.conn = conn
	c := conn.Capabilities()
	return openResult{Capabilities: capsInfo{MaxSessions: c.MaxSessions, PTY: c.PTY, AtomicPut: c.AtomicPut}}, nil
}

// run runs a command, sending its output as notifications before the
// response. Standard output is only streamed (StreamOnly), standard error
// kept only a little: the client keeps what the Result holds.
func (s *server) run(ctx context.Context, m message) (any, error) {
	s.mu.Lock()
	in := s.runs[string(m.ID)]
	s.mu.Unlock()
	if in != nil {
		defer func() {
			s.mu.Lock()
			delete(s.runs, string(m.ID))
			s.mu.Unlock()
			in.pr.CloseWithError(errors.New("the command has ended"))
		}()
	}
	p, err := decode[runParams](m.Params)
	if err != nil {
		return nil, err
	}
	conn, err := s.connector()
	if err != nil {
		return nil, err
	}
	cmd := connectors.Command{
		Script:     p.Script,
		PTY:        p.PTY,
		Stdout:     &outWriter{s: s, id: m.ID, stream: "stdout"},
		Stderr:     &outWriter{s: s, id: m.ID, stream: "stderr"},
		StreamOnly: true,
		MaxOutput:  4 << 10,
	}
	if in != nil {
		cmd.Stdin = in.pr
	}
	res, err := conn.Run(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return runResult{ExitCode: res.ExitCode}, nil
}

// outWriter sends what a command writes to one stream as output
// notifications of at most ChunkSize bytes.
type outWriter struct {
	s      *server
	id     json.RawMessage
	stream string
}

func (o *outWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), ChunkSize)
		b, _ := json.Marshal(outputParams{ID: o.id, Stream: o.stream, Data: p[:k]})
		o.s.send(message{Method: methodOutput, Params: b})
		p = p[k:]
	}
	return n, nil
}

func (s *server) newHandle(prefix string) string {
	s.handles++
	return prefix + strconv.Itoa(s.handles)
}

// startTransfer runs move, the connector's Put or Get at one end of a new
// pipe, in a goroutine the server waits for, and registers it in m under a
// new handle, which the result names.
func (s *server) startTransfer(m map[string]*transfer, prefix string, move func(ctx context.Context, conn connectors.Connector, t *transfer) error) (any, error) {
	conn, err := s.connector()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(s.ctx)
	t := &transfer{pr: pr, pw: pw, cancel: cancel, done: make(chan error, 1)}
	s.mu.Lock()
	h := s.newHandle(prefix)
	m[h] = t
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		t.done <- move(ctx, conn, t)
	}()
	return handleResult{Handle: h}, nil
}

func (s *server) putBegin(m message) (any, error) {
	p, err := decode[putBeginParams](m.Params)
	if err != nil {
		return nil, err
	}
	return s.startTransfer(s.puts, "put-", func(ctx context.Context, conn connectors.Connector, t *transfer) error {
		err := conn.Put(ctx, p.Path, t.pr, fs.FileMode(p.Mode))
		if err == nil {
			t.pr.CloseWithError(errors.New("the put has ended"))
		} else {
			t.pr.CloseWithError(err)
		}
		return err
	})
}

// put returns the put of handle h, removing it when remove is set.
func (s *server) put(h string, remove bool) (*transfer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	put := s.puts[h]
	if put == nil {
		return nil, errorf(CodeInvalidParams, "no put with handle %q", h)
	}
	if remove {
		delete(s.puts, h)
	}
	return put, nil
}

func (s *server) getOpen(m message) (any, error) {
	p, err := decode[getOpenParams](m.Params)
	if err != nil {
		return nil, err
	}
	return s.startTransfer(s.gets, "get-", func(ctx context.Context, conn connectors.Connector, t *transfer) error {
		err := conn.Get(ctx, p.Path, t.pw)
		t.pw.CloseWithError(err)
		return err
	})
}
