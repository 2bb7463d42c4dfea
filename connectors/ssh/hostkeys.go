package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks server host keys against known_hosts files with OpenSSH
// semantics (StrictHostKeyChecking yes, accept-new or no). It is safe for
// concurrent use by every connection of a run.
//
// x/crypto's parser rejects a whole file for one bad line, so each line is
// checked on its own first; bad lines become blank lines in a filtered copy
// (keeping line numbers) and are reported by warnings.
type hostKeys struct {
	files []string // as configured; files[0] receives new keys

	mu    sync.Mutex // guards state and serialises appends in this process
	state *hkState
}

// hkState is one load of the files.
type hkState struct {
	db    *knownhosts.HostKeyDB
	temps map[string]string // filtered copy -> original file
	warns []string
}

// original maps a filtered copy back to the file it came from.
func (st *hkState) original(name string) string {
	if o, ok := st.temps[name]; ok {
		return o
	}
	return name
}

// snapshot returns the current state.
func (h *hostKeys) snapshot() *hkState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

// HostKeyChangedError reports a server whose host key differs from the one
// known_hosts holds: possibly a man-in-the-middle attack.
type HostKeyChangedError struct {
	Host string // as looked up, "host:port"
	File string
	Line int
	Want string // fingerprint on file
	Got  string // fingerprint offered
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("WARNING: the host key of %s has changed, which may be a man-in-the-middle attack: "+
		"%s:%d has %s, the server offered %s; nothing was run. If the change is expected, remove the old key with `ssh-keygen -R %s -f %s` and connect again",
		e.Host, e.File, e.Line, e.Want, e.Got, knownhostsName(e.Host), e.File)
}

// newHostKeys loads files; missing ones count as empty.
func newHostKeys(files []string) (*hostKeys, error) {
	if len(files) == 0 {
		return nil, errors.New("no known_hosts file is configured")
	}
	h := &hostKeys{files: files}
	if err := h.load(); err != nil {
		return nil, err
	}
	return h, nil
}

// load (re)reads every file into a new state. Callers hold h.mu or own h
// exclusively. The filtered copies are removed once parsed.
func (h *hostKeys) load() error {
	st := &hkState{temps: map[string]string{}}
	defer func() {
		for tmp := range st.temps {
			os.Remove(tmp)
		}
	}()
	var filtered []string
	for _, f := range h.files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("known_hosts %s: %w", f, err)
		}
		lines := bytes.Split(b, []byte("\n"))
		for i, line := range lines {
			trimmed := bytes.TrimSpace(line)
			if len(trimmed) == 0 || trimmed[0] == '#' {
				continue
			}
			if _, _, _, _, _, err := ssh.ParseKnownHosts(line); err != nil {
				st.warns = append(st.warns, fmt.Sprintf("%s:%d: ignoring a line known_hosts cannot parse (%v)", f, i+1, err))
				lines[i] = nil
			}
		}
		tmp, err := os.CreateTemp("", "star-deploy-known_hosts-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(bytes.Join(lines, []byte("\n")))
		cerr := tmp.Close()
		if werr != nil || cerr != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("known_hosts %s: filtered copy: %v", f, errors.Join(werr, cerr))
		}
		st.temps[tmp.Name()] = f
		filtered = append(filtered, tmp.Name())
	}
	if len(filtered) == 0 {
		// An empty database: every host is unknown.
		tmp, err := os.CreateTemp("", "star-deploy-known_hosts-*")
		if err != nil {
			return err
		}
		tmp.Close()
		st.temps[tmp.Name()] = h.files[0]
		filtered = append(filtered, tmp.Name())
	}
	db, err := knownhosts.NewDB(filtered...)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	st.db = db
	h.state = st
	return nil
}

// warnings names the lines that were ignored.
func (h *hostKeys) warnings() []string {
	return append([]string(nil), h.snapshot().warns...)
}

