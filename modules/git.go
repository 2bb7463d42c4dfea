package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// maxModule bounds the size of one module file.
const maxModule = 16 << 20

// fetchTimeout bounds one fetch or listing of a repository, so that a
// server that stops answering fails the run instead of hanging it.
const fetchTimeout = 10 * time.Minute

// repository opens the repository of url: a file:// one in place, any
// other as a bare repository in the cache, fetched first (every branch and
// tag) when fetch is set.
func (r *Resolver) repository(ctx context.Context, url string, fetch bool) (*git.Repository, error) {
	if p, ok := strings.CutPrefix(url, "file://"); ok {
		repo, err := git.PlainOpen(p)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", url, err)
		}
		return repo, nil
	}
	if err := r.ownCache(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(url))
	dir := filepath.Join(r.cache, "git", hex.EncodeToString(sum[:12]))
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		if repo, err = git.PlainInit(dir, true); err != nil {
			return nil, fmt.Errorf("the cache's copy of %s: %w", url, err)
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
			return nil, fmt.Errorf("the cache's copy of %s: %w", url, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("the cache's copy of %s (%s): %w", url, dir, err)
	}
	if fetch && !r.fetched[url] {
		ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
		err := r.withAuth(ctx, url, func(auth transport.AuthMethod) error {
			err := repo.FetchContext(ctx, &git.FetchOptions{
				RemoteName: "origin",
				RefSpecs:   []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
				Tags:       git.NoTags,
				Force:      true,
				Auth:       auth,
			})
			if errors.Is(err, git.NoErrAlreadyUpToDate) {
				return nil
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", url, err)
		}
		r.fetched[url] = true
	}
	return repo, nil
}

// auth is the transport.AuthMethod of a fetch or a listing of url: for an
// ssh:// URL, with Options.SSH set, the one that makes go-git run
// git-upload-pack through Options.SSH (see sshTransport); for an http(s)
// one, the Options.Credentials of its host (httpAuth); else none.
func (r *Resolver) auth(ctx context.Context, url string) transport.AuthMethod {
	switch {
	case strings.HasPrefix(url, "https://"), strings.HasPrefix(url, "http://"):
		return r.httpAuth(url)
	case r.opts.SSH == nil || !strings.HasPrefix(url, "ssh://"):
		return nil
	}
	return sshAuth{ctx: ctx, run: r.opts.SSH}
}

// resolveRef returns the commit REF of s names in repo: a full ref name,
// a tag, a branch, or a commit id (or a prefix of one); no REF is the
// repository's HEAD.
func (r *Resolver) resolveRef(ctx context.Context, repo *git.Repository, s Spec) (string, error) {
	if s.Ref == "" {
		return r.head(ctx, repo, s.URL)
	}
	var names []plumbing.ReferenceName
	if strings.HasPrefix(s.Ref, "refs/") {
		names = append(names, plumbing.ReferenceName(s.Ref))
	}
	names = append(names, plumbing.NewTagReferenceName(s.Ref), plumbing.NewBranchReferenceName(s.Ref))
	for _, n := range names {
		if ref, err := repo.Reference(n, true); err == nil {
			return peel(repo, ref.Hash())
		}
	}
	if isHex(s.Ref) && len(s.Ref) >= 4 {
		if h, err := repo.ResolveRevision(plumbing.Revision(s.Ref)); err == nil {
			return peel(repo, *h)
		}
	}
	if tag, err := newestTag(repo, s.Ref); err != nil {
		return "", err
	} else if tag != nil {
		return peel(repo, tag.Hash())
	}
	return "", fmt.Errorf("%s has no tag, branch or commit %q", s.URL, s.Ref)
}

// newestTag returns the tag of the highest version that the version
// prefix ref (v1, v1.4) matches: v1 matches v1.4.2 and v1.10, not v10.0;
// nil when ref is no version or no tag matches. Tags with a pre-release
// or build suffix (v1.5.0-rc1) never match.
func newestTag(repo *git.Repository, ref string) (*plumbing.Reference, error) {
	want, ok := version(ref)
	if !ok {
		return nil, nil
	}
	tags, err := repo.Tags()
	if err != nil {
		return nil, err
	}
	var best *plumbing.Reference
	var bestV []int
	err = tags.ForEach(func(t *plumbing.Reference) error {
		v, ok := version(t.Name().Short())
		if !ok || len(v) < len(want) || !slices.Equal(v[:len(want)], want) {
			return nil
		}
		if best == nil || slices.Compare(v, bestV) > 0 {
			best, bestV = t, v
		}
		return nil
	})
	return best, err
}

// version parses vMAJOR[.MINOR[.PATCH]] into its numbers.
func version(s string) ([]int, bool) {
	rest, ok := strings.CutPrefix(s, "v")
	if !ok || rest == "" {
		return nil, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) > 3 {
		return nil, false
	}
	out := make([]int, 0, 3)
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

// head returns the commit of the HEAD of the repository at url.
func (r *Resolver) head(ctx context.Context, repo *git.Repository, url string) (string, error) {
	if strings.HasPrefix(url, "file://") {
		ref, err := repo.Head()
		if err != nil {
			return "", fmt.Errorf("%s: HEAD: %w", url, err)
		}
		return peel(repo, ref.Hash())
	}
	remote, err := repo.Remote("origin")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	var refs []*plumbing.Reference
	err = r.withAuth(ctx, url, func(auth transport.AuthMethod) (err error) {
		refs, err = remote.ListContext(ctx, &git.ListOptions{Auth: auth})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("list the refs of %s: %w", url, err)
	}
	// HEAD is a symbolic reference when the server says which branch it
	// is (the symref capability), a hash otherwise.
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, ref := range refs {
		byName[ref.Name()] = ref
	}
	ref := byName[plumbing.HEAD]
	for range 8 {
		if ref == nil || ref.Type() != plumbing.SymbolicReference {
			break
		}
		ref = byName[ref.Target()]
	}
	if ref != nil && ref.Type() == plumbing.HashReference {
		return peel(repo, ref.Hash())
	}
	return "", fmt.Errorf("%s has no HEAD; name a tag, a branch or a commit after @", url)
}

// peel returns the commit h is, or the commit of the annotated tag h is.
func peel(repo *git.Repository, h plumbing.Hash) (string, error) {
	for range 8 {
		if c, err := repo.CommitObject(h); err == nil {
			return c.Hash.String(), nil
		}
		tag, err := repo.TagObject(h)
		if err != nil {
			return "", fmt.Errorf("%s is neither a commit nor a tag", h)
		}
		h = tag.Target
	}
	return "", fmt.Errorf("%s: too many nested tags", h)
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// wholeTree is the file extract writes in a directory of the cache, after
// the commit's files. Older versions extracted only the .star files and
// wrote none: such a directory lacks the files that put() and template()
// read, and is extracted again when one is asked for (see Resolver.read).
const wholeTree = ".star-deploy-tree"

// extract writes the regular files of commit in repo (up to maxModule
// bytes each) to dir, through a temporary directory renamed into place, so
// that a directory of the cache is always complete. A dir that exists is
// replaced.
func (r *Resolver) extract(repo *git.Repository, commit, dir string) error {
	c, err := repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return err
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.cache, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(r.cache, ".extract-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	err = tree.Files().ForEach(func(f *object.File) error {
		if (f.Mode != filemode.Regular && f.Mode != filemode.Executable) || f.Size > maxModule || f.Name == wholeTree {
			return nil
		}
		b, err := blob(f)
		if err != nil {
			return err
		}
		dst := filepath.Join(tmp, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, wholeTree), nil, 0o644)
	}
	if err != nil {
		return fmt.Errorf("commit %s: %w", commit, err)
	}
	if _, err := os.Stat(dir); err == nil {
		// An older version's directory: moved aside, then removed.
		old, err := os.MkdirTemp(r.cache, ".old-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(old)
		if err := os.Rename(dir, filepath.Join(old, "tree")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, wholeTree)); serr == nil {
			return nil // another run extracted it first
		}
		return err
	}
	return nil
}

// blob reads the content of f, at most maxModule bytes.
func blob(f *object.File) ([]byte, error) { return blobMax(f, maxModule) }

// blobMax reads the content of f, at most max bytes.
func blobMax(f *object.File, max int64) ([]byte, error) {
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(io.LimitReader(rd, max))
}

// FetchFiles fetches the repository at url into the cache, as remote loads
// do, and returns the commit ref names (a tag, a branch, a commit; "" is
// HEAD) and the content of each of paths at it: nil for a path the commit
// does not have, an error for one larger than max bytes. It neither reads
// nor writes the lock: pull reads a bundle and its signature this way.
func (r *Resolver) FetchFiles(ctx context.Context, url, ref string, max int64, paths ...string) (commit string, files [][]byte, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	repo, err := r.repository(ctx, url, true)
	if err != nil {
		return "", nil, err
	}
	if commit, err = r.resolveRef(ctx, repo, Spec{URL: url, Ref: ref}); err != nil {
		return "", nil, err
	}
	c, err := repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return "", nil, err
	}
	for _, p := range paths {
		f, err := c.File(p)
		if errors.Is(err, object.ErrFileNotFound) {
			files = append(files, nil)
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if f.Size > max {
			return "", nil, fmt.Errorf("%s is larger than %d MiB", p, max>>20)
		}
		b, err := blobMax(f, max)
		if err != nil {
			return "", nil, err
		}
		files = append(files, b)
	}
	return commit, files, nil
}

// fileAt returns the content of p at commit in repo.
func fileAt(repo *git.Repository, commit, p string) ([]byte, error) {
	c, err := repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return nil, err
	}
	f, err := c.File(p)
	if err != nil {
		return nil, err
	}
	return blob(f)
}

// hasCommit reports whether repo holds commit.
func hasCommit(repo *git.Repository, commit string) bool {
	_, err := repo.CommitObject(plumbing.NewHash(commit))
	return err == nil
}
