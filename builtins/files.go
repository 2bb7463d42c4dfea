package builtins

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"text/template"

	udiff "github.com/aymanbagabas/go-udiff"
	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

// maxDiffSize bounds the files --diff reads to show a diff.
const maxDiffSize = 1 << 20

var fileParams = []Param{
	{"mode?", "str or int", "None", "Permission bits, `\"0644\"` or `0o644`. None keeps an existing file's mode; a new file gets 0644."},
	{"user?", "str", "None", "Owner (a user name). None keeps the owner."},
	{"group?", "str", "None", "Group (a group name). None keeps the group."},
}

var putSpec = &Spec{
	Name: "put",
	Doc: "Uploads a local file, or a string, to `dest` on the host. " +
		"Idempotent: nothing is uploaded or changed when the SHA-256 of the host's file, its mode and owner already match. " +
		"The upload is atomic: a temporary file in the same directory is renamed over `dest`. " +
		"Its local-fs effect is for `src`; an embedding app's sandbox that must not read local files allows local-fs " +
		"with no files of its own, so that `content=` works and every `src=` is refused.",
	Params: append([]Param{
		{"dest", "str", "", "Absolute path on the host."},
		{"src?", "str", "None", "Local file to upload, relative to the calling .star file."},
		{"content?", "str", "None", "Text to upload instead of src."},
	}, fileParams...),
	Control: true,
	Returns: "a result with `.changed` and `.ok`",
	Example: `put("/etc/motd", content="managed by star-deploy\n", mode="0644")`,
	Effects: EffectReadHost | EffectWriteHost | EffectLocalFS,
	Fn:      putFn,
}

var templateSpec = &Spec{
	Name: "template",
	Doc: "Renders a Go `text/template` file and uploads the result to `dest`, like `put`. " +
		"The template sees each entry of `vars` at the top level (`{{ .port }}`) and `.host` " +
		"(`{{ .host.name }}`, `{{ .host.data.role }}`); a missing key is an error.",
	Params: append([]Param{
		{"src", "str", "", "Local template file, relative to the calling .star file."},
		{"dest", "str", "", "Absolute path on the host."},
		{"vars?", "dict", "None", "Values for the template; the name `host` is reserved."},
	}, fileParams...),
	Control: true,
	Returns: "a result with `.changed` and `.ok`",
	Example: `template("templates/nginx.conf.tmpl", "/etc/nginx/conf.d/app.conf", vars={"port": 8080})`,
	Effects: EffectReadHost | EffectWriteHost | EffectLocalFS,
	Fn:      templateFn,
}

var getSpec = &Spec{
	Name: "get",
	Doc: "Downloads `src` from the host to the local file `dest` (relative to the calling .star file). " +
		"Changed when the local file was missing or different; the local write is atomic.",
	Params: []Param{
		{"src", "str", "", "Path on the host."},
		{"dest", "str", "", "Local path; include host.name to keep hosts apart."},
	},
	Control: true,
	Returns: "a result with `.changed` and `.ok`",
	Example: `get("/etc/hostname", "backup/" + host.name + "/hostname")`,
	Effects: EffectReadHost | EffectLocalFS,
	Fn:      getFn,
}

// fileWant is the desired state of one file on the host.
type fileWant struct {
	dest    string
	open    func() (io.ReadCloser, error) // the new content
	sum     string                        // its hex SHA-256
	size    int64
	mode    fs.FileMode
	hasMode bool
	user    string
	group   string
}

func putFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	var dest, user, group string
	var src, content, modeV starlark.Value = starlark.None, starlark.None, starlark.None
	if err := s.Unpack(args, kw, &dest, &src, &content, &modeV, &user, &group); err != nil {
		return nil, err
	}
	w := fileWant{dest: dest, user: user, group: group}
	if w.mode, w.hasMode, err = parseMode(modeV); err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	if err := checkDest("put", dest); err != nil {
		return nil, err
	}
	srcPath, hasSrc := src.(starlark.String)
	text, hasContent := content.(starlark.String)
	switch {
	case hasSrc == hasContent:
		return nil, fmt.Errorf("put: give exactly one of src= (a local file) or content= (a string)")
	case src != starlark.None && !hasSrc:
		return nil, fmt.Errorf("put: src: want a string, got %s", src.Type())
	case content != starlark.None && !hasContent:
		return nil, fmt.Errorf("put: content: want a string, got %s", content.Type())
	}
	if hasContent {
		w.setContent([]byte(text))
	} else {
		local := localPath(thread, string(srcPath))
		if w.sum, w.size, err = hashLocal(h, local); err != nil {
			return nil, fmt.Errorf("put: src: %w", err)
		}
		w.open = func() (io.ReadCloser, error) { return h.local().Open(local) }
	}
	if name == "" {
		name = "put " + dest
	}
	return h.operation(thread, s.Name, name, ctl, func(ctx context.Context) (outcome, error) {
		return h.ensureFile(ctx, ctl, w)
	})
}

func templateFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	var src, dest, user, group string
	var vars, modeV starlark.Value = starlark.None, starlark.None
	if err := s.Unpack(args, kw, &src, &dest, &vars, &modeV, &user, &group); err != nil {
		return nil, err
	}
	w := fileWant{dest: dest, user: user, group: group}
	if w.mode, w.hasMode, err = parseMode(modeV); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if err := checkDest("template", dest); err != nil {
		return nil, err
	}
	data := map[string]any{}
	if vars != starlark.None {
		d, ok := vars.(*starlark.Dict)
		if !ok {
			return nil, fmt.Errorf("template: vars: want a dict, got %s", vars.Type())
		}
		g, err := fromStarlark(d)
		if err != nil {
			return nil, fmt.Errorf("template: vars: %w", err)
		}
		data = g.(map[string]any)
		if _, clash := data["host"]; clash {
			return nil, fmt.Errorf("template: vars: the name \"host\" is reserved for the host (.host.name, .host.data); rename that var")
		}
	}
	hostData, _ := fromStarlark(h.Value())
	data["host"] = hostData
	local := localPath(thread, src)
	rendered, err := renderTemplate(h, src, local, data)
	if err != nil {
		return nil, err
	}
	w.setContent(rendered)
	if name == "" {
		name = "template " + dest
	}
	return h.operation(thread, s.Name, name, ctl, func(ctx context.Context) (outcome, error) {
		return h.ensureFile(ctx, ctl, w)
	})
}

func renderTemplate(h *Host, name, local string, data map[string]any) ([]byte, error) {
	r, err := h.local().Open(local)
	if err != nil {
		return nil, fmt.Errorf("template: src: %w", err)
	}
	text, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("template: src: %w", err)
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, err // text/template errors start with "template: FILE:LINE:"
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func getFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	var src, dest string
	if err := s.Unpack(args, kw, &src, &dest); err != nil {
		return nil, err
	}
	if !h.local().CanWrite() {
		return nil, fmt.Errorf("get: %s: writing local files is not allowed here", dest)
	}
	local := localPath(thread, dest)
	if name == "" {
		name = "get " + src
	}
	return h.operation(thread, s.Name, name, ctl, func(ctx context.Context) (outcome, error) {
		remote, err := h.file(ctx, probeControl(ctl), src)
		if err != nil {
			return outcome{}, err
		}
		if !remote.Exists {
			return outcome{}, fmt.Errorf("get %s from %s: %w", src, h.Name, fs.ErrNotExist)
		}
		if remote.Type != "file" {
			return outcome{}, fmt.Errorf("get %s from %s: it is a %s, not a file", src, h.Name, remote.Type)
		}
		if sum, _, err := hashLocal(h, local); err == nil && sum == remote.SHA256 {
			return outcome{status: StatusOK}, nil
		}
		msg := fmt.Sprintf("download %s to %s (%d bytes)", src, local, remote.Size)
		if h.Dry {
			return outcome{status: StatusChanged, message: "would " + msg}, nil
		}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := h.local().WriteFile(local, pr)
			pr.CloseWithError(err)
			done <- err
		}()
		if ctl.privileged() {
			// Streamed through cat as the privileged user, never held whole.
			var res connectors.Result
			res, err = h.execStream(ctx, "cat -- "+connectors.Quote(src), probeControl(ctl), pw)
			if err == nil && res.ExitCode != 0 {
				err = &connectors.ExitError{Target: h.Name, Script: "cat " + src, Result: res}
			}
		} else {
			err = h.Conn.Get(ctx, src, pw)
		}
		pw.CloseWithError(err)
		if werr := <-done; err == nil && werr != nil {
			err = fmt.Errorf("write %s: %w", local, werr)
		}
		if err != nil {
			return outcome{}, fmt.Errorf("get %s from %s: %w", src, h.Name, err)
		}
		return outcome{status: StatusChanged, message: msg}, nil
	})
}

