package modules

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// Change is a source that Update moved to another commit.
type Change struct {
	Source   string
	Old, New string // commits
}

// sources returns the locked sources that name stands for: an alias of
// Options.Aliases, a source (git+URL@REF) or, "", every locked source.
func (r *Resolver) sources(name string) ([]string, error) {
	if name == "" {
		return slices.Sorted(maps.Keys(r.lock.Sources)), nil
	}
	src := name
	if s, ok := r.aliases[name]; ok {
		src = s.Source
	}
	if _, ok := r.lock.Sources[src]; !ok {
		return nil, fmt.Errorf("%s is not in %s (it has %s)", name, r.lockName(), strings.Join(slices.Sorted(maps.Keys(r.lock.Sources)), ", "))
	}
	return []string{src}, nil
}

// Update moves the sources name stands for (see sources) to the commit
// their REF names now, fetching it, and locks the new content of the files
// the lock holds for them. Write the lock with WriteLock.
func (r *Resolver) Update(ctx context.Context, name string) ([]Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	srcs, err := r.sources(name)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, src := range srcs {
		s, err := ParseSource(src)
		if err != nil {
			return nil, err
		}
		repo, err := r.repository(ctx, s.URL, true)
		if err != nil {
			return nil, err
		}
		c, err := r.resolveRef(ctx, repo, s)
		if err != nil {
			return nil, err
		}
		old := r.lock.Sources[src]
		if c == old.Commit {
			continue
		}
		e := &Locked{Commit: c, Files: map[string]string{}}
		for p := range old.Files {
			b, err := fileAt(repo, c, p)
			if errors.Is(err, object.ErrFileNotFound) && !strings.HasSuffix(p, ".star") {
				continue // a file for put() or template() that the new commit dropped: a run that reads it says so
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %s at commit %s: %w", src, p, c[:12], err)
			}
			e.Files[p] = Sum(b)
		}
		r.lock.Sources[src] = e
		r.commits[src] = c
		r.dirty = true
		changes = append(changes, Change{Source: src, Old: old.Commit, New: c})
	}
	return changes, nil
}

// Verify checks every locked file against the lock: the copy in the cache
// (when there is one) and the repository's at the locked commit (fetched
// when the cache's copy of the repository lacks it). It returns one error
// per mismatch or missing file, joined.
func (r *Resolver) Verify(ctx context.Context) (checked int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, src := range slices.Sorted(maps.Keys(r.lock.Sources)) {
		e := r.lock.Sources[src]
		s, err := ParseSource(src)
		if err != nil {
			return checked, err
		}
		repo, err := r.repository(ctx, s.URL, false)
		if err == nil && !hasCommit(repo, e.Commit) {
			repo, err = r.repository(ctx, s.URL, true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		if !hasCommit(repo, e.Commit) {
			errs = append(errs, fmt.Errorf("%s: %s has no commit %s", src, s.URL, e.Commit))
			continue
		}
		for _, p := range slices.Sorted(maps.Keys(e.Files)) {
			checked++
			b, err := fileAt(repo, e.Commit, p)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %s at commit %s: %w", src, p, e.Commit[:12], err))
				continue
			case Sum(b) != e.Files[p]:
				errs = append(errs, fmt.Errorf("%s: %s at commit %s has %s, the lock %s", src, p, e.Commit[:12], Sum(b), e.Files[p]))
				continue
			}
			cached := filepath.Join(r.cache, e.Commit, filepath.FromSlash(p))
			if b, err := os.ReadFile(cached); err == nil && Sum(b) != e.Files[p] {
				errs = append(errs, fmt.Errorf("%s: the cached copy %s was changed; delete %s and run again", src, cached, filepath.Join(r.cache, e.Commit)))
			}
		}
	}
	return checked, errors.Join(errs...)
}

// Vendor copies every locked file to dir, laid out as the cache is
// (dir/COMMIT/PATH), so that a run with dir as its cache (star-deploy
// --module-cache DIR) needs no network.
func (r *Resolver) Vendor(ctx context.Context, dir string) (files int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, src := range slices.Sorted(maps.Keys(r.lock.Sources)) {
		e := r.lock.Sources[src]
		s, err := ParseSource(src)
		if err != nil {
			return files, err
		}
		for _, p := range slices.Sorted(maps.Keys(e.Files)) {
			b, _, err := r.treeFile(ctx, s, e.Commit, p)
			if err != nil {
				return files, fmt.Errorf("%s: %s: %w", src, p, err)
			}
			if Sum(b) != e.Files[p] {
				return files, fmt.Errorf("%s: %s does not match %s; run star-deploy mod verify", src, p, r.lockName())
			}
			dst := filepath.Join(dir, e.Commit, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return files, err
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				return files, err
			}
			files++
		}
	}
	return files, nil
}
