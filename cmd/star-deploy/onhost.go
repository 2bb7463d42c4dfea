package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/star-deploy/star-deploy/bundle"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/internal/jsondata"
	"github.com/star-deploy/star-deploy/modules"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

// On-host execution (--on-host): for each host, the controller checks the
// host's OS and architecture (uname -sm), uploads a star-deploy binary for
// it and a bundle of the run's scripts into a cache directory of the
// connecting user keyed by content hash (a second run uploads nothing),
// runs `star-deploy __run-bundle` there over the host's own connector and
// relays the events it writes on stdout into this run's output. The
// remote run is trusted like any command the controller runs: the
// controller made the bundle and uploaded it over the connector's
// authenticated channel, so no signature is needed. Host data, the sudo
// password included, goes on the remote process's stdin, never in its argv.

// onHostCache is the cache directory on a host, in shell syntax: the
// connecting user's $XDG_CACHE_HOME/star-deploy, or ~/.cache/star-deploy.
const onHostCache = `${XDG_CACHE_HOME:-$HOME/.cache}/star-deploy`

// runBundleCommand is the hidden subcommand an on-host run runs.
const runBundleCommand = "__run-bundle"

// onHostBinary is a star-deploy executable for one OS/arch.
type onHostBinary struct {
	path   string
	data   []byte
	sum    string
	interp string // the ELF interpreter of a dynamically linked binary (/lib64/ld-linux-x86-64.so.2), "" for a static one
}

// newOnHostBinary is the binary data read from path.
func newOnHostBinary(path string, data []byte) *onHostBinary {
	b := &onHostBinary{path: path, data: data, sum: bundle.Hash(data)}
	if f, err := elf.NewFile(bytes.NewReader(data)); err == nil {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				if raw, err := io.ReadAll(p.Open()); err == nil {
					b.interp = strings.TrimRight(string(raw), "\x00")
				}
			}
		}
	}
	return b
}

// onHost runs a push run's hosts on the hosts themselves.
type onHost struct {
	f         *flags
	bundle    []byte
	bundleSum string
	scripts   map[string]string // a script's name in the bundle -> its path as given
	bins      map[string]*onHostBinary
	stderr    io.Writer
	mu        sync.Mutex // serialises notices
}

// prepareOnHost reads the binaries and makes the bundle of an --on-host
// run. It returns nil, after a notice, when the run cannot go on-host at all
// (then every host takes the normal path), and an error for a bad
// --on-host-binary.
func prepareOnHost(ctx context.Context, f *flags, m mode, sources []source, remote *modules.Resolver, stderr io.Writer) (*onHost, error) {
	bins := map[string]*onHostBinary{}
	for _, spec := range f.OnHostBinary {
		platform, path, ok := strings.Cut(spec, "=")
		if !ok || strings.Count(platform, "/") != 1 || path == "" {
			return nil, usagef("--on-host-binary %q: want OS/ARCH=PATH, e.g. linux/arm64=./star-deploy-linux-arm64", spec)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, usagef("--on-host-binary %s: %w", platform, err)
		}
		bins[platform] = newOnHostBinary(path, data)
	}
	notice := func(why string) (*onHost, error) {
		fmt.Fprintf(stderr, "star-deploy: --on-host: %s; every host runs the normal way\n", why)
		return nil, nil
	}
	switch {
	case m != modeScripts:
		return notice("exec and fact run the normal way")
	}
	var paths []string
	for _, s := range sources {
		if s.src != nil {
			return notice("ad-hoc operations and SCRIPT:FUNCTION run the normal way")
		}
		paths = append(paths, s.filename)
	}
	self := goruntime.GOOS + "/" + goruntime.GOARCH
	if bins[self] == nil {
		exe, err := os.Executable()
		if err == nil {
			var data []byte
			if data, err = os.ReadFile(exe); err == nil {
				bins[self] = newOnHostBinary(exe, data)
			}
		}
		if err != nil && len(bins) == 0 {
			return notice(fmt.Sprintf("cannot read this star-deploy's executable (%v)", err))
		}
	}
	data, man, err := bundle.Make(bundle.Options{Scripts: paths, Exclude: splitList(f.OnHostSkip), Stdlib: stdlib.FS, StarDeploy: versionString(), FileOptions: sdrt.FileOptions(),
		Remote: bundleRemote(ctx, remote), RemoteFiles: bundleFiles(ctx, remote), ModuleAliases: f.moduleAliases})
	if err != nil {
		return notice(fmt.Sprintf("cannot bundle the scripts (%v)", err))
	}
	o := &onHost{f: f, bundle: data, bundleSum: bundle.Hash(data), scripts: map[string]string{}, bins: bins, stderr: stderr}
	for i, s := range man.Scripts {
		o.scripts[s] = paths[i]
	}
	return o, nil
}

