package modules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/utils/ioutil"
)

// SSHRunner runs command on host, as `ssh HOST COMMAND` would: host is
// [USER@]HOST[:PORT] of a git+ssh:// source (USER and PORT only when the
// URL names them, so that the SSH configuration's User and Port apply),
// command is git-upload-pack 'PATH'. It copies stdin to the command's
// standard input (closing it at stdin's end of file) and the command's
// standard output to stdout, binary-safe and as the bytes arrive (git's
// pack protocol is a conversation). It returns when the command has
// exited, whether or not stdin has ended: an error when it could not run
// or exited with a status other than 0, which should hold (the head and
// tail of) what the command wrote to standard error, where git says why.
// Cancelling ctx stops the command.
//
// star-deploy fills it with its SSH connector, so that a git+ssh fetch
// reads the SSH configuration, known_hosts, keys and agent as a deploy
// host's connection does.
type SSHRunner func(ctx context.Context, host, command string, stdin io.Reader, stdout io.Writer) error

// sshAuth carries a fetch's SSHRunner, and its context, through go-git's
// transport.AuthMethod to sshTransport, which go-git's fetch and list call
// without either.
type sshAuth struct {
	ctx context.Context
	run SSHRunner
}

func (sshAuth) Name() string   { return "star-deploy-ssh" }
func (sshAuth) String() string { return "star-deploy's SSH connector" }

// sshTransport serves go-git's ssh:// endpoints whose AuthMethod is an
// sshAuth by running git-upload-pack through its SSHRunner and speaking
// the pack protocol (go-git's public packp types) over its standard input
// and output; any other AuthMethod goes to go-git's own SSH transport.
type sshTransport struct {
	fallback transport.Transport
}

// init makes go-git's ssh:// transport an sshTransport. go-git's table of
// transports is a global map without a lock: it is written here, before
// any goroutine of the program could be fetching.
func init() {
	client.InstallProtocol("ssh", sshTransport{fallback: client.Protocols["ssh"]})
}

func (t sshTransport) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	a, ok := auth.(sshAuth)
	if !ok {
		if t.fallback == nil {
			return nil, errors.New("no SSH transport")
		}
		return t.fallback.NewUploadPackSession(ep, auth)
	}
	return startSSHSession(a, ep)
}

func (t sshTransport) NewReceivePackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.ReceivePackSession, error) {
	if _, ok := auth.(sshAuth); !ok && t.fallback != nil {
		return t.fallback.NewReceivePackSession(ep, auth)
	}
	return nil, errors.New("modules never push")
}

// sshHost is the [USER@]HOST[:PORT] of ep.
func sshHost(ep *transport.Endpoint) string {
	h := strings.TrimSuffix(strings.TrimPrefix(ep.Host, "["), "]")
	if ep.Port != 0 {
		h = net.JoinHostPort(h, strconv.Itoa(ep.Port))
	} else if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if ep.User != "" {
		h = ep.User + "@" + h
	}
	return h
}

// uploadPackCommand is the command that serves the repository at path, as
// git's own ssh transport sends it: ssh://host/~user/repo names a path
// relative to a home directory, which git-upload-pack expands.
func uploadPackCommand(path string) string {
	if strings.HasPrefix(path, "/~") {
		path = path[1:]
	}
	return "git-upload-pack '" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}

// sshSession is one git-upload-pack run through an SSHRunner.
type sshSession struct {
	host, command string
	stdin         *io.PipeWriter
	stdout        *io.PipeReader
	cancel        context.CancelFunc
	done          chan struct{} // closed when the runner returned
	err           error         // the runner's error, once done

	advRefs  *packp.AdvRefs
	packRun  bool
	finished bool

	closeOnce sync.Once
	closeErr  error
}

func startSSHSession(a sshAuth, ep *transport.Endpoint) (*sshSession, error) {
	ctx, cancel := context.WithCancel(a.ctx)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &sshSession{host: sshHost(ep), command: uploadPackCommand(ep.Path), stdin: inW, stdout: outR,
		cancel: cancel, done: make(chan struct{})}
	go func() {
		err := a.run(ctx, s.host, s.command, inR, outW)
		s.err = err
		if err == nil {
			err = io.EOF
		}
		outW.CloseWithError(err)
		inR.CloseWithError(err)
		close(s.done)
	}()
	return s, nil
}

