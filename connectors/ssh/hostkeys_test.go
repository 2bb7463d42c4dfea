package ssh

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hkRSAKeys are generated once: RSA key generation is slow under -race.
var hkRSAKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 2)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// hkSigner returns a new host key of typ ("ed25519", "ecdsa"), or for
// "rsa" and "rsa2" one of two fixed RSA keys.
func hkSigner(t testing.TB, typ string) ssh.Signer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch typ {
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		key = hkRSAKeys()[0]
	case "rsa2":
		key = hkRSAKeys()[1]
	default:
		t.Fatalf("hkSigner: unknown type %q", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hkPub(t testing.TB, typ string) ssh.PublicKey { return hkSigner(t, typ).PublicKey() }

// hkLine is a known_hosts line for host ("db1", "[127.0.0.1]:2222", a pattern).
func hkLine(host string, key ssh.PublicKey) string {
	return host + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// hkFile writes lines to a new known_hosts file and returns its path.
func hkFile(t testing.TB, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func hkNew(t testing.TB, files ...string) *hostKeys {
	t.Helper()
	h, err := newHostKeys(files)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hkCheck runs the callback the way the SSH client does, with the remote
// address of a connection to 127.0.0.1 (names are not resolved: no DNS).
func hkCheck(h *hostKeys, hostport, alias, mode string, key ssh.PublicKey) error {
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	if _, port, err := net.SplitHostPort(hostport); err == nil {
		remote.Port, _ = strconv.Atoi(port)
	}
	return h.callback(hostport, alias, mode, nil, nil)(hostport, remote, key)
}

func hkRead(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hkMustContain(t testing.TB, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\nlacks %q", err, w)
		}
	}
}

func TestHostKeysUnknownHost(t *testing.T) {
	key := hkPub(t, "ed25519")
	for _, tc := range []struct {
		hostport, name string
	}{
		{"127.0.0.1:2222", "[127.0.0.1]:2222"},
		{"db1:22", "db1"},
		{"[::1]:2222", "[::1]:2222"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("yes", func(t *testing.T) {
				kh := filepath.Join(t.TempDir(), "ssh", "known_hosts")
				h := hkNew(t, kh)
				host, port, _ := net.SplitHostPort(tc.hostport)
				err := hkCheck(h, tc.hostport, "", "yes", key)
				hkMustContain(t, err, fmt.Sprintf("host key for %s is not known; add it with `ssh-keyscan -p %s %s >> %s`, or set ssh_strict_host_key_checking=accept-new", tc.name, port, host, kh),
					ssh.FingerprintSHA256(key))
				if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("yes created %s: %v", kh, err)
				}
			})
			t.Run("no", func(t *testing.T) {
				kh := filepath.Join(t.TempDir(), "known_hosts")
				h := hkNew(t, kh)
				if err := hkCheck(h, tc.hostport, "", "no", key); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("no created %s: %v", kh, err)
				}
			})
			t.Run("accept-new", func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "ssh")
				kh := filepath.Join(dir, "known_hosts")
				h := hkNew(t, kh, filepath.Join(dir, "known_hosts2"))
				if got := h.algorithms(tc.hostport, ""); got != nil {
					t.Errorf("algorithms of an unknown host = %q, want nil", got)
				}
				for range 3 {
					if err := hkCheck(h, tc.hostport, "", "accept-new", key); err != nil {
						t.Fatal(err)
					}
				}
				if got, want := hkRead(t, kh), hkLine(tc.name, key)+"\n"; got != want {
					t.Errorf("known_hosts =\n%q\nwant\n%q", got, want)
				}
				if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
					t.Errorf("known_hosts mode %v, want 0600", st.Mode().Perm())
				}
				if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
					t.Errorf("directory mode %v, want 0700", st.Mode().Perm())
				}
				if got, want := h.algorithms(tc.hostport, ""), []string{ssh.KeyAlgoED25519}; !slices.Equal(got, want) {
					t.Errorf("algorithms after accept-new = %q, want %q", got, want)
				}
				// A second reader, strict, knows the host now.
				if err := hkCheck(hkNew(t, kh), tc.hostport, "", "yes", key); err != nil {
					t.Error(err)
				}
				hkOpenSSHFinds(t, kh, tc.name, key)
			})
		})
	}
}

