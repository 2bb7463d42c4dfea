package modules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/star-deploy/star-deploy/internal/atomicfile"
)

// LockName is the lock file's name: star-deploy.lock, beside the config
// file (or the deploy script when there is none).
const LockName = "star-deploy.lock"

// lockVersion is the format version of the lock file.
const lockVersion = 1

// Lock is the content of a lock file, JSON:
//
//	{
//	  "version": 1,
//	  "sources": {
//	    "git+https://git.example.com/ops/web-modules@v1.4.0": {
//	      "commit": "3f2a9c…",
//	      "files": {
//	        "nginx.star": "sha256:9b1d…",
//	        "lib/util.star": "sha256:04aa…"
//	      }
//	    }
//	  }
//	}
//
// Each source (git+URL@REF, aliases expanded) has the commit its REF
// resolved to and the SHA-256 of every file of it that a script loaded.
// Keys are sorted, so the file diffs well; commit it with the deploy.
type Lock struct {
	Version int                `json:"version"`
	Sources map[string]*Locked `json:"sources"`
}

// Locked is one source of the lock file.
type Locked struct {
	Commit string            `json:"commit"`
	Files  map[string]string `json:"files"` // path -> "sha256:HEX"
}

// ReadLock reads the lock file at path; a missing file is an empty lock.
func ReadLock(path string) (*Lock, error) {
	l := &Lock{Version: lockVersion, Sources: map[string]*Locked{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("%s: %v (the lock file is JSON written by star-deploy; rewrite it with star-deploy mod lock)", path, err)
	}
	if l.Version != lockVersion {
		return nil, fmt.Errorf("%s: version %d; this star-deploy reads version %d", path, l.Version, lockVersion)
	}
	if l.Sources == nil {
		l.Sources = map[string]*Locked{}
	}
	for src, e := range l.Sources {
		if _, err := ParseSource(src); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if len(e.Commit) != 40 {
			return nil, fmt.Errorf("%s: %s: commit %q is not a full commit id", path, src, e.Commit)
		}
		if e.Files == nil {
			e.Files = map[string]string{}
		}
	}
	return l, nil
}

// Marshal returns the lock file's text.
func (l *Lock) Marshal() []byte {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		panic("internal error: " + err.Error())
	}
	return append(b, '\n')
}

// Write writes the lock file to path atomically, unless it holds that
// already.
func (l *Lock) Write(path string) error {
	b := l.Marshal()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return atomicfile.Write(path, b)
}
