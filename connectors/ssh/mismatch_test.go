package ssh

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// wrongKnownHosts writes a known_hosts file that records other's keys
// under srv's address: a mismatch, not an unknown host. It returns the
// file and its first line, as the warnings name it.
func wrongKnownHosts(t *testing.T, dir string, srv, other *sshtest.Server) (file, firstLine string) {
	t.Helper()
	kh := filepath.Join(dir, "kh")
	lines := strings.ReplaceAll(other.KnownHostsLine(""), fmt.Sprintf("[%s]:%d", other.Host, other.Port), fmt.Sprintf("[%s]:%d", srv.Host, srv.Port))
	if err := os.WriteFile(kh, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	return kh, kh + ":1"
}

// TestHostKeyMismatchWithholdsPassword: with strictness "no", a server
// whose key contradicts known_hosts gets no password, even though it
// accepts passwords, and the error says why; a key still logs in, with a
// loud warning naming the known_hosts line. sshd's log shows whether a
// password was tried; the control (the right known_hosts) shows that it
// would show.
func TestHostKeyMismatchWithholdsPassword(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{ExtraConfig: []string{"PasswordAuthentication yes", "KbdInteractiveAuthentication yes"}})
	other := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.5"})
	f, home := testFactory(t)
	var mu sync.Mutex
	var warned []string
	f.opts.Warn = func(msg string) { mu.Lock(); warned = append(warned, msg); mu.Unlock() }
	kh, line := wrongKnownHosts(t, home, srv, other)
	pw := map[string]string{"ssh_known_hosts_file": kh, "ssh_strict_host_key_checking": "no",
		"ssh_key": "/nonexistent", "ssh_password": "mismatch-canary"}

	_, err := open(t, f, srv, pw)
	if err == nil {
		t.Fatal("logged in by password to a host whose key does not match known_hosts")
	}
	for _, want := range []string{"no password sent", line, "does not match known_hosts", "fix known_hosts or log in with a key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "mismatch-canary") {
		t.Errorf("the error shows the password: %v", err)
	}
	if log := srv.Log(); strings.Contains(log, "password for") || strings.Contains(log, "keyboard-interactive") {
		t.Errorf("the client tried a password on the mismatching host; sshd log:\n%s", log)
	}
	mu.Lock()
	if len(warned) == 0 || !strings.Contains(strings.Join(warned, "\n"), line) || !strings.Contains(strings.Join(warned, "\n"), "password and keyboard-interactive authentication disabled") {
		t.Errorf("warnings %q do not name %s and what is disabled", warned, line)
	}
	mu.Unlock()

	// A key still logs in.
	withKey := map[string]string{"ssh_known_hosts_file": kh, "ssh_strict_host_key_checking": "no", "ssh_password": "mismatch-canary"}
	run(t, mustOpen(t, f, srv, withKey), "true")

	// Control: with the right key on file the password is sent (and
	// refused: the account has none), and sshd's log says so.
	right := filepath.Join(home, "kh-right")
	os.WriteFile(right, []byte(srv.KnownHostsLine("")), 0o600)
	pw["ssh_known_hosts_file"] = right
	if _, err := open(t, f, srv, pw); err == nil || strings.Contains(err.Error(), "no password sent") {
		t.Fatalf("right known_hosts: err = %v, want a failed password login", err)
	}
	if !strings.Contains(srv.Log(), "password for") {
		t.Errorf("the control's password attempt is not in sshd's log, so the check above sees nothing:\n%s", srv.Log())
	}
}

// passwordServer is an in-process SSH server that records every password
// and keyboard-interactive attempt, and accepts none: only for asserting
// what a client offers.
type passwordServer struct {
	addr     string
	hostKey  ssh.PublicKey
	attempts atomic.Int32
}

func startPasswordServer(t *testing.T) *passwordServer {
	t.Helper()
	signer := hkSigner(t, "ed25519")
	ps := &passwordServer{hostKey: signer.PublicKey()}
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			ps.attempts.Add(1)
			return nil, fmt.Errorf("no")
		},
		KeyboardInteractiveCallback: func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ps.attempts.Add(1)
			return nil, fmt.Errorf("no")
		},
	}
	cfg.AddHostKey(signer)
	ps.addr = serveHandshakes(t, cfg)
	return ps
}

// TestHostKeyMismatchNeverOffersPassword proves with a server that sees
// every attempt that no password and no keyboard-interactive answer goes
// to a host whose key does not match known_hosts under strictness "no",
// while an unknown host (no line at all) keeps getting them.
func TestHostKeyMismatchNeverOffersPassword(t *testing.T) {
	ps := startPasswordServer(t)
	f, home := testFactory(t)
	host, port, _ := net.SplitHostPort(ps.addr)
	wrong := filepath.Join(home, "kh-wrong")
	os.WriteFile(wrong, []byte(hkLine("["+host+"]:"+port, hkPub(t, "ed25519"))), 0o600)
	unknown := filepath.Join(home, "kh-unknown")
	os.WriteFile(unknown, []byte(hkLine("elsewhere", ps.hostKey)), 0o600)
	for _, tc := range []struct {
		name, kh string
		attempts int32
	}{
		{"mismatch", wrong, 0},
		{"unknown", unknown, 2}, // password, then keyboard-interactive
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps.attempts.Store(0)
			target, err := f.Parse(ps.addr, map[string]string{"ssh_user": "u", "ssh_allow_agent": "false", "ssh_key": "/nonexistent",
				"ssh_password": "canary", "ssh_known_hosts_file": tc.kh, "ssh_strict_host_key_checking": "no", "ssh_connect_retries": "0"})
			if err != nil {
				t.Fatal(err)
			}
			c, err := f.Open(t.Context(), target)
			if err == nil {
				c.Close()
				t.Fatal("the server accepted no password, yet Open succeeded")
			}
			if got := ps.attempts.Load(); got != tc.attempts {
				t.Errorf("%d password or keyboard-interactive attempts, want %d (err: %v)", got, tc.attempts, err)
			}
			if tc.attempts == 0 && !strings.Contains(err.Error(), "no password sent") {
				t.Errorf("err = %v, want it to say why no password was sent", err)
			}
		})
	}
}
