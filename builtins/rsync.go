package builtins

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"

	"github.com/star-deploy/star-deploy/connectors"
)

var rsyncSpec = &Spec{
	Name: "rsync",
	Doc: "Copies a local directory (or file) to the host with the rsync program on both ends, over the host's own connection. " +
		"The local `rsync` runs with a remote shell (a small `sh` relay over two FIFOs in a private 0700 temporary directory) that " +
		"hands its remote command line and its stdin and stdout to star-deploy, which checks that the command is `rsync --server ...` " +
		"and runs it with one command of the host's connector, sudo/su/doas rendered around it as for any command: so it works on " +
		"@local, SSH, Docker and plugins alike, with the inventory's keys and no SSH of its own. File names travel inside rsync's " +
		"protocol (`-s`), never through a shell. Changed means rsync itemized a change (`--itemize-changes`): a second run with " +
		"nothing new changes nothing. Under `--dry` it runs `rsync --dry-run`, which reports the same changes without making them. " +
		"It needs rsync here and on the host (`command -v rsync`, as the operation's user), and the machine's own files (not an " +
		"app's fs.FS): it fails otherwise, unless `fallback` is given. Its local-exec effect (it runs a program on this machine) " +
		"is one an embedding app's sandbox withholds unless it allows it, and a sandboxed run never has the machine's own files, " +
		"so apps get `fallback` (`files.rsync` falls back to `files.sync`). Ctrl-C stops the local rsync and the remote command.",
	Params: []Param{
		{"src", "str", "", "The local directory or file, relative to the calling file; a directory ending in `/` copies its content into dest, without it the directory itself (dest/NAME), as rsync does."},
		{"dest", "str", "", "The absolute path on the host; rsync creates its last element when missing."},
		{"flags?", "list of str", `["-ax", "--delete"]`, "rsync's options (pyinfra's default). Options that would break the relay or the change detection are refused: `-e`/`--rsh`, `--rsync-path`, `-n`/`--dry-run` (use --dry), `--out-format`, `--log-format`, `--server`, `--daemon`, `--list-only`."},
		{"fallback?", "function", "None", "Called with no arguments, instead of rsync, when rsync cannot run (missing here or on the host, or the local files are not this machine's); its result is returned."},
	},
	Control:  true,
	Returns:  "a result with `.changed`, `.ok`, `.stdout` (rsync's itemized changes, one per line: `<f+++++++++ a.txt`, `*deleting old`), `.stderr` and `.exit_code`; or fallback's result",
	Example:  `rsync("site/", "/var/www/site", flags = ["-a", "--delete", "--exclude=*.swp"], sudo = True)`,
	Effects:  EffectReadHost | EffectWriteHost | EffectLocalFS | EffectLocalExec,
	Optional: true, // files.rsync falls back to files.sync
	Fn:       rsyncFn,
}

// rsyncRefused are the options files.rsync cannot pass on, with why.
var rsyncRefused = map[string]string{
	"-e": "star-deploy is rsync's remote shell", "--rsh": "star-deploy is rsync's remote shell",
	"--rsync-path": "the remote command must be rsync itself (use sudo= for privileges)",
	"-n":           "use --dry", "--dry-run": "use --dry",
	"--out-format": "star-deploy sets it to detect changes", "--log-format": "star-deploy sets it to detect changes",
	"--server": "it is rsync's own", "--sender": "it is rsync's own", "--daemon": "it is rsync's own",
	"--list-only": "it copies nothing", "--only-write-batch": "it copies nothing", "--read-batch": "it reads no source",
}

// rsyncShortWithArg are rsync's one-letter options that take an argument:
// in a cluster (-aT/tmp), what follows them is the argument, and at its end
// (-aT /tmp) the next flag is.
const rsyncShortWithArg = "BefMT@"

// rsyncLongWithArg are rsync's long options that take an argument, which
// may be the next flag (--exclude PATTERN) rather than after "=".
var rsyncLongWithArg = map[string]bool{
	"--exclude": true, "--include": true, "--filter": true, "--exclude-from": true, "--include-from": true, "--files-from": true,
	"--chown": true, "--chmod": true, "--usermap": true, "--groupmap": true, "--temp-dir": true, "--partial-dir": true,
	"--link-dest": true, "--copy-dest": true, "--compare-dest": true, "--backup-dir": true, "--suffix": true,
	"--bwlimit": true, "--timeout": true, "--contimeout": true, "--max-size": true, "--min-size": true, "--max-delete": true,
	"--block-size": true, "--modify-window": true, "--compress-choice": true, "--compress-level": true, "--checksum-choice": true,
	"--skip-compress": true, "--iconv": true, "--log-file": true, "--log-file-format": true, "--remote-option": true,
	"--info": true, "--debug": true, "--max-alloc": true, "--stop-after": true, "--stop-at": true, "--outbuf": true,
	"--password-file": true, "--port": true, "--sockopts": true, "--early-input": true, "--write-batch": true,
}

// checkRsyncFlags refuses the flags rsyncRefused names, skipping the
// arguments of options.
func checkRsyncFlags(flags []string) error {
	for i := 0; i < len(flags); i++ {
		f := flags[i]
		if f == "--" {
			return fmt.Errorf(`rsync: flags: "--" is not allowed: src and dest are given as arguments`)
		}
		key, _, hasValue := strings.Cut(f, "=")
		if strings.HasPrefix(f, "--") {
			if why, ok := rsyncRefused[key]; ok {
				return fmt.Errorf("rsync: flags: %s is not allowed: %s", key, why)
			}
			if rsyncLongWithArg[key] && !hasValue {
				i++ // its argument
			}
			continue
		}
		if !strings.HasPrefix(f, "-") {
			continue
		}
		for j, c := range f[1:] {
			if why, ok := rsyncRefused["-"+string(c)]; ok {
				return fmt.Errorf("rsync: flags: -%c (in %s) is not allowed: %s", c, f, why)
			}
			if strings.ContainsRune(rsyncShortWithArg, c) {
				if j == len(f)-2 {
					i++ // its argument is the next flag
				}
				break
			}
		}
	}
	return nil
}