// lookupName is the name known_hosts is searched for: the alias when set.
func lookupName(hostport, alias string) string {
	if alias == "" {
		return hostport
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		port = "22"
	}
	return net.JoinHostPort(alias, port)
}

// algorithms returns the host key algorithms to offer: those of the keys
// known for the host, so that a host known by its RSA key is not asked for
// its ed25519 key (golang/go#29286); nil for an unknown host.
func (h *hostKeys) algorithms(hostport, alias string) []string {
	return h.snapshot().db.HostKeyAlgorithms(lookupName(hostport, alias))
}

// callback returns the ssh.HostKeyCallback for a connection to hostport
// with StrictHostKeyChecking mode ("yes", "accept-new" or "no").
func (h *hostKeys) callback(hostport, alias, mode string) ssh.HostKeyCallback {
	name := lookupName(hostport, alias)
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		st := h.snapshot()
		err := st.db.HostKeyCallback()(name, remote, key)
		if err == nil {
			return nil
		}
		var revoked *xknownhosts.RevokedError
		if errors.As(err, &revoked) {
			return fmt.Errorf("the host key of %s (%s) is marked @revoked in %s:%d; refusing to connect",
				name, ssh.FingerprintSHA256(key), st.original(revoked.Revoked.Filename), revoked.Revoked.Line)
		}
		var keyErr *xknownhosts.KeyError
		if !errors.As(err, &keyErr) {
			return fmt.Errorf("checking the host key of %s: %w", name, err)
		}
		if mode == "no" {
			return nil
		}
		if len(keyErr.Want) > 0 {
			w := keyErr.Want[0]
			return changedError(st, name, w, key)
		}
		if mode == "yes" {
			host, port, _ := net.SplitHostPort(name)
			return fmt.Errorf("the host key of %s is not known (strict host key checking is on): add it with `ssh-keyscan -p %s %s >> %s` after checking its fingerprint %s, or set ssh_strict_host_key_checking=accept-new",
				name, port, host, h.files[0], ssh.FingerprintSHA256(key))
		}
		return h.accept(name, remote, key)
	}
}

// accept records a new host's key in the first file (accept-new). A mutex
// serialises this process's appends and an advisory lock on the file other
// processes'; under both, the file is read again so a key another
// connection just added is checked, not added twice.
func (h *hostKeys) accept(name string, remote net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	file := h.files[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("recording the host key of %s: %w", name, err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("recording the host key of %s: %w", name, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("recording the host key of %s: lock %s: %w", name, file, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if err := h.load(); err != nil {
		return err
	}
	err = h.state.db.HostKeyCallback()(name, remote, key)
	var keyErr *xknownhosts.KeyError
	switch {
	case err == nil:
		return nil // added meanwhile
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return changedError(h.state, name, keyErr.Want[0], key)
	}
	line := knownhosts.Line([]string{knownhostsName(name)}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if last, err := lastByte(file); err == nil && last != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("recording the host key of %s in %s: %w", name, file, err)
	}
	return h.load()
}

func lastByte(file string) (byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [1]byte
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return '\n', err
	}
	_, err = f.ReadAt(b[:], st.Size()-1)
	return b[0], err
}

func changedError(st *hkState, name string, w xknownhosts.KnownKey, got ssh.PublicKey) error {
	return &HostKeyChangedError{Host: name, File: st.original(w.Filename), Line: w.Line,
		Want: w.Key.Type() + " " + ssh.FingerprintSHA256(w.Key), Got: got.Type() + " " + ssh.FingerprintSHA256(got)}
}

// knownhostsName is how OpenSSH writes host:port in known_hosts and
// ssh-keygen -R: "host" for port 22, "[host]:port" otherwise.
func knownhostsName(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "22" {
		if err != nil {
			return hostport
		}
		return host
	}
	if _, err := strconv.Atoi(port); err != nil {
		return hostport
	}
	return "[" + host + "]:" + port
}
