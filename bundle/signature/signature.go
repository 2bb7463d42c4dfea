// Package signature signs bundles with SSH keys and verifies them against
// an OpenSSH allowed_signers file, in the format of `ssh-keygen -Y sign`
// (OpenSSH's PROTOCOL.sshsig, armored), so that
//
//	ssh-keygen -Y verify -f allowed_signers -I ID -n star-deploy-bundle -s site.bundle.sig < site.bundle
//
// accepts what Sign makes and Verify accepts what ssh-keygen makes. The
// format is github.com/hiddeco/sshsig's, the keys are read with
// golang.org/x/crypto/ssh: no cryptography is written here.
package signature

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Namespace is the sshsig namespace of bundle signatures: a signature made
// for another purpose (git commits, files) is not a bundle signature.
const Namespace = "star-deploy-bundle"

// Sign signs data with the private key in keyFile and returns the armored
// signature ("-----BEGIN SSH SIGNATURE-----"). An encrypted key is
// decrypted with the passphrase prompt returns; a nil prompt (no terminal)
// refuses an encrypted key with a message that says what to do.
func Sign(data []byte, keyFile string, prompt func(question string) (string, error)) ([]byte, error) {
	signer, err := loadKey(keyFile, prompt)
	if err != nil {
		return nil, err
	}
	sig, err := sshsig.Sign(bytes.NewReader(data), signer, sshsig.HashSHA512, Namespace)
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", keyFile, err)
	}
	return sshsig.Armor(sig), nil
}

// loadKey reads the private key at p, asking for its passphrase when it is
// encrypted.
func loadKey(p string, prompt func(string) (string, error)) (ssh.Signer, error) {
	pem, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if prompt == nil {
			return nil, fmt.Errorf("signing key %s is encrypted and there is no terminal to ask its passphrase on: run star-deploy bundle on a terminal, or sign with a key without a passphrase kept for signing", p)
		}
		pass, perr := prompt(fmt.Sprintf("Enter passphrase for key %s: ", p))
		if perr != nil {
			return nil, fmt.Errorf("signing key %s: reading the passphrase: %w", p, perr)
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: wrong passphrase", p)
		}
	}
	if err != nil {
		if bytes.HasPrefix(bytes.TrimSpace(pem), []byte("ssh-")) || bytes.HasPrefix(bytes.TrimSpace(pem), []byte("ecdsa-")) {
			return nil, fmt.Errorf("signing key %s is a public key: give the private key file (without .pub)", p)
		}
		return nil, fmt.Errorf("signing key %s: %w", p, err)
	}
	return signer, nil
}

// Signer is one line of an allowed_signers file.
type Signer struct {
	Principals []string // who the key stands for (the first field, comma-separated)
	Namespaces []string // from namespaces="..."; empty allows every namespace
	Key        ssh.PublicKey
	// ValidAfter and ValidBefore bound when the key is trusted (valid-after,
	// valid-before); zero when unset.
	ValidAfter, ValidBefore time.Time
	At                      string // file:line, for messages
}