func rsyncFn(thread *starlark.Thread, s *Spec, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	h, ctl, name, kw, err := begin(thread, s, kw)
	if err != nil {
		return nil, err
	}
	var src, dest string
	var flagsV starlark.Value = starlark.NewList([]starlark.Value{starlark.String("-ax"), starlark.String("--delete")})
	var fallback starlark.Callable
	if err := s.Unpack(args, kw, &src, &dest, &flagsV, &fallback); err != nil {
		return nil, err
	}
	flags, err := stringList(flagsV)
	if err != nil {
		return nil, fmt.Errorf("rsync: flags: %w", err)
	}
	if err := checkRsyncFlags(flags); err != nil {
		return nil, err
	}
	if src == "" {
		return nil, fmt.Errorf("rsync: src is empty; name a local directory or file")
	}
	if !strings.HasPrefix(dest, "/") {
		return nil, fmt.Errorf("rsync: dest must be an absolute path on the host, got %q", dest)
	}
	if name == "" {
		name = "rsync " + src + " " + dest
	}
	ctx := contextFrom(thread)
	bin, why := h.rsyncUnavailable(ctx, ctl)
	if why != "" && fallback != nil {
		return starlark.Call(thread, fallback, nil, nil)
	}
	local, err := localPath(thread, h, src, true)
	if err != nil {
		return nil, fmt.Errorf("rsync: src: %w", err)
	}
	if abs, err := filepath.Abs(local); err == nil {
		local = abs
	}
	if strings.HasSuffix(src, "/") && !strings.HasSuffix(local, "/") {
		local += "/" // the content, not the directory
	}
	return h.operation(thread, s.Name, name, ctl, func(ctx context.Context) (outcome, error) {
		if why != "" {
			return outcome{}, fmt.Errorf("rsync: %s", why)
		}
		return h.rsync(ctx, bin, flags, local, dest, ctl)
	})
}

// rsyncUnavailable returns the path of the local rsync, or why rsync cannot
// run for h: the local files are not the machine's own, or rsync is missing
// here or on the host (`command -v rsync`, as ctl's user).
func (h *Host) rsyncUnavailable(ctx context.Context, ctl Control) (string, string) {
	if !osFiles(h.Local) {
		return "", "the local files here are not this machine's own (an app's file system), which rsync cannot read; use files.sync"
	}
	bin, err := exec.LookPath("rsync")
	if err != nil {
		return "", "rsync is not installed on this machine; install it, or use files.sync"
	}
	res, err := h.run(ctx, "command -v rsync >/dev/null", probeControl(ctl), "")
	if err != nil {
		return "", "probe rsync on " + h.Name + ": " + err.Error()
	}
	if res.ExitCode != 0 {
		return "", "rsync is not installed on " + h.Name + "; install it there, or use files.sync"
	}
	return bin, ""
}

// rsync runs one rsync of local to dest on the host and reports what it
// changed (or, under --dry, would change).
func (h *Host) rsync(ctx context.Context, bin string, flags []string, local, dest string, ctl Control) (outcome, error) {
	args := append([]string{}, flags...)
	// -s: the file names go through the protocol, not the remote command
	// line, so no quoting is involved.
	args = append(args, "-s", "--out-format="+rsyncMarker+"%i %n%L")
	if h.Dry {
		args = append(args, "--dry-run")
	}
	args = append(args, local)
	run, err := h.runRsync(ctx, bin, args, dest, ctl)
	if err != nil {
		return outcome{}, err
	}
	out := outcome{status: StatusOK, message: "up to date"}
	res := connectors.Result{ExitCode: run.exitCode, Stdout: run.out.buf.Bytes(), Stderr: run.stderr.Bytes(),
		MaxOutput: run.out.buf.Limit(), StdoutDropped: run.out.buf.Dropped(), StderrDropped: run.stderr.Dropped()}
	out.add(res)
	if n := run.out.changes; n > 0 {
		out.status = StatusChanged
		out.message = fmt.Sprintf("%d changes", n)
		if h.Dry {
			out.message = "would make " + out.message
		} else {
			defer h.forget("") // a tree changed
		}
	}
	if run.exitCode != 0 || (run.remoteErr != nil && !errors.Is(run.remoteErr, errRelayNotStarted)) {
		return out, rsyncError(h.Name, run)
	}
	return out, nil
}

// rsyncError explains a failed rsync: the local rsync's first error lines
// (its last line is only the summary "rsync error: ... (code N)"), and the
// remote side's error.
func rsyncError(host string, run *rsyncRun) error {
	var lines []string
	for l := range strings.SplitSeq(string(run.stderr.Bytes()), "\n") {
		if l = strings.TrimSpace(l); l != "" && len(lines) < 3 {
			lines = append(lines, l)
		}
	}
	msg := fmt.Sprintf("rsync to %s exited with status %d", host, run.exitCode)
	if run.exitCode == 0 {
		msg = "rsync to " + host + " failed"
	}
	if len(lines) > 0 {
		msg += ": " + strings.Join(lines, "; ")
	}
	if run.remoteErr != nil && !errors.Is(run.remoteErr, errRelayNotStarted) {
		return fmt.Errorf("%s (remote side: %w)", msg, run.remoteErr)
	}
	if s := strings.TrimSpace(string(run.remote.Stderr)); s != "" {
		msg += " (remote side: " + short(s) + ")"
	}
	return errors.New(msg)
}