func (o *onHost) notice(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.stderr, "star-deploy: "+format+"\n", args...)
}

// plan is a host ready to run on-host: the paths of the binary and the
// bundle on it.
type plan struct {
	bin, bndl string
}

// run runs progs on hosts, scheduled as a normal run's (sdrt.Schedule:
// --serial batches, at most --parallel at once): each on the host itself
// where it can, the normal way (opts, with the connection carried over)
// where it cannot. --fail-percent stops the hosts that have not begun; a
// host already running on itself runs to its end.
func (o *onHost) run(ctx context.Context, opts sdrt.Options, progs []*sdrt.Program, hosts []sdrt.Host) *sdrt.Report {
	var mu sync.Mutex
	emit := func(e sdrt.Event) {
		mu.Lock()
		defer mu.Unlock()
		opts.OnEvent(e)
	}
	rep := &sdrt.Report{Hosts: make([]sdrt.HostResult, len(hosts))}
	done := make([]bool, len(hosts))
	sdrt.Schedule(ctx, opts, len(hosts), func(i int, stop func() error, failed func()) {
		if err := stop(); err != nil {
			rep.Hosts[i].Err = err
			return
		}
		rep.Hosts[i], done[i] = o.runOne(ctx, opts, progs, hosts[i], emit)
		if done[i] && rep.Hosts[i].Err != nil {
			failed()
		}
	})
	// Every host ends with a host_end, also one that never began.
	for i := range hosts {
		if !done[i] {
			err := rep.Hosts[i].Err
			rep.Hosts[i] = sdrt.HostResult{Name: hosts[i].Name, Status: sdrt.StatusNotStarted, Err: err}
			end := sdrt.Event{Time: time.Now(), Kind: sdrt.KindHostEnd, Host: hosts[i].Name, Status: sdrt.StatusNotStarted, Counts: &sdrt.Counts{}}
			if err != nil {
				end.Error = err.Error()
			}
			emit(end)
		}
	}
	rep.Interrupted = ctx.Err() != nil
	return rep
}

// runOne runs one host; ok is false when the run was interrupted before
// the host began.
func (o *onHost) runOne(ctx context.Context, opts sdrt.Options, progs []*sdrt.Program, h sdrt.Host, emit func(sdrt.Event)) (sdrt.HostResult, bool) {
	// normal runs h the normal way, on conn when it is not nil.
	normal := func(conn connectors.Connector) sdrt.HostResult {
		fo := opts
		fo.OnEvent = emit
		if conn != nil {
			// A pool that hands the open connection over, once.
			pool := &connPool{idle: map[string]connectors.Connector{poolKey(h.Target): conn}}
			fo.Connectors = pool.registry(opts.Connectors)
			defer pool.closeAll()
		}
		return sdrt.New(fo).Run(ctx, progs, []sdrt.Host{h}).Hosts[0]
	}
	if h.Target.Scheme == "local" {
		o.notice("%s: --on-host: it is this machine; running it the normal way", h.Name)
		return normal(nil), true
	}
	factory, ok := opts.Connectors.Lookup(h.Target.Scheme)
	if !ok {
		return normal(nil), true // which reports it
	}
	start := time.Now()
	conn, err := factory.Open(ctx, h.Target)
	if err != nil {
		if ctx.Err() != nil {
			return sdrt.HostResult{}, false
		}
		if !strings.HasPrefix(err.Error(), "connect to "+h.Name+":") {
			err = fmt.Errorf("connect to %s: %w", h.Name, err)
		}
		emit(sdrt.Event{Time: start, Kind: sdrt.KindHostStart, Host: h.Name})
		emit(sdrt.Event{Time: time.Now(), Kind: sdrt.KindHostEnd, Host: h.Name, Status: sdrt.StatusUnreachable, Duration: time.Since(start), Error: err.Error(), Counts: &sdrt.Counts{}})
		return sdrt.HostResult{Name: h.Name, Started: true, Status: sdrt.StatusUnreachable, Duration: time.Since(start), Err: err}, true
	}
	p, why := o.upload(ctx, conn, h)
	switch {
	case ctx.Err() != nil:
		conn.Close()
		return sdrt.HostResult{}, false
	case why != "":
		o.notice("%s: --on-host: %s; running it the normal way", h.Name, why)
		return normal(conn), true
	}
	defer conn.Close()
	return o.runHost(ctx, h, start, conn, p, opts.Dry, emit, func() sdrt.HostResult { return normal(conn) }), true
}

