package modules

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Helper asks for the credentials of an http(s) URL that a server asked
// for and Options.Credentials did not hold, as git asks its credential
// helpers: fill returns them (ok false: none), and done is called with
// whether the server took them, for the helper to store or forget them.
type Helper interface {
	Fill(ctx context.Context, url string) (user, password string, ok bool)
	Done(ctx context.Context, url, user, password string, accepted bool)
}

// gitCredentialTimeout bounds one git credential command.
const gitCredentialTimeout = 30 * time.Second

// GitCredentials is the Helper of the git command's credential helpers
// (credential.helper in git's config: store, cache, osxkeychain, libsecret,
// gh auth git-credential, ...): `git credential fill` with the URL, then
// `git credential approve` or `reject`, as git itself does around a fetch.
// git must not prompt (GIT_TERMINAL_PROMPT=0); without a git command, or
// without a helper that knows the URL, there are no credentials.
func GitCredentials() Helper { return gitCredentials{} }

type gitCredentials struct{}

func (gitCredentials) Fill(ctx context.Context, url string) (string, string, bool) {
	out, err := gitCredential(ctx, "fill", "url="+url+"\n")
	if err != nil {
		return "", "", false
	}
	var user, password string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "username":
			user = v
		case "password":
			password = v
		}
	}
	return user, password, password != ""
}

func (gitCredentials) Done(ctx context.Context, url, user, password string, accepted bool) {
	verb := "reject"
	if accepted {
		verb = "approve"
	}
	gitCredential(ctx, verb, "url="+url+"\nusername="+user+"\npassword="+password+"\n")
}

// gitCredential runs `git credential VERB` with input on its standard input
// (never in its arguments or environment) and returns its output.
func gitCredential(ctx context.Context, verb, input string) ([]byte, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, gitCredentialTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, git, "credential", verb)
	cmd.Stdin = strings.NewReader(input + "\n")
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	return cmd.Output()
}

// withAuth runs op (a fetch or a listing of url) with the auth of url.
// When an http(s) server asks for credentials that Options.Credentials
// does not hold, it asks Options.Helper, and runs op once more with what
// the helper gave, telling it whether the server took them. The error is
// op's, with authHint's advice.
func (r *Resolver) withAuth(ctx context.Context, url string, op func(transport.AuthMethod) error) error {
	auth := r.auth(ctx, url)
	err := op(auth)
	if err == nil || auth != nil || r.opts.Helper == nil || !errors.Is(err, transport.ErrAuthenticationRequired) ||
		!(strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")) {
		return r.authHint(err, url, false)
	}
	helped, err2 := AskHelper(ctx, r.opts.Helper, url, func(user, password string) (bool, error) {
		err := op(&githttp.BasicAuth{Username: user, Password: password})
		return errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed), err
	})
	if helped {
		err = err2
	}
	return r.authHint(err, url, helped)
}

// AskHelper asks h for the credentials of url and runs try with them; try
// says whether the server refused them (and its error). h is then told
// whether they were taken, unless try failed otherwise. ok false: h had
// none, and try did not run.
func AskHelper(ctx context.Context, h Helper, url string, try func(user, password string) (refused bool, err error)) (ok bool, err error) {
	user, password, ok := h.Fill(ctx, url)
	if !ok {
		return false, nil
	}
	refused, err := try(user, password)
	if err == nil || refused {
		h.Done(ctx, url, user, password, !refused)
	}
	return true, err
}