// hkOpenSSHFinds checks with ssh-keygen -F that OpenSSH reads the line
// recorded for name, when ssh-keygen is installed.
func hkOpenSSHFinds(t *testing.T, kh, name string, key ssh.PublicKey) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Log("ssh-keygen is not installed; not checking the line with OpenSSH")
		return
	}
	out, err := exec.Command("ssh-keygen", "-F", name, "-f", kh).CombinedOutput()
	if err != nil || !strings.Contains(string(out), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))) {
		t.Errorf("ssh-keygen -F %s -f %s: %v\n%s", name, kh, err, out)
	}
}

func TestHostKeysBadMode(t *testing.T) {
	h := hkNew(t, filepath.Join(t.TempDir(), "known_hosts"))
	hkMustContain(t, hkCheck(h, "db1:22", "", "ask", hkPub(t, "ed25519")), `want yes, accept-new or no, got "ask"`)
}

func TestHostKeysAcceptNewAppendsOnItsOwnLine(t *testing.T) {
	old, key := hkPub(t, "ed25519"), hkPub(t, "ed25519")
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(hkLine("db1", old)), 0o644) // no final newline
	h := hkNew(t, kh)
	if err := hkCheck(h, "db2:22", "", "accept-new", key); err != nil {
		t.Fatal(err)
	}
	if got, want := hkRead(t, kh), hkLine("db1", old)+"\n"+hkLine("db2", key)+"\n"; got != want {
		t.Errorf("known_hosts =\n%s\nwant\n%s", got, want)
	}
	if st, _ := os.Stat(kh); st.Mode().Perm() != 0o644 {
		t.Errorf("an existing file's mode changed to %v", st.Mode().Perm())
	}
	for _, host := range []string{"db1:22", "db2:22"} {
		want := old
		if host == "db2:22" {
			want = key
		}
		if err := hkCheck(h, host, "", "yes", want); err != nil {
			t.Error(err)
		}
	}
}

