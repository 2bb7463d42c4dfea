package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keyring caches decrypted identity files for a run, so that an encrypted
// key asks for its passphrase once, not once per host.
type keyring struct {
	mu      sync.Mutex
	signers map[string]ssh.Signer
	failed  map[string]error
}

// agentSocket is the ssh-agent socket of s: IdentityAgent of the SSH
// config, else SSH_AUTH_SOCK; "" when there is none.
func agentSocket(s settings) string {
	switch s.IdentityAgent {
	case "none":
		return ""
	case "":
		return os.Getenv("SSH_AUTH_SOCK")
	}
	return s.IdentityAgent
}

// authMethods returns the methods OpenSSH would try for s, each key offered
// once: agent keys (only those of IdentityFiles when IdentitiesOnly), then
// the identity files, then the password when one is set, unless guard
// refuses it when its turn comes. The closer closes the agent connection.
func (f *Factory) authMethods(s settings, guard *passwordGuard) ([]ssh.AuthMethod, io.Closer, error) {
	var signers []ssh.Signer
	var notes []string
	seen := map[string]bool{}
	add := func(sg ssh.Signer) {
		k := string(sg.PublicKey().Marshal())
		if !seen[k] {
			seen[k] = true
			signers = append(signers, sg)
		}
	}

	var fileSigners []ssh.Signer
	var filePubs [][]byte
	for _, p := range s.IdentityFiles {
		sg, pub, err := f.identity(p, s)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			notes = append(notes, err.Error())
		case sg != nil:
			fileSigners = append(fileSigners, sg)
			filePubs = append(filePubs, sg.PublicKey().Marshal())
		}
		if pub != nil {
			filePubs = append(filePubs, pub.Marshal())
		}
	}

	var closer io.Closer
	if s.AllowAgent && s.IdentityAgent != "none" {
		if sock := agentSocket(s); sock != "" {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				notes = append(notes, fmt.Sprintf("ssh agent at %s: %v", sock, err))
			} else {
				closer = conn
				agentSigners, err := agent.NewClient(conn).Signers()
				if err != nil {
					notes = append(notes, fmt.Sprintf("ssh agent at %s: %v", sock, err))
				}
				for _, sg := range agentSigners {
					if !s.IdentitiesOnly || containsKey(filePubs, sg.PublicKey().Marshal()) {
						add(sg)
					}
				}
			}
		}
	}
	for _, sg := range fileSigners {
		add(sg)
	}

	var methods []ssh.AuthMethod
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
		guard.keys = true
	}
	if s.Password != "" {
		pw := s.Password
		methods = append(methods,
			ssh.PasswordCallback(func() (string, error) {
				if err := guard.refused(); err != nil {
					return "", err
				}
				return pw, nil
			}),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				if err := guard.refused(); err != nil {
					return nil, err
				}
				answers := make([]string, len(questions))
				for i, q := range questions {
					if strings.Contains(strings.ToLower(q), "password") {
						answers[i] = pw
					}
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		closeIf(closer)
		msg := "no way to authenticate: no ssh agent key, no identity file and no ssh_password"
		if len(notes) > 0 {
			msg += " (" + strings.Join(notes, "; ") + ")"
		}
		return nil, nil, errors.New(msg)
	}
	return methods, closer, nil
}

// passwordGuard withholds the password of one connection once the host
// key check has found a reason not to trust the host: OpenSSH's rule for a
// key that does not match known_hosts under StrictHostKeyChecking no. Its
// next method (the ClientConfig's AuthCallback) lets key authentication go
// on, and fails the handshake with the guard's error once only password
// and keyboard-interactive are left, before either is started: a
// keyboard-interactive exchange would reach the server before any answer
// could be withheld. Safe for concurrent use.
type passwordGuard struct {
	keys bool // publickey is among the methods (set before the handshake)

	mu  sync.Mutex
	err error
}

// next is an ssh.ClientConfig AuthCallback: (nil, nil) leaves the choice
// to x/crypto, which tries the methods in order, keys first.
func (g *passwordGuard) next(ac *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
	err := g.refused()
	if err == nil {
		return nil, nil
	}
	if g.keys && !slices.Contains(ac.TriedMethods, "publickey") && slices.Contains(ac.AllowedMethods, "publickey") {
		return nil, nil
	}
	return nil, err
}

// refuse makes every later password or keyboard-interactive attempt fail
// with err.
func (g *passwordGuard) refuse(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
	}
}

func (g *passwordGuard) refused() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// identity loads the private key at p, decrypting it with ssh_key_password
// or, on a terminal, a prompt. It returns the public key (from p.pub) when
// the private key cannot be used, so agent keys can still be matched.
func (f *Factory) identity(p string, s settings) (ssh.Signer, ssh.PublicKey, error) {
	f.keys.mu.Lock()
	defer f.keys.mu.Unlock()
	if f.keys.signers == nil {
		f.keys.signers, f.keys.failed = map[string]ssh.Signer{}, map[string]error{}
	}
	if sg, ok := f.keys.signers[p]; ok {
		return sg, nil, nil
	}
	if err, ok := f.keys.failed[p]; ok {
		return nil, publicKeyFile(p), err
	}
	pem, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("identity file %s: %w", p, err)
	}
	sg, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		pass := s.KeyPassphrase
		if pass == "" && f.opts.Prompt != nil {
			pass, err = f.opts.Prompt(fmt.Sprintf("Enter passphrase for key %s: ", p))
			if err != nil {
				err = fmt.Errorf("identity file %s: reading the passphrase: %w", p, err)
				f.keys.failed[p] = err
				return nil, missing.PublicKey, err
			}
		}
		if pass == "" {
			err = fmt.Errorf("identity file %s is encrypted: set ssh_key_password, load it into ssh-agent, or run on a terminal to be asked", p)
			f.keys.failed[p] = err
			return nil, missing.PublicKey, err
		}
		sg, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
		if err != nil {
			err = fmt.Errorf("identity file %s: wrong passphrase (%v)", p, errorWithout(err, pass))
			f.keys.failed[p] = err
			return nil, missing.PublicKey, err
		}
	} else if err != nil {
		err = fmt.Errorf("identity file %s: %w", p, err)
		f.keys.failed[p] = err
		return nil, publicKeyFile(p), err
	}
	f.keys.signers[p] = sg
	return sg, nil, nil
}

// publicKeyFile reads p.pub, or returns nil.
func publicKeyFile(p string) ssh.PublicKey {
	b, err := os.ReadFile(p + ".pub")
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return pub
}

// errorWithout returns err's text with secret removed, for errors that
// might echo what they were given.
func errorWithout(err error, secret string) string {
	msg := err.Error()
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "[redacted]")
	}
	return msg
}