func (w *fileWant) setContent(b []byte) {
	sum := sha256.Sum256(b)
	w.sum, w.size = hex.EncodeToString(sum[:]), int64(len(b))
	w.open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// ensureFile makes dest hold w's content, mode and owner, changing only what
// differs. It is the shared core of put and template.
func (h *Host) ensureFile(ctx context.Context, ctl Control, w fileWant) (outcome, error) {
	cur, sweepLater, err := h.destFile(ctx, probeControl(ctl), w.dest)
	if err != nil {
		return outcome{}, err
	}
	if cur.Exists && cur.Type != "file" {
		return outcome{}, fmt.Errorf("put %s on %s: it is a %s, not a file", w.dest, h.Name, cur.Type)
	}
	sameContent := cur.Exists && cur.SHA256 == w.sum
	mode := w.mode
	if !w.hasMode {
		mode = 0o644
		if cur.Exists {
			mode = cur.Mode
		}
	}
	sameMode := cur.Exists && cur.Mode == mode
	sameOwner := cur.Exists && (w.user == "" || w.user == cur.Owner) && (w.group == "" || w.group == cur.Group)
	if sameContent && sameMode && sameOwner {
		return outcome{status: StatusOK}, nil
	}

	var what []string
	switch {
	case !cur.Exists:
		what = append(what, fmt.Sprintf("create %s (%d bytes, mode %s)", w.dest, w.size, formatMode(mode)))
	case !sameContent:
		what = append(what, fmt.Sprintf("update %s (%d -> %d bytes)", w.dest, cur.Size, w.size))
	}
	if cur.Exists && !sameMode {
		what = append(what, fmt.Sprintf("chmod %s (was %s)", formatMode(mode), formatMode(cur.Mode)))
	}
	if !sameOwner && (w.user != "" || w.group != "") {
		what = append(what, "chown "+owner(w.user, w.group))
	}
	out := outcome{status: StatusChanged, message: strings.Join(what, ", ")}
	if h.Diff && !sameContent {
		out.diff = h.diff(ctx, ctl, cur, w)
	}
	if h.Dry {
		out.message = "would " + out.message
		return out, nil
	}
	defer h.forget(w.dest)
	if sweepLater != nil {
		sweepLater(ctx)
	}

	chown := ""
	if !sameOwner && (w.user != "" || w.group != "") {
		chown = owner(w.user, w.group)
	} else if ctl.privileged() && cur.Exists {
		chown = owner(cur.Owner, cur.Group) // a privileged upload keeps the file's owner
	}
	switch {
	case !sameContent && ctl.privileged():
		err = h.putPrivileged(ctx, ctl, w, mode, chown)
	case !sameContent && chown != "":
		err = h.putOwned(ctx, ctl, w, cur, mode, chown)
	case !sameContent:
		err = h.putPlain(ctx, w, mode)
	default:
		var cmds []string
		if !sameMode {
			cmds = append(cmds, "chmod -- "+formatMode(mode)+" "+connectors.Quote(w.dest))
		}
		if chown != "" && !sameOwner {
			cmds = append(cmds, "chown -- "+connectors.Quote(chown)+" "+connectors.Quote(w.dest))
		}
		_, err = h.check(ctx, strings.Join(cmds, " && "), probeControl(ctl), "")
	}
	if err != nil {
		return outcome{}, err
	}
	return out, nil
}

// destFile reads the file fact of dest before put or template change it.
// Once per directory, privilege and run, the same probe also removes what
// earlier runs left there (connectors.SweepScript), at no extra round trip.
// When the fact came from the cache, the sweep is returned as sweepLater,
// to run only if the file is written.
func (h *Host) destFile(ctx context.Context, ctl Control, dest string) (fi fileInfo, sweepLater func(context.Context), err error) {
	sweep, done := h.sweepDue(ctx, ctl, dest)
	if sweep == "" {
		fi, err := h.file(ctx, ctl, dest)
		return fi, nil, err
	}
	probed := false
	def := factDef{Name: "file", read: func(ctx context.Context, h *Host, ctl Control, args []string) (starlark.Value, error) {
		probed = true
		fi, err := h.statFile(ctx, ctl, args[0], sweep)
		if err != nil {
			return nil, err
		}
		return fi.value(), nil
	}}
	v, err := h.readFact(ctx, def, ctl, []string{dest})
	if err != nil {
		return fileInfo{}, nil, err
	}
	if probed {
		done()
		return fileInfoFrom(v), nil, nil
	}
	return fileInfoFrom(v), func(ctx context.Context) {
		if _, err := h.run(ctx, sweep, probeControl(ctl), ""); err == nil {
			done()
		}
	}, nil
}

// sweepDue returns the sweep of dest's directory, and a function that
// records it done, when this run has not swept that directory with ctl's
// privileges yet; "" outside a run and under --dry.
func (h *Host) sweepDue(ctx context.Context, ctl Control, dest string) (string, func()) {
	run, ok := connectors.RunFrom(ctx)
	if !ok || h.Dry {
		return "", nil
	}
	dir := path.Dir(dest)
	key := dir + "\x00" + ctl.privilegeKey()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.swept[key] {
		return "", nil
	}
	return connectors.SweepScript(dir, run), func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.swept == nil {
			h.swept = map[string]bool{}
		}
		h.swept[key] = true
	}
}

