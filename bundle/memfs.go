package bundle

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"slices"
	"time"
)

// memFS is a read-only fs.FS of a bundle directory held in memory; its
// directories are those the file paths imply.
type memFS struct {
	bundle string
	what   string
	files  map[string][]byte
	modes  map[string]fs.FileMode
	dirs   map[string][]string // directory -> sorted child names
}

func newMemFS(bundle string, files map[string][]byte, listed []File, what string) *memFS {
	m := &memFS{bundle: bundle, what: what, files: files, modes: map[string]fs.FileMode{}, dirs: map[string][]string{".": nil}}
	for _, f := range listed {
		m.modes[f.Path] = modeOf(f.Mode)
	}
	for p := range files {
		child := p
		for dir := path.Dir(p); ; dir = path.Dir(dir) {
			if !slices.Contains(m.dirs[dir], path.Base(child)) {
				m.dirs[dir] = append(m.dirs[dir], path.Base(child))
			}
			if dir == "." {
				break
			}
			child = dir
		}
	}
	for d := range m.dirs {
		slices.Sort(m.dirs[d])
	}
	return m
}

// Open opens name; a name that is not in the bundle is a *MissingError.
func (m *memFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if data, ok := m.files[name]; ok {
		return &memFile{info: memInfo{name: path.Base(name), size: int64(len(data)), mode: m.modes[name]}, r: bytes.NewReader(data)}, nil
	}
	if children, ok := m.dirs[name]; ok {
		return &memDir{fsys: m, name: name, children: children}, nil
	}
	return nil, &MissingError{Bundle: m.bundle, Path: name, what: m.what}
}

type memInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return i.mode }
func (i memInfo) ModTime() time.Time { return time.Unix(0, 0) }
func (i memInfo) IsDir() bool        { return i.mode.IsDir() }
func (i memInfo) Sys() any           { return nil }

type memFile struct {
	info memInfo
	r    *bytes.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	fsys     *memFS
	name     string
	children []string
	next     int
}

func (d *memDir) Stat() (fs.FileInfo, error) {
	return memInfo{name: path.Base(d.name), mode: fs.ModeDir | 0o755}, nil
}
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: fs.ErrInvalid}
}
func (d *memDir) Close() error { return nil }

// ReadDir lists the directory, sorted by name.
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.children[d.next:]
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if n > 0 && n < len(rest) {
		rest = rest[:n]
	}
	out := make([]fs.DirEntry, 0, len(rest))
	for _, c := range rest {
		full := c
		if d.name != "." {
			full = d.name + "/" + c
		}
		var info memInfo
		if data, ok := d.fsys.files[full]; ok {
			info = memInfo{name: c, size: int64(len(data)), mode: d.fsys.modes[full]}
		} else {
			info = memInfo{name: c, mode: fs.ModeDir | 0o755}
		}
		out = append(out, fs.FileInfoToDirEntry(info))
	}
	d.next += len(rest)
	return out, nil
}

var _ fs.ReadDirFile = (*memDir)(nil)
