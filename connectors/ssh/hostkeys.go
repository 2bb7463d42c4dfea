package ssh

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks server host keys against known_hosts files with
// OpenSSH's semantics. One value serves every connection that uses the same
// files, whatever their StrictHostKeyChecking mode, and is safe for
// concurrent use.
//
// The files are parsed by x/crypto's knownhosts (through skeema/knownhosts,
// which also answers which host key algorithms to ask for). That parser
// rejects a whole file for one bad line, so each line is checked on its own
// first: bad lines are blanked in a private copy, which keeps the line
// numbers of the original, and are named by warnings.
//
// The parsed state is immutable and replaced whole when a key is recorded,
// so checks never wait for an append.
type hostKeys struct {
	files []string // as configured; files[0] receives new keys
	state atomic.Pointer[hkState]
	mu    sync.Mutex // serialises this process's appends; flock serialises processes
}

// HostKeyChangedError reports a server whose host key is not the one
// known_hosts holds for it: the host was reinstalled, or someone is in the
// middle. The connection is refused before any credential is sent.
type HostKeyChangedError struct {
	Host    string // as known_hosts and ssh-keygen -R name it: "db1", "[10.0.0.5]:2222"
	File    string // the known_hosts file holding the old key
	Line    int    // its line in File
	KeyType string // type of the old key, "ssh-ed25519"
	Want    string // fingerprint of the old key, "SHA256:…"
	Got     string // fingerprint of the key the server offered
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("WARNING: the host key of %s has changed (someone could be eavesdropping: a possible man-in-the-middle attack, "+
		"or the host was reinstalled); refusing to connect: known_hosts %s:%d has %s %s, the server offered %s; "+
		"if the change is expected, remove the old key with `ssh-keygen -R %s -f %s`",
		e.Host, e.File, e.Line, e.KeyType, e.Want, e.Got, shellQuote(e.Host), shellQuote(e.File))
}

// newHostKeys reads files. A missing file counts as empty; files[0] is
// where keys of new hosts are recorded (created 0600, its directory 0700).
func newHostKeys(files []string) (*hostKeys, error) {
	h := &hostKeys{files: slices.Clone(files)}
	if _, err := h.reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// warnings names the known_hosts lines that are ignored because they do
// not parse, one "known_hosts FILE:LINE: …" message each.
func (h *hostKeys) warnings() []string {
	return slices.Clone(h.state.Load().warns)
}

// algorithms returns the host key algorithms to ask a server for: those
// of the keys known for the host (certificate algorithms for a
// @cert-authority line), so that a host recorded with its RSA key is not
// asked for its ed25519 key and then refused (golang/go#29286). It returns
// nil for an unknown host: the client's defaults.
func (h *hostKeys) algorithms(hostport, alias string) []string {
	return h.state.Load().db.HostKeyAlgorithms(newHKTarget(hostport, alias).lookup)
}

// callback returns the ssh.HostKeyCallback for a connection to hostport
// ("db1:22", "[10.0.0.5]:2222"); a non-empty alias (HostKeyAlias) is
// looked up and recorded instead of the host, without the port, as OpenSSH
// does. mode is StrictHostKeyChecking:
//
//   - "yes": only a known, matching key is accepted;
//   - "accept-new": the key of an unknown host is recorded in the first
//     file and accepted, a known host must match;
//   - "no": any key is accepted and nothing is recorded, but a key that
//     known_hosts contradicts (a changed key, a bad certificate) is passed
//     to mismatch (when not nil) before the connection goes on: the caller
//     warns and withholds passwords, as OpenSSH does. An unknown host is
//     no mismatch. Either way, a key that known_hosts does not hold is
//     reported to unverified (when not nil): the host may be anyone, and
//     the caller forwards no agent to it.
//
// In every mode a key marked @revoked is refused, and a changed key (in
// "yes" and "accept-new") fails with *HostKeyChangedError.
func (h *hostKeys) callback(hostport, alias, mode string, mismatch func(error), unverified func()) ssh.HostKeyCallback {
	t := newHKTarget(hostport, alias)
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		switch mode {
		case "yes", "accept-new", "no":
		default:
			return fmt.Errorf("ssh_strict_host_key_checking: want yes, accept-new or no, got %q", mode)
		}
		st := h.state.Load()
		if err := st.checkRevoked(t, key); err != nil {
			return err
		}
		if mode == "no" {
			known, err := st.verify(t, key)
			if err != nil && mismatch != nil {
				mismatch(err)
			}
			if !known && unverified != nil {
				unverified()
			}
			return nil
		}
		known, err := st.verify(t, key)
		switch {
		case err != nil || known:
			return err
		case mode == "accept-new":
			return h.accept(t, key)
		}
		// Another process may have recorded the host since the files
		// were read.
		if st, err = h.reload(); err != nil {
			return err
		}
		if err := st.checkRevoked(t, key); err != nil {
			return err
		}
		if known, err := st.verify(t, key); err != nil || known {
			return err
		}
		return h.unknown(t, key)
	}
}