func (h *Host) putPlain(ctx context.Context, w fileWant, mode fs.FileMode) error {
	r, err := w.open()
	if err != nil {
		return err
	}
	defer r.Close()
	// Connectors name the file and the host in their errors.
	return h.Conn.Put(ctx, w.dest, r, mode)
}

// ownedPut gives the uploaded temporary file $t (0600) the owner (keeping
// the old file's where allowed first), then the mode, and renames it over
// dest last: a chown that fails (an unknown user) leaves the old file, and
// the temporary file is removed.
const ownedPut = `t=%s d=%s
%sif chown -- %s "$t" && chmod %s "$t" && mv -f -- "$t" "$d"; then exit 0; fi
rm -f -- "$t"
exit 1`

// putOwned is putPlain for a put that also changes the owner or group: the
// connector uploads to a temporary name of the run (connectors.TempName),
// and ownedPut renames it into place once owner and mode are set. A
// temporary file that a lost connection leaves is removed by a later run.
func (h *Host) putOwned(ctx context.Context, ctl Control, w fileWant, cur fileInfo, mode fs.FileMode, chown string) error {
	r, err := w.open()
	if err != nil {
		return err
	}
	defer r.Close()
	tmp := connectors.TempName(ctx, w.dest)
	if err := h.Conn.Put(ctx, tmp, r, 0o600); err != nil {
		return err
	}
	keep := ""
	if cur.Exists {
		keep = "chown -- " + connectors.Quote(owner(cur.Owner, cur.Group)) + ` "$t" 2>/dev/null` + "\n"
	}
	script := fmt.Sprintf(ownedPut, connectors.Quote(tmp), connectors.Quote(w.dest), keep, connectors.Quote(chown), formatMode(mode))
	res, err := h.run(ctx, script, probeControl(ctl), "")
	if err == nil && res.ExitCode != 0 {
		err = &connectors.ExitError{Target: h.Name, Script: "chown " + chown + " " + w.dest, Result: res}
	}
	if err != nil {
		return fmt.Errorf("put %s on %s: %w", w.dest, h.Name, err)
	}
	return nil
}