// upload probes the host with one command (OS/arch, cache directory, what
// the cache holds) and uploads the binary and the bundle when the cache
// lacks them. why says why the host cannot run on-host.
func (o *onHost) upload(ctx context.Context, conn connectors.Connector, h sdrt.Host) (*plan, string) {
	var sums, interps []string
	for _, b := range o.bins {
		sums = append(sums, b.sum)
		if b.interp != "" {
			interps = append(interps, connectors.Quote(b.interp))
		}
	}
	slices.Sort(sums)
	slices.Sort(interps)
	probe := `uname -sm
d="` + onHostCache + `"
if [ -n "${XDG_CACHE_HOME:-$HOME}" ] && (umask 077 && mkdir -p "$d/bin" "$d/bundles") && test -w "$d/bin" && test -w "$d/bundles"; then printf 'dir %s\n' "$d"; fi
for s in ` + strings.Join(sums, " ") + `; do test -x "$d/bin/$s" && test -f "$d/bin/$s" && echo "bin $s"; done
test -f "$d/bundles/` + o.bundleSum + `.bundle" && echo bundle
for i in ` + strings.Join(append(interps, "''"), " ") + `; do test -n "$i" && test -e "$i" && printf 'interp %s\n' "$i"; done
true`
	res, err := conn.Run(ctx, connectors.Command{Script: probe})
	if err != nil {
		return nil, fmt.Sprintf("the probe failed (%v)", err)
	}
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	platform := hostPlatform(lines[0])
	var dir string
	have := map[string]bool{}
	for _, l := range lines[1:] {
		switch k, v, _ := strings.Cut(l, " "); k {
		case "dir":
			dir = v
		case "bin":
			have[v] = true
		case "bundle":
			have["bundle"] = true
		case "interp":
			have["interp "+v] = true
		}
	}
	bin := o.bins[platform]
	switch {
	case platform == "":
		return nil, fmt.Sprintf("uname -sm gave %q, an OS/arch star-deploy does not know", lines[0])
	case bin == nil:
		self := goruntime.GOOS + "/" + goruntime.GOARCH
		return nil, fmt.Sprintf("the host is %s and this star-deploy is %s (give a release binary for it with --on-host-binary %s=PATH)", platform, self, platform)
	case bin.interp != "" && !have["interp "+bin.interp]:
		return nil, fmt.Sprintf("this star-deploy is linked dynamically and the host has no %s (a musl host?); give a static build (CGO_ENABLED=0, as make release builds) with --on-host-binary %s=PATH", bin.interp, platform)
	case dir == "" || !strings.HasPrefix(dir, "/"):
		return nil, "no writable cache directory (" + onHostCache + ")"
	}
	p := &plan{bin: dir + "/bin/" + bin.sum, bndl: dir + "/bundles/" + o.bundleSum + ".bundle"}
	var sent []string
	if !have[bin.sum] {
		if err := putFile(ctx, conn, p.bin, bin.data, 0o700); err != nil {
			return nil, fmt.Sprintf("uploading star-deploy to %s failed (%v)", p.bin, err)
		}
		sent = append(sent, fmt.Sprintf("star-deploy (%.1f MiB)", float64(len(bin.data))/(1<<20)))
	}
	if !have["bundle"] {
		if err := putFile(ctx, conn, p.bndl, o.bundle, 0o600); err != nil {
			return nil, fmt.Sprintf("uploading the bundle to %s failed (%v)", p.bndl, err)
		}
		sent = append(sent, fmt.Sprintf("the bundle (%d KiB)", (len(o.bundle)+1023)/1024))
	}
	if len(sent) > 0 {
		pruneCache(ctx, conn, dir, p)
	}
	if o.f.Verbose > 0 {
		if len(sent) == 0 {
			o.notice("%s: --on-host: star-deploy and the bundle are cached in %s", h.Name, dir)
		} else {
			o.notice("%s: --on-host: uploaded %s to %s", h.Name, strings.Join(sent, " and "), dir)
		}
	}
	return p, ""
}