// reload reads the files again.
func (h *hostKeys) reload() (*hkState, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	srcs, err := h.read()
	if err != nil {
		return nil, err
	}
	st, err := parseKnownHosts(srcs)
	if err != nil {
		return nil, err
	}
	h.state.Store(st)
	return st, nil
}

// hkTarget is the host a connection checks.
type hkTarget struct {
	lookup     string // "host:port" searched for in known_hosts
	name       string // as known_hosts writes it: "db1", "[10.0.0.5]:2222", the alias
	host, port string // what is dialled
	alias      string
}

func newHKTarget(hostport, alias string) hkTarget {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "22"
	}
	t := hkTarget{lookup: net.JoinHostPort(host, port), host: host, port: port, alias: alias}
	if alias != "" {
		// OpenSSH uses HostKeyAlias as it is, without the port, unless it
		// is written "[alias]:port".
		t.lookup = net.JoinHostPort(alias, "22")
		if h, p, err := net.SplitHostPort(alias); err == nil && strings.HasPrefix(alias, "[") {
			t.lookup = net.JoinHostPort(h, p)
		}
	}
	t.name = knownhosts.Normalize(t.lookup)
	return t
}

// unknown is the error of "yes" for a host known_hosts does not list.
func (h *hostKeys) unknown(t hkTarget, key ssh.PublicKey) error {
	file := "~/.ssh/known_hosts"
	if len(h.files) > 0 && h.files[0] != "none" {
		file = h.files[0]
	}
	scan := fmt.Sprintf("ssh-keyscan -p %s %s >> %s", t.port, shellQuote(t.host), shellQuote(file))
	if t.alias != "" {
		scan = fmt.Sprintf("ssh-keyscan -p %s %s | sed 's/^[^ ]*/%s/' >> %s", t.port, shellQuote(t.host), t.name, shellQuote(file))
	}
	plain := plainKey(key)
	return fmt.Errorf("host key for %s is not known; add it with `%s`, or set ssh_strict_host_key_checking=accept-new (the server offered %s %s)",
		t.name, scan, plain.Type(), ssh.FingerprintSHA256(plain))
}