// ParseAllowedSigners parses an OpenSSH allowed_signers file (see
// ssh-keygen(1), ALLOWED SIGNERS): one key a line, "principals [options]
// keytype base64-key [comment]", # comments and blank lines ignored.
// Options namespaces="...", valid-after and valid-before are honoured;
// cert-authority (trusting certificates) is refused, as this package
// verifies plain keys only.
func ParseAllowedSigners(name string, r io.Reader) ([]Signer, error) {
	var out []Signer
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		at := fmt.Sprintf("%s:%d", name, n)
		principals, rest, err := firstField(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", at, err)
		}
		key, _, options, _, err := ssh.ParseAuthorizedKey([]byte(rest))
		if err != nil {
			return nil, fmt.Errorf("%s: not an allowed_signers line (principals [options] keytype key): %v", at, err)
		}
		s := Signer{Key: key, At: at}
		for _, p := range strings.Split(principals, ",") {
			if p = strings.TrimSpace(p); p != "" {
				s.Principals = append(s.Principals, p)
			}
		}
		for _, o := range options {
			k, v, _ := strings.Cut(o, "=")
			v = strings.Trim(v, `"`)
			switch strings.ToLower(k) {
			case "namespaces":
				s.Namespaces = strings.Split(v, ",")
			case "valid-after":
				if s.ValidAfter, err = parseTime(v); err != nil {
					return nil, fmt.Errorf("%s: valid-after: %v", at, err)
				}
			case "valid-before":
				if s.ValidBefore, err = parseTime(v); err != nil {
					return nil, fmt.Errorf("%s: valid-before: %v", at, err)
				}
			case "cert-authority":
				return nil, fmt.Errorf("%s: cert-authority is not supported: list the signing keys themselves", at)
			default:
				return nil, fmt.Errorf("%s: unknown option %q (allowed_signers takes namespaces, valid-after, valid-before)", at, k)
			}
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// firstField splits the principals field, which may be quoted, from the
// rest of the line.
func firstField(line string) (string, string, error) {
	if strings.HasPrefix(line, `"`) {
		end := strings.Index(line[1:], `"`)
		if end < 0 {
			return "", "", errors.New("unterminated quote in the principals")
		}
		return line[1 : end+1], strings.TrimSpace(line[end+2:]), nil
	}
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return "", "", errors.New("a principals field and a key are needed")
	}
	return line[:i], strings.TrimSpace(line[i:]), nil
}

// parseTime parses ssh-keygen's YYYYMMDD[HHMM[SS]][Z] times.
func parseTime(v string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		v, loc = v[:len(v)-1], time.UTC
	}
	for _, layout := range []string{"20060102", "200601021504", "20060102150405"} {
		if len(v) == len(layout) {
			return time.ParseInLocation(layout, v, loc)
		}
	}
	return time.Time{}, fmt.Errorf("%q: want YYYYMMDD[HHMM[SS]][Z]", v)
}

// Verified says who signed.
type Verified struct {
	Principals  []string // of the allowed_signers line that holds the key
	Fingerprint string   // SHA256:... of the key
	At          string   // that line, file:line
}

// ErrUnknownSigner is the error of a valid signature by a key that is not
// allowed.
var ErrUnknownSigner = errors.New("signed by a key that is not in the allowed signers")

// Verify checks the armored signature sig of data against signers: the
// signature must be a bundle signature (Namespace) made by a key one of
// them holds, trusted for that namespace and now.
func Verify(data, sig []byte, signers []Signer, now time.Time) (*Verified, error) {
	s, err := sshsig.Unarmor(sig)
	if err != nil {
		return nil, fmt.Errorf("not an SSH signature: %w", err)
	}
	if s.Namespace != Namespace {
		return nil, fmt.Errorf("the signature is for the namespace %q, not %q: it was not made for a bundle", s.Namespace, Namespace)
	}
	fp := ssh.FingerprintSHA256(s.PublicKey)
	var match *Signer
	for i := range signers {
		si := &signers[i]
		if !bytes.Equal(si.Key.Marshal(), s.PublicKey.Marshal()) {
			continue
		}
		if len(si.Namespaces) > 0 && !slices.Contains(si.Namespaces, Namespace) {
			continue
		}
		if (!si.ValidAfter.IsZero() && now.Before(si.ValidAfter)) || (!si.ValidBefore.IsZero() && !now.Before(si.ValidBefore)) {
			continue
		}
		match = si
		break
	}
	if match == nil {
		return nil, fmt.Errorf("%w (key %s %s)", ErrUnknownSigner, s.PublicKey.Type(), fp)
	}
	if err := sshsig.Verify(bytes.NewReader(data), s, match.Key, s.HashAlgorithm, Namespace); err != nil {
		return nil, fmt.Errorf("the signature does not match the bundle (it was altered after signing, or the .sig belongs to another bundle): %w", err)
	}
	return &Verified{Principals: match.Principals, Fingerprint: fp, At: match.At}, nil
}
