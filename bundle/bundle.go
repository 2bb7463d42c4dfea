// Package bundle writes and reads star-deploy bundles: one file that holds
// deploy scripts, every module they load and the local files they read, so
// that a host can run the deploy without the controller's checkout
// (star-deploy pull, and later push runs that execute on the host).
//
// # Format (version 1)
//
// A bundle is a gzip-compressed tar archive. Its first entry is
// manifest.json (Manifest); then, sorted by name, files/PATH for every
// file of the deploy's directory that was packed (PATH is slash-separated
// and relative to that directory, the bundle's root), and stdlib/NAME.star
// for every stdlib module the scripts load, directly or through other
// modules, and modules/COMMIT/PATH for every remote module
// (load("git+…")) at the commit it was locked at. Nothing else may be in the archive; Read checks every file
// against the SHA-256 in the manifest.
//
// # Reproducible
//
// The same inputs give byte-identical bundles, so that the SHA-256 of a
// bundle (Hash) identifies its content: it is the cache key of a bundle on
// a host and what a last-run report records. Entries are sorted by name,
// their modification times are the Unix epoch, their owner is 0:0 with no
// names, their mode is 0644, or 0755 for a file with any execute bit; the
// gzip header has no name and no time. The manifest is JSON with sorted
// keys. The same bytes come out of the same star-deploy build; a different
// Go release may compress differently.
//
// # The stdlib
//
// load("@stdlib//NAME.star") modules are embedded in the binary. A bundle
// carries a copy of those its scripts load, and the runtime serves
// @stdlib// from that copy when it runs the bundle: the bytes that were
// signed are the Starlark that runs, whatever star-deploy version the host
// has, and a fleet can upgrade hosts and controller at different times. The
// manifest records the star-deploy version and the SHA-256 of the whole
// embedded stdlib it was made with (StdlibHash), so that a run can say when
// they differ. What stays the host's own is the binary's builtins; a
// module that needs a builtin the host's binary lacks fails to compile,
// before any change.
package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/star-deploy/star-deploy/internal/jsondata"
)

// FormatVersion is the version of the bundle format this package writes
// and the only one it reads.
const FormatVersion = 1

// MaxSize bounds the bytes of a bundle's files, uncompressed, that Read
// accepts, so that a hostile or broken bundle cannot exhaust memory.
const MaxSize = 512 << 20

// Manifest describes a bundle. It is the archive's manifest.json.
type Manifest struct {
	Format     int    `json:"format"`      // FormatVersion
	StarDeploy string `json:"star_deploy"` // the version of star-deploy that made it
	// StdlibHash is the SHA-256 (hex) of the embedded stdlib of the
	// star-deploy that made the bundle (StdlibHash of its stdlib.FS).
	StdlibHash string `json:"stdlib_sha256"`
	// Scripts are the entry scripts, paths under files/, in the order they
	// run.
	Scripts []string `json:"scripts"`
	Files   []File   `json:"files"`  // under files/, sorted by path
	Stdlib  []File   `json:"stdlib"` // stdlib modules under stdlib/, sorted by path
	// Modules are the remote modules the scripts load, under
	// modules/COMMIT/PATH, sorted by path; ModuleSources the commit of
	// each source (git+URL@REF) they were read at, and ModuleAliases the
	// config file's modules (names of sources). A run of the bundle loads
	// them from the bundle, fetching nothing.
	Modules       []File            `json:"modules,omitempty"`
	ModuleSources map[string]string `json:"module_sources,omitempty"`
	ModuleAliases map[string]string `json:"module_aliases,omitempty"`
	// Hosts is inventory data for the hosts that run the bundle, by host
	// name; empty when the bundle was made without an inventory.
	Hosts map[string]HostData `json:"hosts,omitempty"`
}

// File is one file in a bundle.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Mode   string `json:"mode"` // "0644" or "0755"
}

// HostData is the inventory data of one host.
type HostData struct {
	Groups []string       `json:"groups,omitempty"`
	Data   map[string]any `json:"data,omitempty"`
}