// accept records the key of a host that was unknown (accept-new). The
// mutex serialises this process's appends and an advisory lock on the file
// those of other processes; under both, the files are read again, so a key
// that another connection or process has just recorded is checked against,
// not recorded twice. The new line goes out in one O_APPEND write.
func (h *hostKeys) accept(t hkTarget, key ssh.PublicKey) error {
	key = plainKey(key) // OpenSSH records a certificate's plain key
	if len(h.files) == 0 || h.files[0] == "none" {
		return fmt.Errorf("host key for %s is not known and there is no known_hosts file to record it in; set ssh_known_hosts_file", t.name)
	}
	if strings.ContainsAny(t.name, " \t\r\n,*?!#") || strings.HasPrefix(t.name, "|") || strings.HasPrefix(t.name, "@") {
		return fmt.Errorf("record the host key of %q: the name cannot be written to known_hosts", t.name)
	}
	file := h.files[0]
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("record the host key of %s: %w", t.name, err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record the host key of %s: %w", t.name, err)
	}
	defer f.Close()
	unlock, err := lockFile(f)
	if err != nil {
		return fmt.Errorf("record the host key of %s: lock %s: %w", t.name, file, err)
	}
	defer unlock()

	srcs, err := h.read()
	if err != nil {
		return err
	}
	st, err := parseKnownHosts(srcs)
	if err != nil {
		return err
	}
	h.state.Store(st)
	if err := st.checkRevoked(t, key); err != nil {
		return err
	}
	if known, err := st.verify(t, key); err != nil || known {
		return err
	}

	line := []byte(xknownhosts.Line([]string{t.lookup}, key) + "\n")
	first := len(srcs) > 0 && srcs[0].name == file
	if first && len(srcs[0].data) > 0 && srcs[0].data[len(srcs[0].data)-1] != '\n' {
		line = append([]byte("\n"), line...)
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("record the host key of %s in %s: %w", t.name, file, err)
	}
	if first {
		srcs[0].data = append(slices.Clip(srcs[0].data), line...)
	} else if srcs, err = h.read(); err != nil {
		return err
	}
	if st, err = parseKnownHosts(srcs); err != nil {
		return err
	}
	h.state.Store(st)
	return nil
}

// lockWait bounds how long accept waits for another process's lock.
const lockWait = 30 * time.Second

// lockFile takes an exclusive advisory lock (flock) on f. Where the file
// system has no such locks, it goes on without: the in-process mutex still
// holds.
func lockFile(f *os.File) (unlock func(), err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	flock := func(how int) error {
		var ferr error
		if err := rc.Control(func(fd uintptr) { ferr = syscall.Flock(int(fd), how) }); err != nil {
			return err
		}
		return ferr
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := flock(syscall.LOCK_EX | syscall.LOCK_NB)
		switch {
		case err == nil:
			return func() { flock(syscall.LOCK_UN) }, nil
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EWOULDBLOCK):
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("another process has held it for %v", lockWait)
			}
			time.Sleep(5 * time.Millisecond)
		default:
			return func() {}, nil
		}
	}
}

// hkSource is the content of one known_hosts file.
type hkSource struct {
	name string
	data []byte
}

// read reads the files that exist.
func (h *hostKeys) read() ([]hkSource, error) {
	var srcs []hkSource
	for _, name := range h.files {
		if name == "none" { // OpenSSH's UserKnownHostsFile none
			continue
		}
		b, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read known_hosts: %w", err)
		}
		srcs = append(srcs, hkSource{name: name, data: b})
	}
	return srcs, nil
}

// hkState is one parse of the files.
type hkState struct {
	db      *knownhosts.HostKeyDB
	match   ssh.HostKeyCallback // db's, used with a probe key to list a host's lines
	origin  map[string]string   // private copy → configured file
	cas     map[hkPos]bool      // @cert-authority lines, by private copy and line
	revoked map[string]hkPos    // marshalled key → its @revoked line
	warns   []string
}

// hkPos is a line of a file.
type hkPos struct {
	file string
	line int
}

// hkKnown is a known_hosts line that matches a host.
type hkKnown struct {
	key  ssh.PublicKey
	file string // the configured file
	line int
	ca   bool // @cert-authority
}

