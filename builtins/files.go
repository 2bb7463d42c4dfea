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

// writeParams are the parameters of the builtins that write a whole file,
// after fileParams.
var writeParams = []Param{
	{"follow?", "bool", "True", "When `dest` is a symbolic link, write the file it finally points to (through every link), " +
		"atomically in that file's directory, and report that file. A dangling link's target is created when its directory exists " +
		"(as Ansible's `follow=yes` and `cp` do); a loop, or a target in a missing directory, fails. " +
		"False replaces the link itself with a regular file."},
	{"validate?", "str", "None", "A command that must accept the new content before it replaces the old, `%s` standing for the " +
		"path of the new temporary file (in the destination's directory, with its final mode and owner; `%%` is a `%`): " +
		"`\"visudo -cf %s\"`, `\"nginx -t -c %s\"`. It runs on the host, with the operation's privileges, only when the content changes, " +
		"and not under --dry. When it fails, the old file stays, the temporary file is removed and the operation fails " +
		"with the command and the last line of its stderr."},
}

var putSpec = &Spec{
	Name: "put",
	Doc: "Uploads a local file, or a string, to `dest` on the host. " +
		"Idempotent: nothing is uploaded or changed when the SHA-256 of the host's file, its mode and owner already match. " +
		"The upload is atomic: a temporary file in the same directory is renamed over `dest`. " +
		"A `dest` that is a symbolic link is followed (`follow=`), and `validate=` can check the new content first. " +
		"Its local-fs effect is for `src`; an embedding app's sandbox that must not read local files allows local-fs " +
		"with no files of its own, so that `content=` works and every `src=` is refused.",
	Params: append([]Param{
		{"dest", "str", "", "Absolute path on the host."},
		{"src?", "str", "None", "Local file to upload, relative to the calling .star file (in a remote module: a file of its repository)."},
		{"content?", "str", "None", "Text to upload instead of src."},
	}, append(fileParams, writeParams...)...),
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
		"(`{{ .host.name }}`, `{{ .host.data.role }}`); a missing key is an error. " +
		"A `dest` that is a symbolic link is followed (`follow=`), and `validate=` can check the rendered file first.",
	Params: append([]Param{
		{"src", "str", "", "Local template file, relative to the calling .star file (in a remote module: a file of its repository)."},
		{"dest", "str", "", "Absolute path on the host."},
		{"vars?", "dict", "None", "Values for the template; the name `host` is reserved."},
	}, append(fileParams, writeParams...)...),
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
	follow  bool   // write through a symbolic link at dest
	unlink  bool   // dest is a link that the write replaces (follow=False)
	check   string // validate=, expanded for the shell (checkScript); "" for none
	checkOf string // validate= as given, for messages
}

func putFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	var dest, user, group, validate string
	var src, content, modeV starlark.Value = starlark.None, starlark.None, starlark.None
	follow := true
	if err := s.Unpack(args, kw, &dest, &src, &content, &modeV, &user, &group, &follow, &validate); err != nil {
		return nil, err
	}
	w, err := newFileWant("put", dest, user, group, modeV, follow, validate)
	if err != nil {
		return nil, err
	}
	srcPath, hasSrc := src.(starlark.String)
	text, hasContent := content.(starlark.String)
	if !hasSrc && src != starlark.None {
		return nil, fmt.Errorf("put: src must be a string (a local path), got %s", src.Type())
	}
	if !hasContent && content != starlark.None {
		return nil, fmt.Errorf("put: content must be a string, got %s (content = str(x) writes a number's text)", content.Type())
	}
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
		local, err := localPath(thread, h, string(srcPath), false)
		if err != nil {
			return nil, fmt.Errorf("put: src: %w", err)
		}
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
	var src, dest, user, group, validate string
	var vars, modeV starlark.Value = starlark.None, starlark.None
	follow := true
	if err := s.Unpack(args, kw, &src, &dest, &vars, &modeV, &user, &group, &follow, &validate); err != nil {
		return nil, err
	}
	w, err := newFileWant("template", dest, user, group, modeV, follow, validate)
	if err != nil {
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
	local, err := localPath(thread, h, src, false)
	if err != nil {
		return nil, fmt.Errorf("template: src: %w", err)
	}
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
	local, err := localPath(thread, h, dest, true)
	if err != nil {
		return nil, fmt.Errorf("get: dest: %w", err)
	}
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
	cur, final, sweep, err := h.destFile(ctx, probeControl(ctl), w.dest, w.follow)
	if err != nil {
		return outcome{}, err
	}
	via := "" // the link written through
	if final != w.dest {
		via, w.dest = w.dest, final
	}
	unlink := cur.Exists && cur.Type == "link" // follow=False: the link becomes a file
	if unlink {
		w.unlink = true
		cur = fileInfo{}
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

	out := outcome{status: StatusChanged, message: changeMessage(w, cur, mode, sameContent, sameMode, sameOwner, unlink, via)}
	if h.Diff && !sameContent {
		out.diff = h.diff(ctx, ctl, cur, w)
	}
	if h.Dry {
		out.message = "would " + out.message
		return out, nil
	}
	defer h.forget(w.dest)
	if via != "" {
		defer h.forget(via)
	}

	chown := ""
	if !sameOwner && (w.user != "" || w.group != "") {
		chown = owner(w.user, w.group)
	} else if ctl.privileged() && cur.Exists {
		chown = owner(cur.Owner, cur.Group) // a privileged upload keeps the file's owner
	}
	switch {
	case !sameContent && ctl.privileged():
		err = h.putPrivileged(ctx, ctl, w, mode, chown, sweep.script)
	case !sameContent && (chown != "" || w.check != ""):
		err = h.putOwned(ctx, ctl, w, cur, mode, chown, sweep.script)
	case !sameContent:
		// The connector's upload runs no script of ours: the sweep
		// takes a round trip of its own.
		if n, ok := h.native(ctx, ctl); ok && sweep.script != "" {
			h.sweepNative(ctx, n, ctl, sweep.dir)
			sweep.ran()
		} else if sweep.script != "" {
			if _, err := h.run(ctx, sweep.script, probeControl(ctl), ""); err == nil {
				sweep.ran()
			}
		}
		sweep = pendingSweep{}
		err = h.putPlain(ctx, w, mode)
	default:
		err = h.setModeOwner(ctx, ctl, w.dest, sameMode, mode, sameOwner, chown, sweep)
	}
	if err != nil {
		return outcome{}, err
	}
	sweep.ran()
	return out, nil
}

// changeMessage says what ensureFile changes in w.dest, which cur
// describes: "create ...", "update ...", "chmod ...", "chown ...", and the
// link it writes through (via), if any.
func changeMessage(w fileWant, cur fileInfo, mode fs.FileMode, sameContent, sameMode, sameOwner, unlink bool, via string) string {
	var what []string
	switch {
	case unlink:
		what = append(what, fmt.Sprintf("replace the link %s with a file (%d bytes, mode %s)", w.dest, w.size, formatMode(mode)))
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
	msg := strings.Join(what, ", ")
	if via != "" {
		if sameContent {
			msg = w.dest + ": " + msg // chmod and chown name no file
		}
		msg += ", through the link " + via
	}
	return msg
}

// setModeOwner changes the mode and owner of path, which holds the wanted
// content already; sweep (a pendingSweep's script) runs in the same
// command.
func (h *Host) setModeOwner(ctx context.Context, ctl Control, path string, sameMode bool, mode fs.FileMode, sameOwner bool, chown string, sweep pendingSweep) error {
	if h.nativeModeOwner(ctx, ctl, path, sameMode, mode, sameOwner, chown) {
		if n, ok := h.native(ctx, ctl); ok && sweep.script != "" {
			h.sweepNative(ctx, n, ctl, sweep.dir)
		}
		return nil
	}
	var cmds []string
	if !sameMode {
		cmds = append(cmds, "chmod -- "+formatMode(mode)+" "+connectors.Quote(path))
	}
	if chown != "" && !sameOwner {
		cmds = append(cmds, "chown -- "+connectors.Quote(chown)+" "+connectors.Quote(path))
	}
	script := strings.Join(cmds, " && ")
	full := script
	if sweep.script != "" {
		full = script + " || exit\n" + sweep.script // the sweep ends in || :
	}
	res, err := h.run(ctx, full, probeControl(ctl), "")
	if err == nil && res.ExitCode != 0 {
		err = &connectors.ExitError{Target: h.Name, Script: short(script), Result: res}
	}
	return err
}

// nativeModeOwner is the chmod and chown of setModeOwner on a
// connectors.Native host; false when the shell must do them (a native call
// failed: the shell's chmod and chown then run, and report what fails).
func (h *Host) nativeModeOwner(ctx context.Context, ctl Control, p string, sameMode bool, mode fs.FileMode, sameOwner bool, chown string) bool {
	n, ok := h.native(ctx, ctl)
	if !ok {
		return false
	}
	if !sameMode {
		h.traceNative(ctl, "chmod "+formatMode(mode)+" "+connectors.Quote(p))
		if n.Chmod(ctx, p, mode) != nil {
			return false
		}
	}
	if chown != "" && !sameOwner {
		user, group, _ := strings.Cut(chown, ":")
		h.traceNative(ctl, "chown "+connectors.Quote(chown)+" "+connectors.Quote(p))
		if strings.Contains(group, ":") || n.Chown(ctx, p, user, group) != nil {
			return false
		}
	}
	return true
}

// pendingSweep is the sweep of a directory that the probe of destFile did
// not run: its script goes into the command that writes the file, and ran
// records it done once that command came back.
type pendingSweep struct {
	script string
	dir    string // the directory swept
	done   func()
}

func (p pendingSweep) ran() {
	if p.done != nil {
		p.done()
	}
}

// destFile reads the file fact of dest before put or template change it,
// and returns the path to write: dest itself, or, with follow, the file
// that dest finally points to when dest is a symbolic link (then fi
// describes that file, and is cached as its file fact). Following costs no
// round trip of its own: the probe resolves the links (followProbe).
//
// Once per directory, privilege and run, the same probe also removes what
// earlier runs left in dest's directory (connectors.SweepScript), at no
// extra round trip. When the fact came from the cache, or the file to write
// is in another directory, that directory's sweep is returned as pending,
// to run in the command that writes the file, if it is written.
func (h *Host) destFile(ctx context.Context, ctl Control, dest string, follow bool) (fi fileInfo, final string, pending pendingSweep, err error) {
	key := factKey("file", []string{dest}, ctl)
	if v, ok := h.cachedFact(key); ok {
		if fi := fileInfoFrom(v); !follow || fi.Type != "link" {
			return fi, dest, h.sweepPending(ctx, ctl, dest), nil
		}
	}
	sweep, done := h.sweepDue(ctx, ctl, dest)
	if n, ok := h.native(ctx, ctl); ok && sweep != "" {
		h.sweepNative(ctx, n, ctl, path.Dir(dest))
		done()
		sweep, done = "", nil
	}
	fi, final, ok := h.nativeStat(ctx, ctl, dest, follow)
	if !ok {
		before := sweep
		if follow {
			before += followProbe
		}
		fi, final, err = h.statPath(ctx, ctl, dest, before)
		if err != nil {
			return fileInfo{}, "", pendingSweep{}, fmt.Errorf("fact file on %s: %w", h.Name, err)
		}
	}
	if done != nil {
		done()
	}
	h.remember(factKey("file", []string{final}, ctl), fi.value())
	if final != dest {
		pending = h.sweepPending(ctx, ctl, final)
	}
	return fi, final, pending, nil
}

// sweepPending returns the sweep of dest's directory when it is due
// (sweepDue).
func (h *Host) sweepPending(ctx context.Context, ctl Control, dest string) pendingSweep {
	script, done := h.sweepDue(ctx, ctl, dest)
	return pendingSweep{script: script, dir: path.Dir(dest), done: done}
}

// sweepNative sweeps dir, as the script of sweepDue does, with n.
func (h *Host) sweepNative(ctx context.Context, n connectors.Native, ctl Control, dir string) {
	if run, ok := connectors.RunFrom(ctx); ok {
		h.traceNative(ctl, "sweep "+connectors.Quote(dir))
		n.Sweep(ctx, dir, run)
	}
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

// ownedPut gives the uploaded temporary file $t (0600) the owner, if any
// (keeping the old file's where allowed first), then the mode, runs the
// validate= command, if any, and renames it over dest last: a chown that
// fails (an unknown user) or a validation that fails leaves the old file,
// and the temporary file is removed.
const ownedPut = `t=%s d=%s
%s%sif %schmod %s "$t" && %s%smv -f -- "$t" "$d"; then exit 0; fi
rm -f -- "$t"
exit 1`

// unlinkDir removes dest ($d) when it is a link to a directory, which mv
// would move the new file into rather than replace (follow=False).
const unlinkDir = `{ [ ! -L "$d" ] || [ ! -d "$d" ] || rm -f -- "$d"; } && `

// unlinkStep is unlinkDir when the write replaces a link, else "".
func (w fileWant) unlinkStep() string {
	if w.unlink {
		return unlinkDir
	}
	return ""
}

// validateExit is the exit status of a write script whose validate=
// command rejected the new content; the last line of its stderr is then
// validateMark and the command's exit status.
const (
	validateExit = 86
	validateMark = "star-deploy: validate exit status "
)

// checkScript turns validate= into the shell command that the write
// scripts run on the temporary file $t: each %s becomes "$t", %% a %.
func checkScript(validate string) (string, error) {
	if validate == "" {
		return "", nil
	}
	var b strings.Builder
	found := false
	for i := 0; i < len(validate); i++ {
		if validate[i] == '%' && i+1 < len(validate) && (validate[i+1] == 's' || validate[i+1] == '%') {
			i++
			if validate[i] == '%' {
				b.WriteByte('%')
				continue
			}
			b.WriteString(`"$t"`)
			found = true
			continue
		}
		b.WriteByte(validate[i])
	}
	if !found {
		return "", fmt.Errorf("validate: %q has no %%s where the path of the new file goes, as in \"visudo -cf %%s\"", validate)
	}
	return "( " + b.String() + fmt.Sprintf(` ) </dev/null || { v=$?; rm -f -- "$t"; echo "%s$v" >&2; exit %d; }`, validateMark, validateExit), nil
}

// writeErr is the error of a write script that exited with res.
func (h *Host) writeErr(w fileWant, res connectors.Result, what string) error {
	stderr, status, found := strings.Cut(connectors.LastLine(res.Stderr), validateMark)
	if res.ExitCode == validateExit && w.check != "" && found && stderr == "" {
		msg := "exit status " + status
		before, _, _ := bytes.Cut(bytes.TrimRight(res.Stderr, "\n"), []byte(validateMark))
		if last := connectors.LastLine(before); last != "" {
			msg += ": " + last
		} else if last := connectors.LastLine(res.Stdout); last != "" {
			msg += ": " + last
		}
		return fmt.Errorf("put %s on %s: validate %q rejected the new content, the old file is kept: %s", w.dest, h.Name, w.checkOf, msg)
	}
	return fmt.Errorf("put %s on %s: %w", w.dest, h.Name, &connectors.ExitError{Target: h.Name, Script: what, Result: res})
}

// putOwned is putPlain for a put that also changes the owner or group, or
// validates the new content: the
// connector uploads to a temporary name of the run (connectors.TempName),
// and ownedPut renames it into place once owner and mode are set. A
// temporary file that a lost connection leaves is removed by a later run.
func (h *Host) putOwned(ctx context.Context, ctl Control, w fileWant, cur fileInfo, mode fs.FileMode, chown, sweep string) error {
	r, err := w.open()
	if err != nil {
		return err
	}
	defer r.Close()
	tmp := connectors.TempName(ctx, w.dest)
	if err := h.Conn.Put(ctx, tmp, r, 0o600); err != nil {
		return err
	}
	keep, chownStep, check := "", "", ""
	if cur.Exists && chown != "" {
		keep = "chown -- " + connectors.Quote(owner(cur.Owner, cur.Group)) + ` "$t" 2>/dev/null` + "\n"
	}
	if chown != "" {
		chownStep = "chown -- " + connectors.Quote(chown) + ` "$t" && `
	}
	if w.check != "" {
		check = "{ " + w.check + "; } && "
	}
	script := fmt.Sprintf(ownedPut, connectors.Quote(tmp), connectors.Quote(w.dest), sweep, keep, chownStep, formatMode(mode), check, w.unlinkStep())
	res, err := h.run(ctx, script, probeControl(ctl), "")
	if err != nil {
		return fmt.Errorf("put %s on %s: %w", w.dest, h.Name, err)
	}
	if res.ExitCode != 0 {
		return h.writeErr(w, res, "chown "+chown+" "+w.dest)
	}
	return nil
}

// privilegedPut streams the content on stdin into a temporary file created
// (0600, by mktemp, named for the run: connectors.TempTemplate) in dest's
// directory by the privileged user, sets owner and mode, runs the validate=
// command, if any, and renames it over dest; the temporary file is removed
// on failure (a rejected validation among them), and so is one that
// did not get all w.size bytes (its input was cut short).
const privilegedPut = `set -e
%sd=%s
t=$(mktemp %s)
trap 'rm -f -- "$t"' EXIT
trap 'exit 143' TERM HUP INT
cat > "$t"
n=$(wc -c < "$t")
n=$((n))
[ "$n" = %d ] || { echo "the upload was cut short: $n of %d bytes arrived" >&2; exit 1; }
%s
chmod %s "$t"
%s
%smv -f -- "$t" "$d"
trap - EXIT`

func (h *Host) putPrivileged(ctx context.Context, ctl Control, w fileWant, mode fs.FileMode, chown, sweep string) error {
	r, err := w.open()
	if err != nil {
		return err
	}
	defer r.Close()
	chownLine := ""
	if chown != "" {
		chownLine = "chown -- " + connectors.Quote(chown) + ` "$t"`
	}
	script := fmt.Sprintf(privilegedPut, sweep, connectors.Quote(w.dest), connectors.Quote(connectors.TempTemplate(ctx, w.dest)), w.size, w.size, chownLine, formatMode(mode), w.check, w.unlinkStep())
	res, err := h.exec(ctx, script, probeControl(ctl), r)
	if err != nil {
		return fmt.Errorf("put %s on %s: %w", w.dest, h.Name, err)
	}
	if res.ExitCode != 0 {
		return h.writeErr(w, res, "write "+w.dest)
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

// newFileWant checks what put and template (op) share: the destination,
// mode= and validate=. It returns the file they want, but for its content.
func newFileWant(op, dest, user, group string, modeV starlark.Value, follow bool, validate string) (fileWant, error) {
	w := fileWant{dest: dest, user: user, group: group, follow: follow, checkOf: validate}
	var err error
	if w.mode, w.hasMode, err = parseMode(modeV); err != nil {
		return w, fmt.Errorf("%s: %w", op, err)
	}
	if w.check, err = checkScript(validate); err != nil {
		return w, fmt.Errorf("%s: %w", op, err)
	}
	return w, checkDest(op, dest)
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

// localPath resolves p against the directory of the calling .star file. In
// a remote module, a relative p names a file of the module's repository,
// which only h's LocalFS can open (ModuleFiles); what must be a file of
// this machine (get's dest, rsync's src) says so with osOnly, and is
// refused there.
func localPath(thread *starlark.Thread, h *Host, p string, osOnly bool) (string, error) {
	if path.IsAbs(p) {
		return p, nil
	}
	from := callerFile(thread)
	if !strings.HasPrefix(from, remoteModulePrefix) {
		return path.Join(path.Dir(from), p), nil
	}
	mf, ok := h.local().(ModuleFiles)
	if osOnly || !ok {
		return "", fmt.Errorf("%s is relative to the remote module %s, which is no directory of this machine: give an absolute path", p, from)
	}
	return mf.Join(from, p)
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
