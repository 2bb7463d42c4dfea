package signature

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// keygen makes an ed25519 key pair with ssh-keygen (passphrase pass) and
// returns the private key's path.
func keygen(t *testing.T, dir, name, pass string) string {
	t.Helper()
	sshKeygen(t)
	p := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", pass, "-C", name, "-f", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return p
}

func sshKeygen(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh-keygen is not installed (CI=true: a skip is a failure)")
		}
		t.Skip("ssh-keygen is not installed")
	}
}

// allowedSigners writes an allowed_signers file trusting the public key of
// each private key file, as principal ID.
func allowedSigners(t *testing.T, dir string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pubLine(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestSignVerifiedBySSHKeygen(t *testing.T) {
	dir := t.TempDir()
	key := keygen(t, dir, "ci", "")
	data := []byte("a bundle's bytes\x00\x01")
	sig, err := Sign(data, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sig, []byte("-----BEGIN SSH SIGNATURE-----")) {
		t.Fatalf("signature is not armored: %q", sig)
	}
	sigFile := filepath.Join(dir, "site.bundle.sig")
	os.WriteFile(sigFile, sig, 0o644)
	allowed := allowedSigners(t, dir, `ci@example.com namespaces="star-deploy-bundle" `+pubLine(t, key))
	verify := func(data []byte, ns string) (string, error) {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "ci@example.com", "-n", ns, "-s", sigFile)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify(data, Namespace); err != nil {
		t.Fatalf("ssh-keygen -Y verify refused our signature: %v\n%s", err, out)
	}
	if out, err := verify(append(data, 'x'), Namespace); err == nil {
		t.Fatalf("ssh-keygen accepted a tampered message:\n%s", out)
	}
	if out, err := verify(data, "git"); err == nil {
		t.Fatalf("ssh-keygen accepted another namespace:\n%s", out)
	}

	signers, err := ParseAllowedSigners(allowed, strings.NewReader(mustRead(t, allowed)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(data, sig, signers, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Principals) != 1 || v.Principals[0] != "ci@example.com" || !strings.HasPrefix(v.Fingerprint, "SHA256:") {
		t.Errorf("verified %+v", v)
	}
	if _, err := Verify(append(data, 'x'), sig, signers, time.Now()); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("tampered data: %v", err)
	}
}

// What ssh-keygen -Y sign makes, Verify accepts; another key is an unknown
// signer; another namespace is refused.
func TestVerifySSHKeygenSignatures(t *testing.T) {
	dir := t.TempDir()
	key := keygen(t, dir, "release", "")
	other := keygen(t, dir, "other", "")
	msg := filepath.Join(dir, "site.bundle")
	os.WriteFile(msg, []byte("bundle"), 0o644)
	sign := func(key, ns string) []byte {
		out, err := exec.Command("ssh-keygen", "-Y", "sign", "-f", key, "-n", ns, msg).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
		}
		sig, _ := os.ReadFile(msg + ".sig")
		os.Remove(msg + ".sig")
		return sig
	}
	signers, err := ParseAllowedSigners("allowed", strings.NewReader("# ops\nrelease,ops "+pubLine(t, key)+"\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify([]byte("bundle"), sign(key, Namespace), signers, time.Now()); err != nil || strings.Join(v.Principals, ",") != "release,ops" {
		t.Fatalf("ssh-keygen's signature: %+v, %v", v, err)
	}
	if _, err := Verify([]byte("bundle"), sign(other, Namespace), signers, time.Now()); !errors.Is(err, ErrUnknownSigner) {
		t.Errorf("other key: %v, want ErrUnknownSigner", err)
	}
	if _, err := Verify([]byte("bundle"), sign(key, "file"), signers, time.Now()); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("namespace file: %v", err)
	}
	// A key trusted for other namespaces only, or not yet, is not a signer.
	for _, opt := range []string{`namespaces="git,file"`, `valid-after="29990101"`, `valid-before="20000101Z"`} {
		s, err := ParseAllowedSigners("allowed", strings.NewReader("release "+opt+" "+pubLine(t, key)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify([]byte("bundle"), sign(key, Namespace), s, time.Now()); !errors.Is(err, ErrUnknownSigner) {
			t.Errorf("%s: %v, want ErrUnknownSigner", opt, err)
		}
	}
}

func TestEncryptedKey(t *testing.T) {
	dir := t.TempDir()
	key := keygen(t, dir, "enc", "s3cret pass")
	if _, err := Sign([]byte("x"), key, nil); err == nil || !strings.Contains(err.Error(), "encrypted") || !strings.Contains(err.Error(), "terminal") {
		t.Errorf("no terminal: %v", err)
	}
	asked := ""
	sig, err := Sign([]byte("x"), key, func(q string) (string, error) { asked = q; return "s3cret pass", nil })
	if err != nil || !strings.Contains(asked, key) {
		t.Fatalf("with the passphrase: %v (asked %q)", err, asked)
	}
	pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pubLine(t, key)))
	if _, err := Verify([]byte("x"), sig, []Signer{{Key: pub}}, time.Now()); err != nil {
		t.Error(err)
	}
	_, err = Sign([]byte("x"), key, func(string) (string, error) { return "wrong", nil })
	if err == nil || !strings.Contains(err.Error(), "wrong passphrase") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("wrong passphrase: %v", err)
	}
	if _, err := Sign([]byte("x"), key+".pub", nil); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("a .pub: %v", err)
	}
}

func TestParseAllowedSignersErrors(t *testing.T) {
	for src, want := range map[string]string{
		"justone\n":                 "f:1: a principals field",
		"a ssh-ed25519 notbase64\n": "f:1: not an allowed_signers line",
		"\n\"a b\n":                 "f:2: unterminated quote",
	} {
		if _, err := ParseAllowedSigners("f", strings.NewReader(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