// parseKnownHosts parses srcs. Lines that do not parse on their own are
// blanked in private copies (removed before it returns) and reported in
// warns; the copies keep the original line numbers.
func parseKnownHosts(srcs []hkSource) (*hkState, error) {
	st := &hkState{origin: map[string]string{}, cas: map[hkPos]bool{}, revoked: map[string]hkPos{}}
	var copies []string
	var lines [][][]byte
	if len(srcs) > 0 {
		dir, err := os.MkdirTemp("", "star-deploy-known_hosts-")
		if err != nil {
			return nil, fmt.Errorf("read known_hosts: %w", err)
		}
		defer os.RemoveAll(dir)
		for i, src := range srcs {
			cp := filepath.Join(dir, strconv.Itoa(i))
			st.origin[cp] = src.name
			ls := bytes.Split(src.data, []byte("\n"))
			for n, raw := range ls {
				marker, key, err := parseKnownHostsLine(raw)
				switch {
				case err != nil:
					st.warns = append(st.warns, fmt.Sprintf("known_hosts %s:%d: ignoring a line that does not parse: %v", src.name, n+1, err))
					ls[n] = nil
				case marker == "@cert-authority":
					st.cas[hkPos{cp, n + 1}] = true
				case marker == "@revoked":
					if _, dup := st.revoked[string(plainKey(key).Marshal())]; !dup {
						st.revoked[string(plainKey(key).Marshal())] = hkPos{src.name, n + 1}
					}
				}
			}
			if err := os.WriteFile(cp, bytes.Join(ls, []byte("\n")), 0o600); err != nil {
				return nil, fmt.Errorf("read known_hosts %s: private copy: %w", src.name, err)
			}
			copies = append(copies, cp)
			lines = append(lines, ls)
		}
	}
	// The line check above follows x/crypto's parser; should that parser
	// ever refuse more, blank the line it names and parse again.
	for {
		db, err := knownhosts.NewDB(copies...)
		if err == nil {
			st.db, st.match = db, db.HostKeyCallback()
			return st, nil
		}
		msg := err.Error()
		for cp, name := range st.origin {
			msg = strings.ReplaceAll(msg, cp, name)
		}
		i, n, ok := badLine(err, copies)
		if !ok || n > len(lines[i]) || len(lines[i][n-1]) == 0 {
			return nil, fmt.Errorf("read known_hosts: %s", msg)
		}
		st.warns = append(st.warns, fmt.Sprintf("known_hosts %s:%d: ignoring a line that does not parse: %s", srcs[i].name, n, msg))
		lines[i][n-1] = nil
		if err := os.WriteFile(copies[i], bytes.Join(lines[i], []byte("\n")), 0o600); err != nil {
			return nil, fmt.Errorf("read known_hosts %s: private copy: %w", srcs[i].name, err)
		}
	}
}

// badLine finds the copy and line number an x/crypto parse error names
// ("knownhosts: FILE:LINE: …").
func badLine(err error, copies []string) (i, line int, ok bool) {
	for i, cp := range copies {
		rest, found := strings.CutPrefix(err.Error(), "knownhosts: "+cp+":")
		if !found {
			continue
		}
		num, _, _ := strings.Cut(rest, ":")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			return i, n, true
		}
	}
	return 0, 0, false
}