// cacheKeep is how long an entry of a host's on-host cache stays after it
// was uploaded, when a later run uploads something else.
const cacheKeep = 30 // days

// pruneCache removes from the host's cache dir the binaries and bundles
// uploaded more than cacheKeep days ago, except those of p. It runs only
// after an upload, the one time the cache grows, and never fails the run:
// a pruned entry that some other deploy still uses is uploaded again by
// its next run. (A run that found an entry that old in its probe, at the
// moment another run uploads and prunes, may then miss it and fail or
// fall back on that host; running it again uploads the entry.)
func pruneCache(ctx context.Context, conn connectors.Connector, dir string, p *plan) {
	script := fmt.Sprintf("find %s %s -type f -mtime +%d ! -name %s ! -name %s -exec rm -f {} + 2>/dev/null || :",
		connectors.Quote(dir+"/bin"), connectors.Quote(dir+"/bundles"), cacheKeep, connectors.Quote(path.Base(p.bin)), connectors.Quote(path.Base(p.bndl)))
	conn.Run(ctx, connectors.Command{Script: script})
}

// putFile uploads data to path. A connector whose Put is not atomic gets
// a temporary name and a rename, so that the cache never holds half a
// file under a content hash.
func putFile(ctx context.Context, conn connectors.Connector, path string, data []byte, mode os.FileMode) error {
	if conn.Capabilities().AtomicPut {
		return conn.Put(ctx, path, bytes.NewReader(data), mode)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := path + ".star-deploy-" + hex.EncodeToString(rnd[:])
	err := conn.Put(ctx, tmp, bytes.NewReader(data), mode)
	if err == nil {
		var res connectors.Result
		res, err = conn.Run(ctx, connectors.Command{Script: "mv -f " + connectors.Quote(tmp) + " " + connectors.Quote(path)})
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("mv: %s", bytes.TrimSpace(res.Stderr))
		}
	}
	if err != nil {
		conn.Run(context.WithoutCancel(ctx), connectors.Command{Script: "rm -f " + connectors.Quote(tmp)})
	}
	return err
}

// hostPlatform is the GOOS/GOARCH of `uname -sm` output, "" when unknown.
func hostPlatform(uname string) string {
	osName, machine, _ := strings.Cut(strings.TrimSpace(uname), " ")
	goos := map[string]string{"Linux": "linux", "Darwin": "darwin", "FreeBSD": "freebsd", "OpenBSD": "openbsd", "NetBSD": "netbsd"}[osName]
	goarch := map[string]string{
		"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"i386": "386", "i686": "386", "armv6l": "arm", "armv7l": "arm",
		"riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x",
	}[machine]
	if goos == "" || goarch == "" {
		return ""
	}
	return goos + "/" + goarch
}

// onHostStopGrace is how long a cancelled on-host run may take to stop
// itself before the connector kills it: its own commands are in process
// groups the connector's kill does not reach.
const onHostStopGrace = 10 * time.Second

// untilClosed is a reader that ends (io.EOF) once stop is closed.
type untilClosed <-chan struct{}

func (u untilClosed) Read([]byte) (int, error) {
	<-u
	return 0, io.EOF
}

// onHostJob is what the controller sends __run-bundle on stdin: the host
// and the run flags. Data holds the host's data without connector keys,
// with the sudo password when there is one.
type onHostJob struct {
	Host     string         `json:"host"`
	Groups   []string       `json:"groups,omitempty"`
	Data     map[string]any `json:"data,omitempty"`
	Dry      bool           `json:"dry,omitempty"`
	Diff     bool           `json:"diff,omitempty"`
	Verbose  int            `json:"verbose,omitempty"`
	MaxSteps uint64         `json:"max_steps,omitempty"`
	Sudo     bool           `json:"sudo,omitempty"`
	SudoUser string         `json:"sudo_user,omitempty"`
}

