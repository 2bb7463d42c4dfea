package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/star-deploy/star-deploy/connectors"
)

// Version is the protocol version this package speaks. A client sends the
// versions it speaks in describe; the plugin answers with the one it
// picked.
const Version = 1

// Limits of the protocol.
const (
	// MaxMessage is the longest line either side may send, newline
	// included. A longer one is a protocol error that ends the plugin.
	MaxMessage = 1 << 20
	// ChunkSize is the most raw bytes one message carries: an output
	// notification, a stdin or put.write request, a get.read result.
	// Encoded in base64 it fits in MaxMessage with room to spare.
	ChunkSize = 256 << 10
)

// Error codes of the protocol, beyond JSON-RPC's own (-32700 to -32600).
// A plugin maps the errors of its host onto them so that star-deploy can
// tell a missing file from a failure.
const (
	CodeParseError      = -32700 // the line was not JSON
	CodeInvalidRequest  = -32600
	CodeMethodNotFound  = -32601
	CodeInvalidParams   = -32602
	CodeInternal        = -32603
	CodeNotExist        = -32001 // fs.ErrNotExist: a missing file or directory
	CodeUnsupported     = -32002 // errors.ErrUnsupported
	CodePermission      = -32003 // fs.ErrPermission
	CodeProtocolVersion = -32010 // none of the client's protocol versions is spoken
	CodeCancelled       = -32800 // the request was cancelled (cancel notification)
)

// Method names of protocol v1. "expand" (one inventory name, many
// targets) is reserved for a later version.
const (
	methodDescribe = "describe"
	methodParse    = "parse"
	methodOpen     = "open"
	methodRun      = "run"
	methodOutput   = "output" // notification, plugin to client
	methodStdin    = "stdin"
	methodCancel   = "cancel" // notification, client to plugin
	methodPutBegin = "put.begin"
	methodPutWrite = "put.write"
	methodPutEnd   = "put.commit"
	methodPutAbort = "put.abort"
	methodGetOpen  = "get.open"
	methodGetRead  = "get.read"
	methodGetClose = "get.close"
	methodClose    = "close"
)

// message is any JSON-RPC 2.0 message: a request (method and id), a
// notification (method, no id) or a response (id, result or error).
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Error is a JSON-RPC error object: what a plugin answered instead of a
// result. It wraps the sentinel its code stands for (fs.ErrNotExist,
// errors.ErrUnsupported, fs.ErrPermission, context.Canceled).
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel of e's code, or nil.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeNotExist:
		return fs.ErrNotExist
	case CodeUnsupported:
		return errors.ErrUnsupported
	case CodePermission:
		return fs.ErrPermission
	}
	return nil
}

// toError turns a Go error into the error object a plugin sends.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code := CodeInternal
	switch {
	case errors.Is(err, fs.ErrNotExist):
		code = CodeNotExist
	case errors.Is(err, errors.ErrUnsupported):
		code = CodeUnsupported
	case errors.Is(err, fs.ErrPermission):
		code = CodePermission
	case isCancel(err):
		code = CodeCancelled
	}
	return &Error{Code: code, Message: err.Error()}
}

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Parameters and results. []byte fields travel as base64 strings, as
// encoding/json writes them.

type describeParams struct {
	Protocol []int `json:"protocol"`
}

type describeResult struct {
	Protocol int         `json:"protocol"`
	Scheme   string      `json:"scheme"`
	Doc      string      `json:"doc"`
	Fields   []fieldInfo `json:"fields"`
	Parse    bool        `json:"parse,omitempty"`
}

type fieldInfo struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Default string `json:"default,omitempty"`
	Doc     string `json:"doc"`
	Secret  bool   `json:"secret,omitempty"`
}

type targetInfo struct {
	Scheme string            `json:"scheme,omitempty"`
	Name   string            `json:"name,omitempty"`
	Addr   string            `json:"addr"`
	Data   map[string]string `json:"data,omitempty"`
}

func (t targetInfo) target() connectors.Target {
	return connectors.Target{Scheme: t.Scheme, Name: t.Name, Addr: t.Addr, Data: t.Data}
}

func infoOf(t connectors.Target) targetInfo {
	return targetInfo{Scheme: t.Scheme, Name: t.Name, Addr: t.Addr, Data: t.Data}
}

type parseParams struct {
	Addr string            `json:"addr"`
	Data map[string]string `json:"data,omitempty"`
}

type openParams struct {
	Target targetInfo `json:"target"`
}

type capsInfo struct {
	MaxSessions int  `json:"max_sessions,omitempty"`
	PTY         bool `json:"pty,omitempty"`
	AtomicPut   bool `json:"atomic_put,omitempty"`
}

type openResult struct {
	Capabilities capsInfo `json:"capabilities"`
}

type runParams struct {
	Script string `json:"script"`
	Stdin  bool   `json:"stdin,omitempty"`
	PTY    bool   `json:"pty,omitempty"`
}

type runResult struct {
	ExitCode int `json:"exit_code"`
}

type outputParams struct {
	ID     json.RawMessage `json:"id"`
	Stream string          `json:"stream"` // "stdout" or "stderr"
	Data   []byte          `json:"data"`
}

type stdinParams struct {
	ID   json.RawMessage `json:"id"`
	Data []byte          `json:"data,omitempty"`
	EOF  bool            `json:"eof,omitempty"`
}

type cancelParams struct {
	ID json.RawMessage `json:"id"`
}

type putBeginParams struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

type handleResult struct {
	Handle string `json:"handle"`
}

type handleParams struct {
	Handle string `json:"handle"`
}

type putWriteParams struct {
	Handle string `json:"handle"`
	Data   []byte `json:"data"`
}

type getOpenParams struct {
	Path string `json:"path"`
}

type getReadParams struct {
	Handle string `json:"handle"`
	Max    int    `json:"max"`
}

type getReadResult struct {
	Data []byte `json:"data"`
	EOF  bool   `json:"eof,omitempty"`
}

type empty struct{}

func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// encode writes m as one line. Params and Result are already JSON; they
// are copied as they are rather than checked and compacted again by
// encoding/json, which matters for chunks of file content.
func encode(m message) []byte {
	b := make([]byte, 0, 64+len(m.Params)+len(m.Result))
	b = append(b, `{"jsonrpc":"2.0"`...)
	if len(m.ID) > 0 {
		b = append(b, `,"id":`...)
		b = append(b, m.ID...)
	}
	if m.Method != "" {
		b = append(b, `,"method":`...)
		b = strconvQuote(b, m.Method)
	}
	if len(m.Params) > 0 {
		b = append(b, `,"params":`...)
		b = append(b, m.Params...)
	}
	if len(m.Result) > 0 {
		b = append(b, `,"result":`...)
		b = append(b, m.Result...)
	}
	if m.Error != nil {
		e, _ := json.Marshal(m.Error)
		b = append(b, `,"error":`...)
		b = append(b, e...)
	}
	return append(b, "}\n"...)
}

func strconvQuote(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