// 100 new hosts and 20 connections to one more new host, at once, through
// three checkers on the same file (each holds its own open file, so their
// flocks exclude each other as separate processes' do): every key is
// recorded exactly once.
func TestHostKeysAcceptNewConcurrent(t *testing.T) {
	const distinct, same, checkers = 100, 20, 3
	kh := filepath.Join(t.TempDir(), ".ssh", "known_hosts")
	var hs []*hostKeys
	for range checkers {
		hs = append(hs, hkNew(t, kh))
	}
	keys := make([]ssh.PublicKey, distinct+1)
	for i := range keys {
		keys[i] = hkPub(t, "ed25519")
	}
	var wg sync.WaitGroup
	errs := make(chan error, distinct+same)
	for i := range distinct + same {
		wg.Go(func() {
			host, key := fmt.Sprintf("h%03d.example:2222", i), keys[min(i, distinct)]
			if i >= distinct {
				host = "shared.example:22"
			}
			if err := hkCheck(hs[i%checkers], host, "", "accept-new", key); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	lines := strings.Split(strings.TrimSuffix(hkRead(t, kh), "\n"), "\n")
	if len(lines) != distinct+1 {
		t.Fatalf("known_hosts has %d lines, want %d", len(lines), distinct+1)
	}
	seen := map[string]bool{}
	for i, l := range lines {
		_, hosts, _, _, _, err := ssh.ParseKnownHosts([]byte(l))
		if err != nil {
			t.Fatalf("line %d %q: %v", i+1, l, err)
		}
		seen[strings.Join(hosts, ",")] = true
	}
	if !seen["shared.example"] || !seen["[h000.example]:2222"] || !seen["[h099.example]:2222"] || len(seen) != distinct+1 {
		t.Errorf("hosts recorded: %d distinct, want %d", len(seen), distinct+1)
	}
	// Every checker, strict now, knows every host.
	for _, h := range hs {
		for i := range distinct {
			if err := hkCheck(h, fmt.Sprintf("h%03d.example:2222", i), "", "yes", keys[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The same across real processes: this test binary, run again as helpers.
func TestHostKeysAcceptNewAcrossProcesses(t *testing.T) {
	if kh := os.Getenv("STAR_DEPLOY_HOSTKEYS_HELPER"); kh != "" {
		hkHelperProcess(t, kh, os.Getenv("STAR_DEPLOY_HOSTKEYS_HELPER_ID"))
		return
	}
	const procs, perProc = 4, 25
	kh := filepath.Join(t.TempDir(), "known_hosts")
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := range procs {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHostKeysAcceptNewAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STAR_DEPLOY_HOSTKEYS_HELPER="+kh, "STAR_DEPLOY_HOSTKEYS_HELPER_ID="+strconv.Itoa(i))
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	lines := strings.Split(strings.TrimSuffix(hkRead(t, kh), "\n"), "\n")
	if len(lines) != procs*perProc+1 {
		t.Fatalf("known_hosts has %d lines, want %d:\n%s", len(lines), procs*perProc+1, strings.Join(lines, "\n"))
	}
	h := hkNew(t, kh)
	if len(h.warnings()) > 0 {
		t.Errorf("warnings: %q", h.warnings())
	}
	if got := h.algorithms("shared.example:22", ""); !slices.Equal(got, []string{ssh.KeyAlgoED25519}) {
		t.Errorf("shared host: algorithms %q", got)
	}
}

func hkHelperProcess(t *testing.T, kh, id string) {
	// The shared host presents the same key to every process.
	shared, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)).Public())
	if err != nil {
		t.Fatal(err)
	}
	h := hkNew(t, kh)
	var wg sync.WaitGroup
	for i := range 25 {
		wg.Go(func() {
			if err := hkCheck(h, fmt.Sprintf("p%s-h%02d.example:22", id, i), "", "accept-new", hkPub(t, "ed25519")); err != nil {
				t.Error(err)
			}
			if err := hkCheck(h, "shared.example:22", "", "accept-new", shared); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestHostKeysChanged(t *testing.T) {
	old, rsaOld, offered := hkPub(t, "ed25519"), hkPub(t, "rsa"), hkPub(t, "ed25519")
	for _, tc := range []struct {
		hostport, name, arg string
	}{
		{"127.0.0.1:2222", "[127.0.0.1]:2222", "'[127.0.0.1]:2222'"},
		{"db1:22", "db1", "db1"},
	} {
		for _, mode := range []string{"yes", "accept-new"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				content := "# comment\n" + hkLine("other", offered) + "\n" + hkLine(tc.name, rsaOld) + "\n" + hkLine(tc.name, old) + "\n"
				kh := filepath.Join(t.TempDir(), "known_hosts")
				os.WriteFile(kh, []byte(content), 0o600)
				h := hkNew(t, kh)
				err := hkCheck(h, tc.hostport, "", mode, offered)
				var changed *HostKeyChangedError
				if !errors.As(err, &changed) {
					t.Fatalf("err = %v, want *HostKeyChangedError", err)
				}
				want := HostKeyChangedError{Host: tc.name, File: kh, Line: 4, KeyType: ssh.KeyAlgoED25519,
					Want: ssh.FingerprintSHA256(old), Got: ssh.FingerprintSHA256(offered)}
				if *changed != want {
					t.Errorf("error = %+v\nwant %+v", *changed, want)
				}
				fix := fmt.Sprintf("`ssh-keygen -R %s -f %s`", tc.arg, kh)
				hkMustContain(t, err, "WARNING: the host key of "+tc.name+" has changed", "man-in-the-middle",
					fmt.Sprintf("known_hosts %s:4 has ssh-ed25519 %s, the server offered %s;", kh, want.Want, want.Got),
					"if the change is expected, remove the old key with "+fix)
				if got := hkRead(t, kh); got != content {
					t.Errorf("known_hosts changed:\n%s", got)
				}
				// A different RSA key is reported against the RSA line.
				err = hkCheck(h, tc.hostport, "", mode, hkPub(t, "rsa2"))
				if !errors.As(err, &changed) || changed.Line != 3 || changed.KeyType != ssh.KeyAlgoRSA {
					t.Errorf("other RSA key: err = %v", err)
				}

				// The fix works, as printed, with OpenSSH's ssh-keygen.
				if _, err := exec.LookPath("ssh-keygen"); err != nil {
					t.Log("ssh-keygen is not installed; not running the fix")
					return
				}
				if out, err := exec.Command("sh", "-c", strings.Trim(fix, "`")).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", fix, err, out)
				}
				h = hkNew(t, kh)
				hkMustContain(t, hkCheck(h, tc.hostport, "", "yes", offered), "is not known")
				if err := hkCheck(h, tc.hostport, "", "accept-new", offered); err != nil {
					t.Error(err)
				}
				if err := hkCheck(h, "other:22", "", "yes", offered); err != nil {
					t.Errorf("the fix removed another host: %v", err)
				}
			})
		}
	}
}

func TestHostKeysNoModeAcceptsChangedKeysWithoutWriting(t *testing.T) {
	kh := hkFile(t, hkLine("db1", hkPub(t, "ed25519")))
	before := hkRead(t, kh)
	h := hkNew(t, kh)
	for _, host := range []string{"db1:22", "db2:22"} {
		if err := hkCheck(h, host, "", "no", hkPub(t, "ecdsa")); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if hkRead(t, kh) != before {
		t.Error("mode no wrote to known_hosts")
	}
}

func TestHostKeysHashed(t *testing.T) {
	key, other := hkPub(t, "ed25519"), hkPub(t, "ed25519")
	kh := hkFile(t,
		hkLine(xknownhosts.HashHostname("[127.0.0.1]:2222"), key),
		hkLine(xknownhosts.HashHostname("db1"), other))
	h := hkNew(t, kh)
	if err := hkCheck(h, "127.0.0.1:2222", "", "yes", key); err != nil {
		t.Error(err)
	}
	if err := hkCheck(h, "db1:22", "", "yes", other); err != nil {
		t.Error(err)
	}
	var changed *HostKeyChangedError
	if err := hkCheck(h, "127.0.0.1:2222", "", "yes", other); !errors.As(err, &changed) || changed.Line != 1 {
		t.Errorf("changed hashed entry: err = %v", err)
	}
	hkMustContain(t, hkCheck(h, "127.0.0.1:22", "", "yes", key), "is not known")
	if got := h.algorithms("127.0.0.1:2222", ""); !slices.Equal(got, []string{ssh.KeyAlgoED25519}) {
		t.Errorf("algorithms = %q", got)
	}

	// A file hashed by OpenSSH itself.
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Log("ssh-keygen is not installed; not hashing with OpenSSH")
		return
	}
	kh = hkFile(t, hkLine("[127.0.0.1]:2222", key), hkLine("db1", other))
	if out, err := exec.Command("ssh-keygen", "-H", "-f", kh).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -H: %v\n%s", err, out)
	}
	if !strings.HasPrefix(hkRead(t, kh), "|1|") {
		t.Fatalf("ssh-keygen -H did not hash:\n%s", hkRead(t, kh))
	}
	h = hkNew(t, kh)
	if err := hkCheck(h, "127.0.0.1:2222", "", "yes", key); err != nil {
		t.Error(err)
	}
	if err := hkCheck(h, "db1:22", "", "yes", other); err != nil {
		t.Error(err)
	}
}

func TestHostKeysPorts(t *testing.T) {
	k22, k2222 := hkPub(t, "ed25519"), hkPub(t, "ed25519")
	kh := hkFile(t, hkLine("127.0.0.1", k22), hkLine("[127.0.0.1]:2222", k2222))
	h := hkNew(t, kh)
	for _, tc := range []struct {
		hostport string
		key      ssh.PublicKey
		want     string // "" = accepted
	}{
		{"127.0.0.1:22", k22, ""},
		{"127.0.0.1:2222", k2222, ""},
		{"127.0.0.1:22", k2222, "has changed"},
		{"127.0.0.1:2222", k22, "has changed"},
		{"127.0.0.1:2200", k22, "is not known"},
	} {
		err := hkCheck(h, tc.hostport, "", "yes", tc.key)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.hostport, err, tc.want)
		}
	}
}

func TestHostKeysWildcards(t *testing.T) {
	key := hkPub(t, "ed25519")
	kh := hkFile(t, hkLine("*.example.com,!bad.example.com", key), hkLine("10.0.0.?", key))
	h := hkNew(t, kh)
	for _, tc := range []struct {
		hostport string
		known    bool
	}{
		{"db.example.com:22", true},
		{"db.example.com:2222", true}, // OpenSSH applies port-less wildcards to every port
		{"bad.example.com:22", false},
		{"example.com:22", false},
		{"10.0.0.7:22", true},
		{"10.0.0.17:22", false},
	} {
		err := hkCheck(h, tc.hostport, "", "yes", key)
		if tc.known != (err == nil) {
			t.Errorf("%s: err = %v, want known=%v", tc.hostport, err, tc.known)
		}
	}
}

func TestHostKeysAlgorithms(t *testing.T) {
	ed, ec, rs := hkPub(t, "ed25519"), hkPub(t, "ecdsa"), hkPub(t, "rsa")
	ca := hkPub(t, "ed25519")
	kh := hkFile(t,
		hkLine("rsa-only", rs),
		hkLine("both", ed), hkLine("both", ec),
		"@cert-authority *.ca.example "+hkLine("", ca)[1:],
		hkLine("alias1", ec))
	h := hkNew(t, kh)
	for _, tc := range []struct {
		hostport, alias string
		want            []string
	}{
		{"rsa-only:22", "", []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}},
		{"both:22", "", []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256}},
		{"db.ca.example:22", "", []string{ssh.CertAlgoED25519v01}},
		{"10.0.0.5:22", "alias1", []string{ssh.KeyAlgoECDSA256}},
		{"rsa-only:2222", "", nil},
		{"unknown:22", "", nil},
	} {
		if got := h.algorithms(tc.hostport, tc.alias); !slices.Equal(got, tc.want) {
			t.Errorf("algorithms(%q, %q) = %q, want %q", tc.hostport, tc.alias, got, tc.want)
		}
	}
}

// hkServer is an in-process SSH server on 127.0.0.1 offering keys; it only
// completes handshakes.
func hkServer(t *testing.T, keys ...ssh.Signer) string {
	t.Helper()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	for _, k := range keys {
		cfg.AddHostKey(k)
	}
	return serveHandshakes(t, cfg)
}

// serveHandshakes serves cfg on a new listener on 127.0.0.1 until the test
// ends, rejecting every channel, and returns its address.
func serveHandshakes(t *testing.T, cfg *ssh.ServerConfig) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if sc, chans, reqs, err := ssh.NewServerConn(c, cfg); err == nil {
					go ssh.DiscardRequests(reqs)
					for ch := range chans {
						ch.Reject(ssh.Prohibited, "handshake only")
					}
					sc.Close()
				}
			}()
		}
	}()
	return l.Addr().String()
}