// failure is the error of a session whose output ended early: the
// runner's, which says what the remote git said, when it failed.
func (s *sshSession) failure(err error) error {
	s.finished = true
	s.stdin.Close()
	s.stdout.Close()
	<-s.done
	if s.err == nil {
		return fmt.Errorf("%s on %s: %w", s.command, s.host, err)
	}
	if msg := s.err.Error(); strings.Contains(msg, "does not appear to be a git repository") || strings.Contains(msg, "No such file or directory") {
		return fmt.Errorf("%w: %w", transport.ErrRepositoryNotFound, s.err)
	}
	return s.err
}

func (s *sshSession) AdvertisedReferences() (*packp.AdvRefs, error) {
	return s.AdvertisedReferencesContext(context.Background())
}

func (s *sshSession) AdvertisedReferencesContext(ctx context.Context) (*packp.AdvRefs, error) {
	if s.advRefs != nil {
		return s.advRefs, nil
	}
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	ar := packp.NewAdvRefs()
	if err := ar.Decode(s.stdout); err != nil {
		var line *pktline.ErrorLine
		switch {
		case errors.As(err, &line):
			return nil, fmt.Errorf("%s on %s: %w", s.command, s.host, err)
		case errors.Is(err, packp.ErrEmptyAdvRefs):
			s.finish()
			return nil, transport.ErrEmptyRemoteRepository
		}
		return nil, s.failure(err)
	}
	if ar.IsEmpty() {
		return nil, transport.ErrEmptyRemoteRepository
	}
	transport.FilterUnsupportedCapabilities(ar.Capabilities)
	s.advRefs = ar
	return ar, nil
}

// UploadPack asks for what req wants, saying at once that it has no more
// to tell (no multi_ack: go-git's own transports do the same), and
// returns the response, whose Close ends the session.
func (s *sshSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	if req.IsEmpty() {
		s.finish()
		return nil, transport.ErrEmptyUploadPackRequest
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if _, err := s.AdvertisedReferencesContext(ctx); err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, s.cancel)
	s.packRun = true
	if err := req.UploadRequest.Encode(s.stdin); err != nil {
		return nil, s.failure(fmt.Errorf("send the wants: %w", err))
	}
	if err := req.UploadHaves.Encode(s.stdin, true); err != nil {
		return nil, s.failure(fmt.Errorf("send the haves: %w", err))
	}
	if err := pktline.NewEncoder(s.stdin).Encodef("done\n"); err != nil {
		return nil, s.failure(fmt.Errorf("send done: %w", err))
	}
	s.stdin.Close()
	r, err := ioutil.NonEmptyReader(s.stdout)
	if errors.Is(err, ioutil.ErrEmptyReader) {
		s.Close()
		return nil, transport.ErrEmptyUploadPackRequest
	}
	if err != nil {
		return nil, s.failure(err)
	}
	res := packp.NewUploadPackResponse(req)
	if err := res.Decode(ioutil.NewReadCloser(r, s)); err != nil {
		s.Close()
		return nil, fmt.Errorf("the answer of %s on %s: %w", s.command, s.host, err)
	}
	return res, nil
}

// finish tells git-upload-pack that no pack is wanted (a flush), when none
// was asked for, and ends its input.
func (s *sshSession) finish() {
	if s.finished {
		return
	}
	s.finished = true
	if !s.packRun {
		s.stdin.Write(pktline.FlushPkt)
	}
	s.stdin.Close()
}

// Close ends the session and waits for the runner: git-upload-pack exits
// at the end of its input, and what it still writes (the flush after a
// pack, which go-git's reader leaves) is read and dropped, so that the
// command ends as it would under ssh; the fetch's context bounds a host
// that goes on writing. A second Close returns the first's error.
func (s *sshSession) Close() error {
	s.closeOnce.Do(func() {
		s.finish()
		go io.Copy(io.Discard, s.stdout)
		<-s.done
		s.cancel()
		if s.err != nil && s.packRun {
			s.closeErr = s.failure(s.err)
		}
	})
	return s.closeErr
}
