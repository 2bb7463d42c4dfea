package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"

	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// version and commit are stamped in at build time by make release:
// -ldflags "-X main.version=v1.2.3 -X main.commit=<git rev-parse HEAD>".
// Left empty (a plain go build or go install), versionString falls back on
// the build info the go command records.
var version, commit string

// Exit codes. They are listed in --help (exitCodesHelp) and chosen in one
// place, exitCode.
const (
	exitOK          = 0   // every host succeeded
	exitFailed      = 1   // one or more hosts failed, were unreachable, stopped or not started (no separate code for unreachable)
	exitUsage       = 2   // usage, inventory, connector or script error before any host ran
	exitInterrupted = 130 // interrupted (SIGINT/SIGTERM)
)

const exitCodesHelp = `Exit codes:
  0    every host succeeded
  1    one or more hosts failed, were unreachable, or were stopped or not
       started by --fail-percent (the summary and run_end say which)
  2    usage, inventory, connector, data key or script error; no host ran
  130  interrupted (Ctrl-C or SIGTERM); a partial summary is printed`

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	intr := &interrupts{}
	go onInterrupt(sigs, cancel, os.Stderr, intr)
	code := run(withInterrupts(ctx, intr), os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(code)
}

// onInterrupt cancels the run on the first SIGINT or SIGTERM: every host
// stops and cleans up, each within a short deadline, and the run exits 130
// with a partial summary. A second signal exits 130 at once, without the
// cleanup, so remote commands may still run. A SIGINT that intr's handler
// takes (the REPL's running line) does neither.
func onInterrupt(sigs <-chan os.Signal, cancel context.CancelFunc, stderr io.Writer, intr *interrupts) {
	cancelled := false
	for sig := range sigs {
		switch {
		case sig == os.Interrupt && intr.handle():
		case !cancelled:
			fmt.Fprintln(stderr, "star-deploy: interrupted: stopping every host (interrupt again to exit at once)")
			cancel()
			cancelled = true
		default:
			fmt.Fprintln(stderr, "star-deploy: interrupted again: exiting at once; remote commands may still run")
			os.Exit(exitInterrupted)
		}
	}
}

// interrupts lets a command take SIGINT for itself for a while: the REPL
// interrupts the line it runs and goes on, where a run would stop.
type interrupts struct {
	mu      sync.Mutex
	handler func() bool
}

// handle offers a SIGINT to the handler, if one is set; it reports
// whether the handler took it.
func (i *interrupts) handle() bool {
	i.mu.Lock()
	h := i.handler
	i.mu.Unlock()
	return h != nil && h()
}

// set makes h the handler until the returned function is called. h
// reports whether it took the signal; one it does not take cancels the run.
func (i *interrupts) set(h func() bool) (unset func()) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.handler = h
	return func() {
		i.mu.Lock()
		defer i.mu.Unlock()
		i.handler = nil
	}
}

type interruptsKey struct{}

func withInterrupts(ctx context.Context, i *interrupts) context.Context {
	return context.WithValue(ctx, interruptsKey{}, i)
}

// interruptsFrom returns the SIGINT router of ctx, or nil when run() was
// called without one (tests in-process: no signal reaches them).
func interruptsFrom(ctx context.Context) *interrupts {
	i, _ := ctx.Value(interruptsKey{}).(*interrupts)
	return i
}

// run is the whole command line: it parses args, does what they say and
// returns the exit code. Tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	rep, err := execute(ctx, args, stdout, stderr)
	code := exitCode(ctx, rep, err)
	if err != nil {
		printError(stderr, err)
		if rep == nil && jsonRequested(args) {
			writeErrorEvent(stdout, err, code)
		}
	}
	return code
}

// exitCode is the one place that maps the outcome of a run to an exit code.
func exitCode(ctx context.Context, rep *sdrt.Report, err error) int {
	var exit kongExit
	var usage *usageError
	var compile *sdrt.CompileError
	switch {
	case errors.As(err, &exit): // --help, --version
		return exit.code
	case err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled)):
		return exitInterrupted
	case errors.As(err, &usage), errors.As(err, &compile):
		return exitUsage
	case errors.As(err, new(*testsFailedError)): // connector test
		return exitFailed
	case err != nil: // any other error before a host ran
		return exitUsage
	case rep == nil: // a command that runs no host, e.g. `connectors`
		return exitOK
	case rep.Interrupted || ctx.Err() != nil:
		return exitInterrupted
	case rep.Failed() > 0:
		return exitFailed
	default:
		return exitOK
	}
}

// printError writes err for a user: a compile error as is (it starts with
// file:line), anything else after the program name. Nothing is printed for
// the pseudo-errors of --help and --version.
func printError(w io.Writer, err error) {
	var exit kongExit
	var compile *sdrt.CompileError
	switch {
	case errors.As(err, &exit):
	case errors.As(err, &compile):
		fmt.Fprintln(w, compile.Error())
	default:
		fmt.Fprintf(w, "star-deploy: %v\n", err)
	}
}

// usageError is a mistake on the command line or in the inventory, found
// before any host ran.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// kongExit carries the status kong asked to exit with (after --help or
// --version) out of the parser without ending the process.
type kongExit struct{ code int }

func (e kongExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

// versionString returns what --version prints and the run_start event
// carries: the version, the commit and the Go release and platform it was
// built with.
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(version, commit, bi)
}

// formatVersion renders the version line from the -ldflags values and, for
// what they leave empty, the build info (bi may be nil): the module version
// `go install ...@version` records, and vcs.revision and vcs.modified that
// a go build in a git checkout records.
func formatVersion(version, commit string, bi *debug.BuildInfo) string {
	goVersion := runtime.Version()
	if bi != nil {
		goVersion = bi.GoVersion
		if version == "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		if commit == "" {
			settings := make(map[string]string, len(bi.Settings))
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			commit = settings["vcs.revision"]
			if commit != "" && settings["vcs.modified"] == "true" {
				commit += ", modified"
			}
		}
	}
	if version == "" {
		version = "dev"
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("star-deploy %s (commit %s, %s, %s/%s)",
		version, commit, goVersion, runtime.GOOS, runtime.GOARCH)
}