// hkHandshake connects to addr and returns the type of the host key the
// server proved, or the error.
func hkHandshake(t *testing.T, addr string, h *hostKeys, algos []string) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got string
	cb := h.callback(addr, "", "yes", nil, nil)
	cfg := &ssh.ClientConfig{User: "u", HostKeyAlgorithms: algos, HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
		got = key.Type()
		return cb(host, remote, key)
	}}
	sc, chans, reqs, err := ssh.NewClientConn(c, addr, cfg)
	if err != nil {
		return got, err
	}
	go ssh.DiscardRequests(reqs)
	go func() {
		for range chans {
		}
	}()
	sc.Close()
	return got, nil
}

// golang/go#29286: a server with several host keys, of which known_hosts
// holds one. Asked for its preferred key, it proves a key known_hosts does
// not have and looks like an impostor; algorithms asks for the known one.
func TestHostKeysHandshake(t *testing.T) {
	ed, ec, rs := hkSigner(t, "ed25519"), hkSigner(t, "ecdsa"), hkSigner(t, "rsa")
	ca := hkSigner(t, "ed25519")
	cert := &ssh.Certificate{Key: ed.PublicKey(), CertType: ssh.HostCert, KeyId: "host", ValidPrincipals: []string{"127.0.0.1"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(cert, ed)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		server []ssh.Signer
		known  func(name string) string
		want   string // key type proved with algorithms
		plain  bool   // the client's defaults succeed too
	}{
		{"rsa known, ed25519 and rsa offered", []ssh.Signer{ed, rs}, func(n string) string { return hkLine(n, rs.PublicKey()) }, ssh.KeyAlgoRSA, true},
		{"rsa known, ecdsa ed25519 and rsa offered", []ssh.Signer{ec, ed, rs}, func(n string) string { return hkLine(n, rs.PublicKey()) }, ssh.KeyAlgoRSA, false},
		{"ed25519 known, ecdsa ed25519 and rsa offered", []ssh.Signer{ec, ed, rs}, func(n string) string { return hkLine(n, ed.PublicKey()) }, ssh.KeyAlgoED25519, false},
		{"CA known, certificate and keys offered", []ssh.Signer{ec, certSigner, rs}, func(n string) string {
			return "@cert-authority " + hkLine(n, ca.PublicKey())
		}, ssh.CertAlgoED25519v01, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := hkServer(t, tc.server...)
			host, port, _ := net.SplitHostPort(addr)
			h := hkNew(t, hkFile(t, "# only one of the server's keys", tc.known("["+host+"]:"+port)))
			algos := h.algorithms(addr, "")
			got, err := hkHandshake(t, addr, h, algos)
			if err != nil || got != tc.want {
				t.Errorf("with algorithms %q: proved %s, err = %v; want %s", algos, got, err, tc.want)
			}
			got, err = hkHandshake(t, addr, h, nil)
			var changed *HostKeyChangedError
			switch {
			case tc.plain && err != nil:
				t.Errorf("client defaults: proved %s, err = %v", got, err)
			case !tc.plain && !errors.As(err, &changed):
				t.Errorf("client defaults: proved %s, err = %v; want *HostKeyChangedError (else this test shows nothing)", got, err)
			}
		})
	}
}