// privilegedPut streams the content on stdin into a temporary file created
// (0600, by mktemp, named for the run: connectors.TempTemplate) in dest's
// directory by the privileged user, sets owner and mode, and renames it
// over dest; the temporary file is removed on failure, and so is one that
// did not get all w.size bytes (its input was cut short).
const privilegedPut = `set -e
d=%s
t=$(mktemp %s)
trap 'rm -f -- "$t"' EXIT
trap 'exit 143' TERM HUP INT
cat > "$t"
n=$(wc -c < "$t" | tr -d ' ')
[ "$n" = %d ] || { echo "the upload was cut short: $n of %d bytes arrived" >&2; exit 1; }
%s
chmod %s "$t"
mv -f -- "$t" "$d"
trap - EXIT`

func (h *Host) putPrivileged(ctx context.Context, ctl Control, w fileWant, mode fs.FileMode, chown string) error {
	r, err := w.open()
	if err != nil {
		return err
	}
	defer r.Close()
	chownLine := ""
	if chown != "" {
		chownLine = "chown -- " + connectors.Quote(chown) + ` "$t"`
	}
	script := fmt.Sprintf(privilegedPut, connectors.Quote(w.dest), connectors.Quote(connectors.TempTemplate(ctx, w.dest)), w.size, w.size, chownLine, formatMode(mode))
	res, err := h.exec(ctx, script, probeControl(ctl), r)
	if err == nil && res.ExitCode != 0 {
		err = &connectors.ExitError{Target: h.Name, Script: "write " + w.dest, Result: res}
	}
	if err != nil {
		return fmt.Errorf("put %s on %s: %w", w.dest, h.Name, err)
	}
	return nil
}

// diff returns the unified diff from the host's file to w's content, or a
// note when either side is binary or too large to show.
func (h *Host) diff(ctx context.Context, ctl Control, cur fileInfo, w fileWant) string {
	if w.size > maxDiffSize || cur.Size > maxDiffSize {
		return fmt.Sprintf("--- %s\n+++ %s\n(not shown: larger than %d bytes)\n", w.dest, w.dest, maxDiffSize)
	}
	var old bytes.Buffer
	if cur.Exists {
		var err error
		if ctl.privileged() {
			var res connectors.Result
			res, err = h.check(ctx, "cat -- "+connectors.Quote(w.dest), probeControl(ctl), "")
			if err == nil {
				err = whole(res)
			}
			old.Write(res.Stdout)
		} else {
			err = h.Conn.Get(ctx, w.dest, &old)
		}
		if err != nil {
			return fmt.Sprintf("(diff not shown: reading %s: %v)\n", w.dest, err)
		}
	}
	r, err := w.open()
	if err != nil {
		return fmt.Sprintf("(diff not shown: %v)\n", err)
	}
	defer r.Close()
	neu, err := io.ReadAll(r)
	if err != nil {
		return fmt.Sprintf("(diff not shown: %v)\n", err)
	}
	if bytes.IndexByte(old.Bytes(), 0) >= 0 || bytes.IndexByte(neu, 0) >= 0 {
		return fmt.Sprintf("Binary files %s and %s differ\n", w.dest, w.dest)
	}
	oldLabel := w.dest
	if !cur.Exists {
		oldLabel = "/dev/null"
	}
	return udiff.Unified(oldLabel, w.dest, old.String(), string(neu))
}

func owner(user, group string) string {
	if group == "" {
		return user
	}
	return user + ":" + group
}

func checkDest(op, dest string) error {
	if !path.IsAbs(dest) {
		return fmt.Errorf("%s: dest must be an absolute path on the host, got %q", op, dest)
	}
	if strings.HasSuffix(dest, "/") {
		return fmt.Errorf("%s: dest must name a file, got the directory %q", op, dest)
	}
	return nil
}

// localPath resolves p against the directory of the calling .star file.
func localPath(thread *starlark.Thread, p string) string {
	if path.IsAbs(p) {
		return p
	}
	return path.Join(callerDir(thread), p)
}

// hashLocal returns the hex SHA-256 and size of a local file.
func hashLocal(h *Host, p string) (string, int64, error) {
	r, err := h.local().Open(p)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, r)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(sum.Sum(nil)), n, nil
}