// Bundle is a bundle read into memory.
type Bundle struct {
	Name     string // what the bundle was read from, for messages: a file or a URL
	Hash     string // the SHA-256 (hex) of the bundle's bytes
	Manifest Manifest
	files    map[string][]byte // by path under files/
	stdlib   map[string][]byte // by path under stdlib/
	modules  map[string][]byte // by path under modules/
}

// Hash returns the hex SHA-256 of a bundle's bytes, its identity.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// StdlibHash returns the SHA-256 (hex) of a stdlib file system: of each
// .star file's name and content, in name order.
func StdlibHash(stdlib fs.FS) (string, error) {
	names, err := fs.Glob(stdlib, "*.star")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(stdlib, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// entry is one file to write into the archive.
type entry struct {
	name string // archive path: files/... or stdlib/...
	data []byte
	exec bool
}

func fileMode(exec bool) int64 {
	if exec {
		return 0o755
	}
	return 0o644
}

// archive writes the manifest and entries as a deterministic tar.gz.
func archive(m Manifest, entries []entry) ([]byte, error) {
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	mj = append(mj, '\n')
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	// A zero Header: no name, no modification time, OS unknown.
	tw := tar.NewWriter(zw)
	all := append([]entry{{name: manifestName, data: mj}}, entries...)
	for _, e := range all {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     e.name,
			Size:     int64(len(e.data)),
			Mode:     fileMode(e.exec),
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const (
	manifestName = "manifest.json"
	filesDir     = "files/"
	stdlibDir    = "stdlib/"
	modulesDir   = "modules/"
)

// Read parses and checks a bundle: the format version, that every file the
// manifest lists is there with its SHA-256 and size, and that the archive
// holds nothing else. name says where it came from, for messages.
func Read(name string, b []byte) (*Bundle, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("bundle %s: %s", name, fmt.Sprintf(format, args...))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, bad("not a star-deploy bundle (%v)", err)
	}
	tr := tar.NewReader(zr)
	out := &Bundle{Name: name, Hash: Hash(b), files: map[string][]byte{}, stdlib: map[string][]byte{}, modules: map[string][]byte{}}
	var total int64
	seenManifest := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("not a star-deploy bundle (%v)", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, bad("%s is not a regular file", hdr.Name)
		}
		total += hdr.Size
		if hdr.Size < 0 || total > MaxSize {
			return nil, bad("its files are larger than %d MiB", MaxSize>>20)
		}
		data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return nil, bad("reading %s: %v", hdr.Name, err)
		}
		switch {
		case hdr.Name == manifestName && !seenManifest:
			seenManifest = true
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			if err := dec.Decode(&out.Manifest); err != nil {
				return nil, bad("manifest.json: %v", err)
			}
			for name, h := range out.Manifest.Hosts {
				for k, v := range h.Data {
					if h.Data[k], err = jsondata.Numbers(v); err != nil {
						return nil, bad("manifest.json: host %s, key %s: %v", name, k, err)
					}
				}
				out.Manifest.Hosts[name] = h
			}
			if out.Manifest.Format != FormatVersion {
				return nil, bad("format version %d; this star-deploy reads version %d (made by %s)", out.Manifest.Format, FormatVersion, out.Manifest.StarDeploy)
			}
		case !seenManifest:
			return nil, bad("not a star-deploy bundle (manifest.json is not its first file)")
		case strings.HasPrefix(hdr.Name, filesDir):
			if err := putOnce(out.files, strings.TrimPrefix(hdr.Name, filesDir), data); err != nil {
				return nil, bad("%v", err)
			}
		case strings.HasPrefix(hdr.Name, stdlibDir):
			if err := putOnce(out.stdlib, strings.TrimPrefix(hdr.Name, stdlibDir), data); err != nil {
				return nil, bad("%v", err)
			}
		case strings.HasPrefix(hdr.Name, modulesDir):
			if err := putOnce(out.modules, strings.TrimPrefix(hdr.Name, modulesDir), data); err != nil {
				return nil, bad("%v", err)
			}
		default:
			return nil, bad("unexpected file %s", hdr.Name)
		}
	}
	if !seenManifest {
		return nil, bad("not a star-deploy bundle (no manifest.json)")
	}
	if err := check(out.Manifest.Files, out.files, filesDir); err != nil {
		return nil, bad("%v", err)
	}
	if err := check(out.Manifest.Stdlib, out.stdlib, stdlibDir); err != nil {
		return nil, bad("%v", err)
	}
	if err := check(out.Manifest.Modules, out.modules, modulesDir); err != nil {
		return nil, bad("%v", err)
	}
	if len(out.Manifest.Scripts) == 0 {
		return nil, bad("no scripts")
	}
	for _, s := range out.Manifest.Scripts {
		if _, ok := out.files[s]; !ok {
			return nil, bad("script %s is not in it", s)
		}
	}
	return out, nil
}

func putOnce(m map[string][]byte, p string, data []byte) error {
	if !fs.ValidPath(p) || p == "." {
		return fmt.Errorf("invalid path %q", p)
	}
	if _, dup := m[p]; dup {
		return fmt.Errorf("%s is in it twice", p)
	}
	m[p] = data
	return nil
}

// check compares the files of an archive directory with their manifest
// entries.
func check(listed []File, got map[string][]byte, dir string) error {
	seen := map[string]bool{}
	for _, f := range listed {
		data, ok := got[f.Path]
		if !ok {
			return fmt.Errorf("%s%s is in the manifest but not in the archive", dir, f.Path)
		}
		if int64(len(data)) != f.Size || Hash(data) != f.SHA256 {
			return fmt.Errorf("%s%s does not match its SHA-256 in the manifest (the bundle was altered)", dir, f.Path)
		}
		seen[f.Path] = true
	}
	for p := range got {
		if !seen[p] {
			return fmt.Errorf("%s%s is not in the manifest", dir, p)
		}
	}
	return nil
}

// Files returns the bundle's files (its root: scripts, modules, the files
// put(src=) and template() read) as a read-only fs.FS. Opening a file that
// is not in the bundle fails with a *MissingError that names the bundle
// and the file.
func (b *Bundle) Files() fs.FS { return newMemFS(b.Name, b.files, b.Manifest.Files, "") }

// Stdlib returns the stdlib modules the bundle carries, NAME.star at the
// root, for runtime.Options.Stdlib.
func (b *Bundle) Stdlib() fs.FS {
	return newMemFS(b.Name, b.stdlib, b.Manifest.Stdlib, "stdlib module ")
}

// Modules returns the remote modules the bundle carries, COMMIT/PATH at
// the root (see Manifest.Modules).
func (b *Bundle) Modules() fs.FS {
	return newMemFS(b.Name, b.modules, b.Manifest.Modules, "remote module ")
}

// MissingError is the error of opening a file a bundle does not hold.
type MissingError struct {
	Bundle string // the bundle's name
	Path   string // the path asked for
	what   string
}

func (e *MissingError) Error() string {
	if e.what != "" {
		return fmt.Sprintf("the bundle %s does not hold the %s%s", e.Bundle, e.what, e.Path)
	}
	return fmt.Sprintf("%s is not in the bundle %s: it was left out when the bundle was made (star-deploy bundle --include %s, or drop the --exclude that matches it)", e.Path, e.Bundle, e.Path)
}

// Is makes a MissingError match fs.ErrNotExist.
func (e *MissingError) Is(target error) bool { return target == fs.ErrNotExist }

// modeOf parses a manifest mode.
func modeOf(s string) fs.FileMode {
	if s == "0755" {
		return 0o755
	}
	return 0o644
}

// formatMode renders a mode for the manifest.
func formatMode(exec bool) string {
	return fmt.Sprintf("%04o", fileMode(exec))
}