func TestHostKeysCertAuthority(t *testing.T) {
	ca, otherCA, hostKey := hkSigner(t, "ed25519"), hkSigner(t, "ed25519"), hkSigner(t, "ed25519")
	sign := func(signer ssh.Signer, principals ...string) *ssh.Certificate {
		c := &ssh.Certificate{Key: hostKey.PublicKey(), CertType: ssh.HostCert, KeyId: "db", ValidPrincipals: principals, ValidBefore: ssh.CertTimeInfinity}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return c
	}
	kh := hkFile(t, "@cert-authority *.example.com "+hkLine("", ca.PublicKey())[1:])
	before := hkRead(t, kh)
	h := hkNew(t, kh)
	for _, mode := range []string{"yes", "accept-new"} {
		if err := hkCheck(h, "db.example.com:22", "", mode, sign(ca, "db.example.com")); err != nil {
			t.Errorf("%s: certificate signed by the CA: %v", mode, err)
		}
		if err := hkCheck(h, "db.example.com:2222", "", mode, sign(ca, "db.example.com")); err != nil {
			t.Errorf("%s: certificate signed by the CA, other port: %v", mode, err)
		}
		hkMustContain(t, hkCheck(h, "db.example.com:22", "", mode, hostKey.PublicKey()),
			"offered a plain ssh-ed25519 key", "accepts only host certificates", kh+":1")
		hkMustContain(t, hkCheck(h, "db.example.com:22", "", mode, sign(ca, "web.example.com")),
			"host certificate of db.example.com is not acceptable", "principal")
		hkMustContain(t, hkCheck(h, "db.example.com:22", "", mode, sign(otherCA, "db.example.com")),
			"host certificate of db.example.com is not acceptable", "no authorities")
	}
	if hkRead(t, kh) != before {
		t.Errorf("known_hosts changed:\n%s", hkRead(t, kh))
	}
	// A certificate from a host no CA line covers is checked, and recorded,
	// as its plain key (OpenSSH).
	if err := hkCheck(h, "db.other.org:22", "", "accept-new", sign(otherCA, "db.other.org")); err != nil {
		t.Fatal(err)
	}
	if got, want := hkRead(t, kh), before+hkLine("db.other.org", hostKey.PublicKey())+"\n"; got != want {
		t.Errorf("known_hosts =\n%s\nwant\n%s", got, want)
	}
	if err := hkCheck(h, "db.other.org:22", "", "yes", hostKey.PublicKey()); err != nil {
		t.Error(err)
	}
}