// parseKnownHostsLine checks one line the way x/crypto's knownhosts
// parser does and returns its marker and key; blank lines and comments
// return a nil key.
func parseKnownHostsLine(raw []byte) (marker string, key ssh.PublicKey, err error) {
	if len(raw) >= bufio.MaxScanTokenSize-1 {
		return "", nil, fmt.Errorf("line longer than %d bytes", bufio.MaxScanTokenSize-2)
	}
	line := bytes.Trim(bytes.TrimSuffix(raw, []byte("\r")), " \t")
	if len(line) == 0 || line[0] == '#' {
		return "", nil, nil
	}
	word, rest := nextWord(line)
	if word == "@cert-authority" || word == "@revoked" {
		marker, line = word, rest
	}
	pattern, rest := nextWord(line)
	if strings.HasPrefix(pattern, "@") {
		return "", nil, fmt.Errorf("unknown marker %q", pattern)
	}
	if len(rest) == 0 {
		return "", nil, errors.New("no key type and key after the host pattern")
	}
	typ, rest := nextWord(rest)
	if len(rest) == 0 {
		return "", nil, errors.New("no key after the key type")
	}
	blob, _ := nextWord(rest)
	b, err := base64.StdEncoding.DecodeString(blob)
	if err != nil {
		return "", nil, fmt.Errorf("key is not base64: %v", err)
	}
	if key, err = ssh.ParsePublicKey(b); err != nil {
		return "", nil, err
	}
	if key.Type() != typ {
		return "", nil, fmt.Errorf("key type %s does not match the key, a %s", typ, key.Type())
	}
	if marker == "@revoked" {
		return marker, key, nil // its host pattern is not used
	}
	if strings.HasPrefix(pattern, "|") {
		parts := strings.Split(pattern, "|")
		if len(parts) != 4 || parts[1] != "1" {
			return "", nil, errors.New("hashed host is not |1|salt|hash")
		}
		for _, p := range parts[2:] {
			if _, err := base64.StdEncoding.DecodeString(p); err != nil {
				return "", nil, fmt.Errorf("hashed host is not base64: %v", err)
			}
		}
		return marker, key, nil
	}
	for p := range strings.SplitSeq(pattern, ",") {
		if p == "!" {
			return "", nil, errors.New("negation without a host")
		}
		p = strings.TrimPrefix(p, "!")
		if strings.HasPrefix(p, "[") {
			if _, _, err := net.SplitHostPort(p); err != nil {
				return "", nil, fmt.Errorf("host pattern %s: %v", p, err)
			}
		}
	}
	return marker, key, nil
}

// nextWord is x/crypto knownhosts' word splitter.
func nextWord(line []byte) (string, []byte) {
	i := bytes.IndexAny(line, "\t ")
	if i == -1 {
		return string(line), nil
	}
	return string(line[:i]), bytes.Trim(line[i:], " \t")
}

// lookup lists the lines that match host ("host:port"), @cert-authority
// ones included, in file and line order. Probing with a key no line holds
// makes the matcher return every matching line.
func (st *hkState) lookup(host string) []hkKnown {
	var keyErr *xknownhosts.KeyError
	if !errors.As(st.match(host, &net.TCPAddr{IP: net.IPv4zero}, probeKey{}), &keyErr) {
		return nil
	}
	known := make([]hkKnown, 0, len(keyErr.Want))
	for _, w := range keyErr.Want {
		known = append(known, hkKnown{key: w.Key, file: st.origin[w.Filename], line: w.Line, ca: st.cas[hkPos{w.Filename, w.Line}]})
	}
	return known
}

// verify checks key against the lines for t. It returns known=false and
// no error when no line matches the host. OpenSSH's rules, plus one:
//
//   - a host certificate is accepted when a @cert-authority line for the
//     host lists its signer and it is valid for the host; otherwise its
//     plain key is checked like any key;
//   - a plain key is accepted when a plain line for the host holds it; a
//     plain line for the host with another key means the key changed;
//   - stricter than OpenSSH: a host covered by @cert-authority lines but
//     without plain lines is not "unknown" to a plain key or a bad
//     certificate, which are refused (accept-new would otherwise let a
//     man in the middle without the CA's signature in).
func (st *hkState) verify(t hkTarget, key ssh.PublicKey) (known bool, err error) {
	var plain, cas []hkKnown
	for _, k := range st.lookup(t.lookup) {
		if k.ca {
			cas = append(cas, k)
		} else {
			plain = append(plain, k)
		}
	}
	var certErr error
	if cert, ok := key.(*ssh.Certificate); ok {
		if len(cas) > 0 {
			cc := ssh.CertChecker{
				IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
					return slices.ContainsFunc(cas, func(k hkKnown) bool { return sameKey(k.key, auth) })
				},
				IsRevoked: func(c *ssh.Certificate) bool { return st.revokedLine(c) != nil },
			}
			if certErr = cc.CheckHostKey(t.lookup, nil, cert); certErr == nil {
				return true, nil
			}
		}
		key = cert.Key
	}
	if slices.ContainsFunc(plain, func(k hkKnown) bool { return sameKey(k.key, key) }) {
		return true, nil
	}
	switch {
	case certErr != nil:
		return true, fmt.Errorf("the host certificate of %s is not acceptable: %v (known_hosts %s:%d trusts host certificates signed by %s %s); refusing to connect",
			t.name, certErr, cas[0].file, cas[0].line, cas[0].key.Type(), ssh.FingerprintSHA256(cas[0].key))
	case len(plain) > 0:
		return true, changedError(t, plain, key)
	case len(cas) > 0:
		return true, fmt.Errorf("the server %s offered a plain %s key %s, but known_hosts %s:%d accepts only host certificates signed by %s %s for it; refusing to connect",
			t.name, key.Type(), ssh.FingerprintSHA256(key), cas[0].file, cas[0].line, cas[0].key.Type(), ssh.FingerprintSHA256(cas[0].key))
	}
	return false, nil
}