// runHost runs h's scripts on h (a dry run when dry), relaying its events.
// A binary that does not start there (exit 126 or 127 before any output: a
// glibc build on a musl host) has h run the normal way, with normal.
//
// The host's time, in its host_end and the summary, runs from start, before
// the connection opened, as in a normal run.
func (o *onHost) runHost(ctx context.Context, h sdrt.Host, start time.Time, conn connectors.Connector, p *plan, dry bool, emit func(sdrt.Event), normal func() sdrt.HostResult) sdrt.HostResult {
	job := onHostJob{Host: h.Name, Groups: h.Groups, Data: map[string]any{},
		Dry: dry, Diff: o.f.Diff, Verbose: o.f.Verbose, MaxSteps: o.f.MaxSteps, Sudo: o.f.Sudo, SudoUser: o.f.SudoUser}
	for k, v := range h.Data {
		if strings.HasPrefix(k, h.Target.Scheme+"_") || (connectors.IsSecretKey(k) && k != sdrt.SudoPasswordKey) {
			continue // the connector's keys mean nothing there
		}
		job.Data[k] = v
	}
	stdin, err := json.Marshal(job)
	if err != nil {
		return o.failed(h, start, false, emit, fmt.Errorf("on-host: %w", err))
	}
	w := &wireReader{host: h.Name, start: start, scripts: o.scripts, emit: emit}
	// The job is followed by nothing until the run is to stop: on a cancel
	// the remote run sees the end of its input and stops as the CLI does
	// on SIGTERM (its commands, in process groups of their own, stopped,
	// its temporary files removed); only when it has not ended within
	// onHostStopGrace does the connector's cancel kill it.
	stop, finished := make(chan struct{}), make(chan struct{})
	runCtx, kill := context.WithCancel(context.WithoutCancel(ctx))
	defer kill()
	go func() {
		select {
		case <-ctx.Done():
			close(stop)
			select {
			case <-finished:
			case <-time.After(onHostStopGrace):
				kill()
			}
		case <-finished:
			close(stop)
		}
	}()
	cmd := connectors.Command{
		Script:     "exec " + connectors.Quote(p.bin) + " --config /dev/null " + runBundleCommand + " " + connectors.Quote(p.bndl),
		Stdin:      io.MultiReader(bytes.NewReader(stdin), untilClosed(stop)),
		Stdout:     w,
		StreamOnly: true,
		MaxOutput:  64 << 10,
	}
	res, err := conn.Run(runCtx, cmd)
	close(finished)
	w.flush()
	switch {
	case ctx.Err() != nil:
		if w.result != nil && w.sawEnd {
			return *w.result
		}
		res := sdrt.HostResult{Name: h.Name, Started: w.sawStart, Status: sdrt.StatusNotStarted, Counts: w.counts, Duration: time.Since(start)}
		if w.sawStart {
			res.Status, res.Err = sdrt.StatusInterrupted, fmt.Errorf("interrupted: %w", ctx.Err())
		}
		if !w.sawEnd {
			end := sdrt.Event{Time: time.Now(), Kind: sdrt.KindHostEnd, Host: h.Name, Status: res.Status, Duration: res.Duration, Counts: &res.Counts}
			if res.Err != nil {
				end.Error = res.Err.Error()
			}
			emit(end)
		}
		return res
	case err != nil:
		return o.failed(h, start, w.sawStart, emit, fmt.Errorf("on-host run: %w", err))
	case w.result != nil && w.sawEnd:
		return *w.result
	case (res.ExitCode == 126 || res.ExitCode == 127) && !w.sawStart && w.err == "":
		o.notice("%s: --on-host: %s does not run there (exit %d: %s); running it the normal way", h.Name, p.bin, res.ExitCode, connectors.LastLine(res.Stderr))
		return normal()
	}
	why := fmt.Sprintf("on-host run of %s exited with status %d", p.bin, res.ExitCode)
	if w.err != "" {
		why += ": " + w.err
	} else if s := connectors.LastLine(res.Stderr); s != "" {
		why += ": " + s
	}
	return o.failed(h, start, w.sawStart, emit, errors.New(why))
}

