package connectors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// Temporary files. Every upload writes a temporary file in the destination
// directory and renames it over the destination. Its name says which run
// wrote it:
//
//	.star-deploy-<run id>-<base>.<random>
//
// so that a later run can recognise the leftovers of a run that lost its
// connection (or was killed) between creating the file and renaming it,
// and remove them (SweepScript). The run id is 12 lower-case hex digits.

// tempPrefix starts every temporary file name; a run's names go on with
// its id and "-".
const tempPrefix = ".star-deploy-"

// runIDLen is the length of a run id, in hex digits.
const runIDLen = 12

// nameMax is the longest file name (in bytes) that Linux, the BSDs and
// macOS accept: NAME_MAX.
const nameMax = 255

// Run identifies one run of a deploy: the runtime makes one per run and
// carries it in the context (WithRun) to the connectors and builtins.
type Run struct {
	ID    string    // runIDLen lower-case hex digits, e.g. "3f9a0c1b27de"
	Start time.Time // when the run started (with a monotonic reading)
}

// NewRun returns a run with a new random id that starts now.
func NewRun() Run { return Run{ID: randomHex(runIDLen / 2), Start: time.Now()} }

type runKey struct{}

// WithRun returns ctx carrying r.
func WithRun(ctx context.Context, r Run) context.Context {
	return context.WithValue(ctx, runKey{}, r)
}

// RunFrom returns the run carried by ctx, if any.
func RunFrom(ctx context.Context) (Run, bool) {
	r, ok := ctx.Value(runKey{}).(Run)
	return r, ok
}

// runID is the id of ctx's run, or a fresh one for a call made outside a
// run (that call's temporary files then look like a run of their own).
func runID(ctx context.Context) string {
	if r, ok := RunFrom(ctx); ok && validRunID(r.ID) {
		return r.ID
	}
	return randomHex(runIDLen / 2)
}

func validRunID(id string) bool {
	if len(id) != runIDLen {
		return false
	}
	for _, c := range id {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// TempName returns a new temporary file path in dst's directory for the
// run of ctx: dir/.star-deploy-<run id>-<base>.<12 random hex digits>. A
// long base name is shortened so that the name fits in NAME_MAX.
func TempName(ctx context.Context, dst string) string {
	return tempPath(runID(ctx), dst, "."+randomHex(6))
}

// TempTemplate is TempName for mktemp(1): the name ends in XXXXXX (busybox
// mktemp needs them last), which mktemp replaces.
func TempTemplate(ctx context.Context, dst string) string {
	return tempPath(runID(ctx), dst, ".XXXXXX")
}

func tempPath(id, dst, suffix string) string {
	dir, base := path.Dir(dst), path.Base(dst)
	head := tempPrefix + id + "-"
	if room := nameMax - len(head) - len(suffix); len(base) > room {
		cut := max(room, 0)
		for cut > 0 && !utf8.RuneStart(base[cut]) {
			cut-- // do not split a multi-byte character
		}
		base = base[:cut]
	}
	return path.Join(dir, head+base+suffix)
}

// IsTempName reports whether the file name (not a path) is one of our
// temporary files, of any run.
func IsTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	return ok && len(rest) > runIDLen && validRunID(rest[:runIDLen]) && rest[runIDLen] == '-'
}

// SweepScript returns shell commands (POSIX sh, GNU or busybox userland,
// BSD stat as a fallback) that remove from dir the temporary files that
// other runs left: names of our pattern with another run id, regular files
// only (no links, directories or others), last modified before r started.
// The commands never fail, print nothing and are safe under `set -e`.
//
// The age is judged on the host's own clock: the cut-off is the host's
// `date +%s` minus the time this run has been going, rounded up, so the
// clocks of this machine and the host need not agree. date runs only once
// the glob found a file: a directory with no leftover costs no process.
// Modification times
// have one-second steps, so a leftover from the last second or two before
// the run started is kept, for a later run to remove. A file that another
// run, still going, has not written to since this run started would be
// removed too; that run's rename then fails and leaves the old file.
func SweepScript(dir string, r Run) string {
	age := sweepAge(r, time.Now())
	glob := Quote(dir) + "/" + tempPrefix + strings.Repeat("[0-9a-f]", runIDLen) + "-*"
	self := Quote(tempPrefix+r.ID+"-") + "*"
	return fmt.Sprintf(`{ c=
for f in %s; do
  case ${f##*/} in %s) continue;; esac
  if [ -f "$f" ] && [ ! -L "$f" ]; then
    [ -n "$c" ] || { c=$(date +%%s) && c=$((c - %d)); } || break
    m=$(stat -c %%Y -- "$f" || stat -f %%m -- "$f") && [ "$m" -lt "$c" ] && rm -f -- "$f"
  fi
done; } >/dev/null 2>&1 || :
`, glob, self, age)
}

// SweepParams are what a sweep done on the host without a shell (a command
// server: connectors/ssh) needs to remove what SweepScript removes: the
// names to consider start with prefix, then digits lower-case hex digits
// and '-', and not with prefix, r.ID and '-'; a file goes when it is
// regular (not a link) and was last modified more than age seconds before
// the host's clock says it is now.
func SweepParams(r Run, now time.Time) (prefix string, digits int, age int64) {
	return tempPrefix, runIDLen, sweepAge(r, now)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24 and later)
	return hex.EncodeToString(b)
}