// changedError names the line of the same key type as got, or the first.
func changedError(t hkTarget, plain []hkKnown, got ssh.PublicKey) *HostKeyChangedError {
	w := plain[0]
	if i := slices.IndexFunc(plain, func(k hkKnown) bool { return k.key.Type() == got.Type() }); i >= 0 {
		w = plain[i]
	}
	return &HostKeyChangedError{Host: t.name, File: w.file, Line: w.line, KeyType: w.key.Type(),
		Want: ssh.FingerprintSHA256(w.key), Got: ssh.FingerprintSHA256(got)}
}

// checkRevoked refuses a key, or a certificate's key or signer, that a
// @revoked line lists (for any host, as x/crypto reads them).
func (st *hkState) checkRevoked(t hkTarget, key ssh.PublicKey) error {
	if cert, ok := key.(*ssh.Certificate); ok {
		if pos := st.revoked[string(cert.SignatureKey.Marshal())]; pos.line > 0 {
			return fmt.Errorf("the host certificate of %s is signed by %s %s, which is marked @revoked in known_hosts %s:%d; refusing to connect",
				t.name, cert.SignatureKey.Type(), ssh.FingerprintSHA256(cert.SignatureKey), pos.file, pos.line)
		}
	}
	if pos := st.revokedLine(key); pos != nil {
		plain := plainKey(key)
		return fmt.Errorf("the host key of %s (%s %s) is marked @revoked in known_hosts %s:%d; refusing to connect",
			t.name, plain.Type(), ssh.FingerprintSHA256(plain), pos.file, pos.line)
	}
	return nil
}

// revokedLine returns the @revoked line of key (a certificate's plain key
// or its signer), or nil.
func (st *hkState) revokedLine(key ssh.PublicKey) *hkPos {
	if pos, ok := st.revoked[string(plainKey(key).Marshal())]; ok {
		return &pos
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		if pos, ok := st.revoked[string(cert.SignatureKey.Marshal())]; ok {
			return &pos
		}
	}
	return nil
}

// plainKey is the key a certificate certifies, or key itself.
func plainKey(key ssh.PublicKey) ssh.PublicKey {
	if cert, ok := key.(*ssh.Certificate); ok {
		return cert.Key
	}
	return key
}

func sameKey(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// probeKey is a key no known_hosts line holds: looking a host up with it
// lists all of the host's lines (skeema/knownhosts does the same).
type probeKey struct{}

func (probeKey) Type() string    { return "star-deploy-probe" }
func (probeKey) Marshal() []byte { return []byte("star-deploy probe key") }
func (probeKey) Verify([]byte, *ssh.Signature) error {
	return errors.New("internal error: probe key used")
}

// shellQuote quotes s for a POSIX shell when it needs it ("[h]:2222" is a
// glob that zsh refuses when nothing matches).
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-~") == "" && !strings.HasPrefix(s, "~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