// failed ends h as failed with err.
func (o *onHost) failed(h sdrt.Host, start time.Time, started bool, emit func(sdrt.Event), err error) sdrt.HostResult {
	if !started {
		emit(sdrt.Event{Time: start, Kind: sdrt.KindHostStart, Host: h.Name})
	}
	res := sdrt.HostResult{Name: h.Name, Started: true, Status: sdrt.StatusFailed, Duration: time.Since(start), Err: err}
	emit(sdrt.Event{Time: time.Now(), Kind: sdrt.KindHostEnd, Host: h.Name, Status: res.Status, Duration: res.Duration, Error: err.Error(), Counts: &res.Counts})
	return res
}

// ---- the wire between __run-bundle and the controller ----

// wireLine is one line __run-bundle writes on stdout: an event, the
// host's result at the end, or an error that kept the run from starting.
type wireLine struct {
	Event  *wireEvent  `json:"event,omitempty"`
	Result *wireResult `json:"result,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// wireEvent is an Event without loss: its duration in nanoseconds, and
// text that is not UTF-8 as bytes.
type wireEvent struct {
	plainEvent
	DurationNS int64             `json:"duration_ns,omitempty"`
	Bytes      map[string][]byte `json:"bytes,omitempty"` // fields that are not UTF-8: stdout, stderr, message, diff, error
}

type wireResult struct {
	Started    bool        `json:"started"`
	Status     sdrt.Status `json:"status"`
	Counts     sdrt.Counts `json:"counts"`
	DurationNS int64       `json:"duration_ns"`
	Output     string      `json:"output,omitempty"`
	Err        string      `json:"err,omitempty"`
	// A *ScriptError's parts, so the summary shows it as a normal run does.
	Pos       string `json:"pos,omitempty"`
	Msg       string `json:"msg,omitempty"`
	Backtrace string `json:"backtrace,omitempty"`
}

// wireFields are the text fields of an Event that may hold any bytes.
func wireFields(e *sdrt.Event) map[string]*string {
	return map[string]*string{"stdout": &e.Stdout, "stderr": &e.Stderr, "message": &e.Message, "diff": &e.Diff, "error": &e.Error}
}

// wireOutput is the output of __run-bundle: wire lines on stdout.
type wireOutput struct{ enc *json.Encoder }

func newWireOutput(w io.Writer) *wireOutput {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &wireOutput{enc: enc}
}

func (o *wireOutput) event(e sdrt.Event) {
	we := &wireEvent{DurationNS: int64(e.Duration)}
	for k, p := range wireFields(&e) {
		if !utf8.ValidString(*p) {
			if we.Bytes == nil {
				we.Bytes = map[string][]byte{}
			}
			we.Bytes[k], *p = []byte(*p), ""
		}
	}
	we.plainEvent = plainEvent(e)
	o.enc.Encode(wireLine{Event: we})
}

func (o *wireOutput) finish(rep *sdrt.Report, _ time.Duration, _ int) {
	if len(rep.Hosts) != 1 {
		return
	}
	h := rep.Hosts[0]
	r := &wireResult{Started: h.Started, Status: h.Status, Counts: h.Counts, DurationNS: int64(h.Duration), Output: h.Output}
	if h.Err != nil {
		r.Err = h.Err.Error()
		var se *sdrt.ScriptError
		if errors.As(h.Err, &se) {
			r.Pos, r.Msg, r.Backtrace = se.Pos, se.Msg, se.Backtrace
		}
	}
	o.enc.Encode(wireLine{Result: r})
}

// maxWireLine bounds one line of the wire: an event holds at most a
// command's capped output, so a longer line is not star-deploy's.
const maxWireLine = 64 << 20

// wireReader decodes the wire lines of one host as they arrive.
type wireReader struct {
	host     string
	start    time.Time // when the controller began the host
	scripts  map[string]string
	emit     func(sdrt.Event)
	line     []byte
	skipping bool // in a line longer than maxWireLine

	sawStart, sawEnd bool
	counts           sdrt.Counts
	result           *sdrt.HostResult
	err              string
}

func (w *wireReader) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.add(b)
			break
		}
		w.add(b[:i])
		w.flush()
		w.skipping = false
		b = b[i+1:]
	}
	return n, nil
}

func (w *wireReader) add(b []byte) {
	if w.skipping {
		return
	}
	if len(w.line)+len(b) > maxWireLine {
		w.line, w.skipping = nil, true
		return
	}
	w.line = append(w.line, b...)
}

// flush decodes the line read so far.
func (w *wireReader) flush() {
	line := w.line
	w.line = w.line[:0]
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	var l wireLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&l); err != nil {
		return // not a wire line
	}
	switch {
	case l.Event != nil:
		e := sdrt.Event(l.Event.plainEvent)
		e.Duration = time.Duration(l.Event.DurationNS)
		for k, p := range wireFields(&e) {
			if b, ok := l.Event.Bytes[k]; ok {
				*p = string(b)
			}
		}
		e.Host = w.host
		e.Pos = w.pos(e.Pos)
		switch e.Kind {
		case sdrt.KindHostStart:
			w.sawStart = true
		case sdrt.KindHostEnd:
			w.sawEnd = true
			e.Duration = time.Since(w.start)
		case sdrt.KindOpEnd:
			w.counts.Add(e.Status)
		}
		w.emit(e)
	case l.Result != nil:
		r := l.Result
		res := sdrt.HostResult{Name: w.host, Started: r.Started, Status: r.Status, Counts: r.Counts, Duration: time.Since(w.start), Output: r.Output}
		switch {
		case r.Msg != "" || r.Pos != "":
			res.Err = &sdrt.ScriptError{Host: w.host, Pos: w.pos(r.Pos), Msg: r.Msg, Backtrace: r.Backtrace}
		case r.Err != "":
			res.Err = errors.New(r.Err)
		}
		w.result = &res
	case l.Error != "":
		w.err = l.Error
	}
}

// pos maps a position in a bundled script to the script's path as given.
func (w *wireReader) pos(p string) string {
	name, rest, ok := strings.Cut(p, ":")
	if orig, found := w.scripts[name]; ok && found {
		return orig + ":" + rest
	}
	return p
}

// ---- the remote side ----

// runBundleCmd is the hidden subcommand an --on-host run starts on the
// host: it runs a bundle the controller uploaded, with the host and flags
// of the job on stdin, and writes wire lines on stdout. It trusts its
// caller, which made the bundle: no signature is checked.
type runBundleCmd struct {
	Bundle string `arg:"" help:"The bundle the controller uploaded."`
}

func (c *runBundleCmd) run(ctx context.Context, reg *connectors.Registry, stdin io.Reader, stdout, stderr io.Writer) (*sdrt.Report, error) {
	fail := func(err error) (*sdrt.Report, error) {
		json.NewEncoder(stdout).Encode(wireLine{Error: err.Error()})
		return nil, err
	}
	var job onHostJob
	dec := json.NewDecoder(io.LimitReader(stdin, 64<<20))
	dec.UseNumber()
	if err := dec.Decode(&job); err != nil {
		return fail(usagef("%s: reading the job on stdin: %w", runBundleCommand, err))
	}
	// The end of stdin, after the job, is the controller's stop (runHost).
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		io.Copy(io.Discard, stdin)
		stop()
	}()
	for k, v := range job.Data {
		var err error
		if job.Data[k], err = jsondata.Numbers(v); err != nil {
			return fail(usagef("%s: the job's data %s: %w", runBundleCommand, k, err))
		}
	}
	data, err := os.ReadFile(c.Bundle)
	if err != nil {
		return fail(usagef("%s: %w", runBundleCommand, err))
	}
	b, err := bundle.Read(c.Bundle, data)
	if err != nil {
		return fail(&usageError{err})
	}
	f := &flags{Dry: job.Dry, Diff: job.Diff, Verbose: job.Verbose, MaxSteps: job.MaxSteps, Sudo: job.Sudo, SudoUser: job.SudoUser, Parallel: 1}
	r := &runCmd{Inventory: "@local", Args: b.Manifest.Scripts, wire: stdout,
		bundle: &bundleRun{b: b, host: &bundle.HostData{Groups: job.Groups, Data: job.Data}, name: job.Host}}
	noPrompt := func(string) (string, error) { return "", errors.New("no terminal on an on-host run") }
	rep, err := r.run(ctx, f, reg, noPrompt, stdout, stderr)
	if err != nil {
		return fail(err)
	}
	return rep, nil
}
