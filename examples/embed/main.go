// Command embed is a small app that runs automation its users wrote
// against Docker containers, in star-deploy's sandbox:
//
//	go run ./examples/embed -dir examples/embed/automation -script deploy.star CONTAINER...
//
// The user's .star files come from -dir only (no absolute paths, no "..",
// no links out); scripts may read and change the containers and read their
// own files, nothing else (no ssh, no local machine); each run is bounded
// in Starlark steps and wall-clock time; with -isolate (the default) it
// runs in a child process of this same binary with a memory cap, so that a
// script that allocates without end fails alone and the app carries on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/docker"
	sdrt "github.com/star-deploy/star-deploy/runtime"
	"github.com/star-deploy/star-deploy/stdlib"
)

func main() {
	if sdrt.IsChild() {
		serveChild()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// appConnectors are the connectors this app offers: Docker only.
func appConnectors() *connectors.Registry { return connectors.NewRegistry(docker.NewFactory()) }

// serveChild runs an isolated run for the parent process, with the same
// connectors and stdlib as run uses, and exits.
func serveChild() {
	sdrt.ServeChild(sdrt.ChildConfig{Connectors: appConnectors(), Stdlib: stdlib.FS})
}

// run is the app: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("embed", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", ".", "the directory of the user's automation")
	script := fl.String("script", "deploy.star", "the script to run, inside -dir")
	isolate := fl.Bool("isolate", true, "run in a child process with a memory cap")
	memory := fl.Int64("memory-mib", 256, "memory cap of an isolated run, MiB")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	files, err := sdrt.DirFS(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "embed:", err)
		return 2
	}
	r := sdrt.New(sdrt.Options{
		Connectors: appConnectors(),
		MaxSteps:   5_000_000,
		Timeout:    2 * time.Minute,
		Stdlib:     stdlib.FS,
		Sandbox: &sdrt.Sandbox{
			Files:      files,
			Effects:    sdrt.EffectReadHost | sdrt.EffectWriteHost | sdrt.EffectLocalFS,
			Connectors: []string{"docker"},
			MaxOutput:  64 << 10,
		},
		Print: func(host, msg string) { fmt.Fprintf(stdout, "[%s] %s\n", host, msg) },
		OnEvent: func(e sdrt.Event) {
			if e.Kind == sdrt.KindOpEnd {
				fmt.Fprintf(stdout, "[%s] %s: %s\n", e.Host, e.Name, e.Status)
			}
		},
	})
	var hosts []sdrt.Host
	for _, name := range fl.Args() {
		h, err := r.Host("@docker/"+name, nil)
		if err != nil {
			fmt.Fprintln(stderr, "embed:", err)
			return 2
		}
		h.Name = name
		hosts = append(hosts, h)
	}
	var rep *sdrt.Report
	if *isolate {
		rep, err = r.RunIsolated(ctx, sdrt.Isolation{MemoryLimit: *memory << 20}, []sdrt.Script{{Filename: *script}}, hosts)
	} else {
		var prog *sdrt.Program
		if prog, err = r.Compile(ctx, *script, nil); err == nil {
			rep = r.Run(ctx, []*sdrt.Program{prog}, hosts)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "embed:", err)
		return 2
	}
	status := 0
	for _, h := range rep.Hosts {
		if h.Err != nil {
			fmt.Fprintf(stderr, "[%s] failed: %v%s\n", h.Name, h.Err, advice(h.Err))
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "[%s] ok: %d changed\n", h.Name, h.Counts.Changed)
	}
	return status
}

// advice tells the app's user what to do about a run the engine stopped.
func advice(err error) string {
	switch {
	case errors.Is(err, sdrt.ErrMemoryLimit):
		return " (raise -memory-mib, or make the script hold less)"
	case errors.Is(err, sdrt.ErrStepLimit), errors.Is(err, sdrt.ErrTimeout):
		return " (the script does too much for one run; split it)"
	case errors.Is(err, sdrt.ErrSandbox):
		return " (automation reaches only its own directory and the containers)"
	}
	return ""
}