func TestHostKeysRevoked(t *testing.T) {
	bad, ca := hkSigner(t, "ed25519"), hkSigner(t, "ed25519")
	cert := &ssh.Certificate{Key: hkPub(t, "ed25519"), CertType: ssh.HostCert, ValidPrincipals: []string{"db.example.com"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	kh := hkFile(t,
		hkLine("db1", bad.PublicKey()),
		"@revoked * "+hkLine("", bad.PublicKey())[1:],
		"@cert-authority *.example.com "+hkLine("", ca.PublicKey())[1:],
		"@revoked "+hkLine("unused-pattern", ca.PublicKey()))
	before := hkRead(t, kh)
	h := hkNew(t, kh)
	for _, mode := range []string{"yes", "accept-new", "no"} {
		hkMustContain(t, hkCheck(h, "db1:22", "", mode, bad.PublicKey()),
			"the host key of db1 (ssh-ed25519 "+ssh.FingerprintSHA256(bad.PublicKey())+") is marked @revoked in known_hosts "+kh+":2; refusing to connect")
		hkMustContain(t, hkCheck(h, "new-host:2222", "", mode, bad.PublicKey()), "is marked @revoked")
		hkMustContain(t, hkCheck(h, "db.example.com:22", "", mode, cert),
			"the host certificate of db.example.com is signed by ssh-ed25519 "+ssh.FingerprintSHA256(ca.PublicKey())+", which is marked @revoked in known_hosts "+kh+":4")
	}
	if hkRead(t, kh) != before {
		t.Errorf("known_hosts changed:\n%s", hkRead(t, kh))
	}
}

func TestHostKeysMalformedLines(t *testing.T) {
	a, b := hkPub(t, "ed25519"), hkPub(t, "ecdsa")
	edBlob := strings.Fields(hkLine("x", a))[2]
	lines := []struct {
		line string
		bad  bool
	}{
		{hkLine("a.example", a), false},
		{"this line is garbage", true},
		{"@bogus a.example ssh-ed25519 " + edBlob, true},
		{"@revoked @cert-authority a.example ssh-ed25519 " + edBlob, true},
		{"b.example ssh-ed25519 !!notbase64!!", true},
		{"b.example ssh-ed25519 aGVsbG8=", true}, // base64, not a key
		{"b.example ssh-rsa " + edBlob, true},    // type mismatch
		{"|2|c2FsdA==|aGFzaA== ssh-ed25519 " + edBlob, true},
		{"|1|!!|!! ssh-ed25519 " + edBlob, true},
		{"|1|c2FsdA== ssh-ed25519 " + edBlob, true},
		{"[b.example ssh-ed25519 " + edBlob, true},
		{"b.example,! ssh-ed25519 " + edBlob, true},
		{"b.example ssh-ed25519", true},
		{"lonely.example", true},
		{"b.example " + strings.Repeat("x", 70000), true}, // longer than x/crypto's scanner takes
		{"", false},
		{"   # a comment", false},
		{"@revoked * " + strings.Fields(hkLine("x", hkPub(t, "ecdsa")))[1] + " " + strings.Fields(hkLine("x", hkPub(t, "ecdsa")))[2], false},
		{"b.example,!c.example,,[d.example]:2222 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(b))) + " a comment\r", false},
	}
	var content []string
	var badLines []int
	for i, l := range lines {
		content = append(content, l.line)
		if l.bad {
			badLines = append(badLines, i+1)
		}
		// Each line is judged as x/crypto judges it alone.
		_, err := xknownhosts.New(hkFile(t, l.line))
		if l.bad != (err != nil) {
			t.Errorf("line %d: x/crypto says %v, the test says bad=%v", i+1, err, l.bad)
		}
	}
	kh := hkFile(t, content...)
	if _, err := xknownhosts.New(kh); err == nil {
		t.Fatal("x/crypto parses this file; the test shows nothing")
	}
	h := hkNew(t, kh)
	warns := h.warnings()
	if len(warns) != len(badLines) {
		t.Errorf("%d warnings, want %d:\n%s", len(warns), len(badLines), strings.Join(warns, "\n"))
	}
	for i, n := range badLines {
		if i < len(warns) && !strings.HasPrefix(warns[i], fmt.Sprintf("known_hosts %s:%d: ignoring a line that does not parse: ", kh, n)) {
			t.Errorf("warning %d = %q, want it to name line %d", i, warns[i], n)
		}
	}
	if err := hkCheck(h, "a.example:22", "", "yes", a); err != nil {
		t.Error(err)
	}
	if err := hkCheck(h, "b.example:22", "", "yes", b); err != nil {
		t.Error(err)
	}
	var changed *HostKeyChangedError
	if err := hkCheck(h, "b.example:22", "", "yes", hkPub(t, "ecdsa")); !errors.As(err, &changed) || changed.File != kh || changed.Line != len(lines) {
		t.Errorf("changed key: err = %v, want it at %s:%d", err, kh, len(lines))
	}
	if err := hkCheck(h, "d.example:2222", "", "yes", b); err != nil {
		t.Error(err)
	}
	hkMustContain(t, hkCheck(h, "c.example:22", "", "yes", b), "is not known")
	// Appending keeps the bad lines and still works.
	if err := hkCheck(h, "c.example:22", "", "accept-new", a); err != nil {
		t.Fatal(err)
	}
	if err := hkCheck(hkNew(t, kh), "c.example:22", "", "yes", a); err != nil {
		t.Error(err)
	}
}

// The parse-error fallback: should x/crypto refuse a line the line check
// passed, that line is dropped and named.
func TestHostKeysBadLineFallback(t *testing.T) {
	i, n, ok := badLine(errors.New("knownhosts: /tmp/x/1:17: knownhosts: missing host pattern"), []string{"/tmp/x/0", "/tmp/x/1"})
	if !ok || i != 1 || n != 17 {
		t.Errorf("badLine = %d, %d, %v; want 1, 17, true", i, n, ok)
	}
	if _, _, ok := badLine(errors.New("open /tmp/x/0: no such file"), []string{"/tmp/x/0"}); ok {
		t.Error("badLine found a line in an error without one")
	}
}

func TestHostKeysAlias(t *testing.T) {
	key := hkPub(t, "ed25519")
	kh := hkFile(t, hkLine("myalias", key))
	h := hkNew(t, kh)
	if err := hkCheck(h, "127.0.0.1:2222", "myalias", "yes", key); err != nil {
		t.Error(err)
	}
	hkMustContain(t, hkCheck(h, "127.0.0.1:2222", "", "yes", key), "host key for [127.0.0.1]:2222 is not known")
	hkMustContain(t, hkCheck(h, "127.0.0.1:2222", "myalias", "yes", hkPub(t, "ed25519")), "the host key of myalias has changed", "`ssh-keygen -R myalias -f "+kh+"`")
	hkMustContain(t, hkCheck(h, "127.0.0.1:2222", "newalias", "yes", key),
		"host key for newalias is not known; add it with `ssh-keyscan -p 2222 127.0.0.1 | sed 's/^[^ ]*/newalias/' >> "+kh+"`")
	if err := hkCheck(h, "127.0.0.1:2222", "newalias", "accept-new", key); err != nil {
		t.Fatal(err)
	}
	if got, want := hkRead(t, kh), hkLine("myalias", key)+"\n"+hkLine("newalias", key)+"\n"; got != want {
		t.Errorf("known_hosts =\n%s\nwant\n%s", got, want)
	}
	if got := h.algorithms("10.9.9.9:22", "newalias"); !slices.Equal(got, []string{ssh.KeyAlgoED25519}) {
		t.Errorf("algorithms by alias = %q", got)
	}
	// An alias written with a port keeps it.
	if err := hkCheck(h, "127.0.0.1:22", "[portalias]:2200", "accept-new", key); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(hkRead(t, kh), "\n"+hkLine("[portalias]:2200", key)+"\n") {
		t.Errorf("known_hosts =\n%s", hkRead(t, kh))
	}
	// A name that would be a pattern in known_hosts is not recorded.
	hkMustContain(t, hkCheck(h, "127.0.0.1:22", "web*", "accept-new", key), `record the host key of "web*": the name cannot be written to known_hosts`)
}

func TestHostKeysFiles(t *testing.T) {
	a, b := hkPub(t, "ed25519"), hkPub(t, "ed25519")
	dir := t.TempDir()
	first, second := filepath.Join(dir, "known_hosts"), hkFile(t, "# system-wide", hkLine("db2", b))
	h := hkNew(t, first, filepath.Join(dir, "missing", "x"), "none", second)
	if err := hkCheck(h, "db2:22", "", "yes", b); err != nil {
		t.Error(err)
	}
	var changed *HostKeyChangedError
	if err := hkCheck(h, "db2:22", "", "accept-new", a); !errors.As(err, &changed) || changed.File != second || changed.Line != 2 {
		t.Errorf("changed key in the second file: err = %v", err)
	}
	if err := hkCheck(h, "db1:22", "", "accept-new", a); err != nil {
		t.Fatal(err)
	}
	if got := hkRead(t, first); got != hkLine("db1", a)+"\n" {
		t.Errorf("first file = %q", got)
	}

	if _, err := newHostKeys([]string{dir}); err == nil {
		t.Error("a directory as known_hosts file: no error")
	}
	h = hkNew(t, "none")
	hkMustContain(t, hkCheck(h, "db1:22", "", "accept-new", a), "no known_hosts file to record it in")

	// A first file that cannot be created: known_hosts is empty, and
	// recording fails with the reason.
	blocker := filepath.Join(dir, "not-a-dir")
	os.WriteFile(blocker, nil, 0o600)
	h = hkNew(t, filepath.Join(blocker, "known_hosts"))
	hkMustContain(t, hkCheck(h, "db1:22", "", "accept-new", a), "record the host key of db1", "not a directory")
	hkMustContain(t, hkCheck(h, "db1:22", "", "yes", a), "is not known")
}

// A checker in "yes" mode sees keys another checker (process) recorded
// after it read the files.
func TestHostKeysYesSeesLaterAppends(t *testing.T) {
	key := hkPub(t, "ed25519")
	kh := filepath.Join(t.TempDir(), "known_hosts")
	strict, other := hkNew(t, kh), hkNew(t, kh)
	if err := hkCheck(other, "db1:22", "", "accept-new", key); err != nil {
		t.Fatal(err)
	}
	if err := hkCheck(strict, "db1:22", "", "yes", key); err != nil {
		t.Error(err)
	}
}

func TestHostKeysShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"db1":                      "db1",
		"/home/u/.ssh/known_hosts": "/home/u/.ssh/known_hosts",
		"[10.0.0.5]:2222":          "'[10.0.0.5]:2222'",
		"/tmp/a b":                 "'/tmp/a b'",
		"it's":                     `'it'\''s'`,
		"~/x":                      "'~/x'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
