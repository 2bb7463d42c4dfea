package modules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// gitRepo makes a bare repository holding web.star (which loads
// lib/sib.star) at tag v1.0, and returns its path.
func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git: %v (CI=true: a skip is a failure)", err)
		}
		t.Skipf("git: %v", err)
	}
	work := filepath.Join(t.TempDir(), "work")
	bare := filepath.Join(t.TempDir(), "it's.git") // a quote for the shell quoting
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main", work)
	os.MkdirAll(filepath.Join(work, "lib"), 0o755)
	os.WriteFile(filepath.Join(work, "lib", "sib.star"), []byte("def greet():\n    return \"hi\"\n"), 0o644)
	os.WriteFile(filepath.Join(work, "web.star"), []byte("load(\"lib/sib.star\", \"greet\")\n"), 0o644)
	git("-C", work, "add", ".")
	git("-C", work, "commit", "-q", "-m", "v1")
	git("-C", work, "tag", "v1.0")
	git("clone", "-q", "--bare", work, bare)
	return bare
}

// localRunner runs the command with sh on this machine, as sshd would on
// the host, recording the hosts it was asked for.
type localRunner struct {
	mu    sync.Mutex
	hosts []string
}

func (l *localRunner) run(ctx context.Context, host, command string, stdin io.Reader, stdout io.Writer) error {
	l.mu.Lock()
	l.hosts = append(l.hosts, host)
	l.mu.Unlock()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	// The input is copied by hand, as the SSH connector does: Run returns
	// when the command has exited, whether or not its input has ended.
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		io.Copy(in, stdin)
		in.Close()
	}()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s on %s: %w: %s", command, host, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// A git+ssh source runs git-upload-pack (the real one) through
// Options.SSH: a REF, the HEAD, a second read from the cache; the host is
// the URL's, with the user and port only when it names them.
func TestSSHRunnerFetch(t *testing.T) {
	bare := gitRepo(t)
	l := &localRunner{}
	r, err := New(Options{CacheDir: t.TempDir(), SSH: l.run})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{
		"git+ssh://box" + bare + "@v1.0//web.star",
		"git+ssh://git@[::1]:2222" + bare + "//lib/sib.star",
		"git+ssh://box" + bare + "@v1.0//lib/sib.star",
	} {
		b, err := r.Read(ctx, key)
		if err != nil {
			t.Fatalf("Read(%s): %v", key, err)
		}
		if !strings.Contains(string(b), "greet") {
			t.Errorf("Read(%s) = %q", key, b)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// box: fetch; [::1]: fetch and list (HEAD); the third is in the cache.
	if want := []string{"box", "git@[::1]:2222", "git@[::1]:2222"}; strings.Join(l.hosts, " ") != strings.Join(want, " ") {
		t.Errorf("hosts %q, want %q", l.hosts, want)
	}
}

// A missing repository is transport.ErrRepositoryNotFound with what
// git-upload-pack said; a runner that cannot connect is its error.
func TestSSHRunnerErrors(t *testing.T) {
	l := &localRunner{}
	r, _ := New(Options{CacheDir: t.TempDir(), SSH: l.run})
	_, err := r.Read(context.Background(), "git+ssh://box/nonexistent/repo.git@v1//a.star")
	if !errors.Is(err, transport.ErrRepositoryNotFound) || !strings.Contains(err.Error(), "on box: exit status 128: fatal: '/nonexistent/repo.git' does not appear to be a git repository") {
		t.Errorf("missing repository: %v", err)
	}
	refused := errors.New("connect to box: connection refused")
	r, _ = New(Options{CacheDir: t.TempDir(), SSH: func(context.Context, string, string, io.Reader, io.Writer) error { return refused }})
	if _, err := r.Read(context.Background(), "git+ssh://box/repo.git@v1//a.star"); !errors.Is(err, refused) {
		t.Errorf("runner error: %v", err)
	}
}

// Cancelling the read stops a host that never answers.
func TestSSHRunnerCancel(t *testing.T) {
	started := make(chan struct{})
	hang := func(ctx context.Context, host, command string, stdin io.Reader, stdout io.Writer) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
	r, _ := New(Options{CacheDir: t.TempDir(), SSH: hang})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := r.Read(ctx, "git+ssh://box/repo.git@v1//a.star"); done <- err }()
	<-started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled read: %v", err)
		}
	case <-time.After(time.Minute): // a hang guard only
		t.Fatal("the cancelled read did not return")
	}
}

func TestUploadPackCommand(t *testing.T) {
	for path, want := range map[string]string{
		"/srv/repo.git":  "git-upload-pack '/srv/repo.git'",
		"/~/repo.git":    "git-upload-pack '~/repo.git'",
		"/~ops/repo.git": "git-upload-pack '~ops/repo.git'",
		"/it's":          `git-upload-pack '/it'\''s'`,
	} {
		if got := uploadPackCommand(path); got != want {
			t.Errorf("uploadPackCommand(%q) = %s, want %s", path, got, want)
		}
	}
}

func TestSSHHost(t *testing.T) {
	for url, want := range map[string]string{
		"ssh://box/r":              "box",
		"ssh://git@box:2222/r":     "git@box:2222",
		"ssh://[::1]/r":            "[::1]",
		"ssh://u@[fe80::1]:2022/r": "u@[fe80::1]:2022",
	} {
		ep, err := transport.NewEndpoint(url)
		if err != nil {
			t.Fatal(err)
		}
		if got := sshHost(ep); got != want {
			t.Errorf("sshHost(%s) = %s, want %s", url, got, want)
		}
	}
}
