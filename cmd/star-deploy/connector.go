package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/connectors/plugin"
)

// connectorCmd groups the commands about one connector.
type connectorCmd struct {
	Test connectorTestCmd `cmd:"" help:"Run the conformance suite, the one every built-in connector passes, against HOST's connector and print a pass/fail table. It runs commands and writes files in a new temporary directory on HOST (mktemp -d), which it removes; it needs a POSIX shell there. Exit 0 when every test passes, 1 when one fails."`
}

type connectorTestCmd struct {
	Host string `arg:"" placeholder:"@NAME/ADDR" help:"The host to test: @local, @ssh/HOST, @docker/NAME, or a plugin's @NAME/ADDR. Connector data comes from --data."`
	Test string `name:"test" placeholder:"REGEXP" help:"Run only the tests whose name matches REGEXP (PutGetStreaming moves 100 MiB each way; --test '^Run' leaves it out)."`
}

// testsFailedError reports that the conformance suite failed: exit 1.
type testsFailedError struct{ failed int }

func (e *testsFailedError) Error() string {
	return fmt.Sprintf("%d conformance test(s) failed", e.failed)
}

// registerPlugins adds the connector plugins to reg: those named by
// --connector-plugin (an error when one is missing, not executable or
// takes a scheme already registered), then every star-deploy-connector-*
// on pathList whose scheme is still free.
func registerPlugins(reg *connectors.Registry, explicit []string, pathList string) error {
	for _, p := range explicit {
		st, err := os.Stat(p)
		switch {
		case err != nil:
			return usagef("--connector-plugin %s: %w", p, err)
		case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
			return usagef("--connector-plugin %s: not an executable file (chmod +x it)", p)
		}
		f := plugin.NewFactory(p)
		if _, dup := reg.Lookup(f.Scheme()); dup {
			return usagef("--connector-plugin %s: it would provide @%s, which is already a connector", p, f.Scheme())
		}
		if err := reg.Register(f); err != nil {
			return usagef("--connector-plugin %s: %w", p, err)
		}
	}
	// The plugins on PATH are found only when an answer needs them (an
	// unknown scheme, the list of connectors, a data key with "_"): reading
	// every PATH directory was a third of the start-up of a run of
	// built-in connectors. The explicit ones above win over them.
	reg.Defer(func() []connectors.Factory {
		var out []connectors.Factory
		for _, p := range plugin.Find(pathList) {
			out = append(out, plugin.NewFactory(p))
		}
		return out
	})
	return nil
}

// scratchScript makes the suite's temporary directory and prints its path.
const scratchScript = `mktemp -d "${TMPDIR:-/tmp}/star-deploy-conntest.XXXXXX"`

func (c *connectorTestCmd) run(ctx context.Context, f *flags, reg *connectors.Registry, stdout io.Writer) error {
	var sel func(string) bool
	if c.Test != "" {
		re, err := regexp.Compile(c.Test)
		if err != nil {
			return usagef("--test %q: %w", c.Test, err)
		}
		sel = re.MatchString
	}
	data, err := parseData(reg, append(append([]string{}, f.defaultData...), f.Data...))
	if err != nil {
		return err
	}
	scheme, _ := connectors.SplitName(c.Host)
	own := map[string]string{}
	for k, v := range data {
		if reg.ConnectorKey(scheme, k) { // @dockerssh takes ssh_* too
			own[k] = v
		}
	}
	t, err := reg.Target(c.Host, own)
	if err != nil {
		return &usageError{err}
	}
	factory, _ := reg.Lookup(t.Scheme)
	open := func(ct conntest.T) (connectors.Connector, string) {
		conn, err := factory.Open(ct.Context(), t)
		if err != nil {
			ct.Fatalf("open %s: %v", t.Name, err)
		}
		ct.Cleanup(func() { conn.Close() })
		res, err := conn.Run(ct.Context(), connectors.Command{Script: scratchScript})
		dir := strings.TrimSpace(string(res.Stdout))
		if err != nil || res.ExitCode != 0 || !strings.HasPrefix(dir, "/") {
			ct.Fatalf("make a scratch directory on %s with %s: exit %d, %v, stderr %q", t.Name, scratchScript, res.ExitCode, err, res.Stderr)
		}
		ct.Cleanup(func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ct.Context()), 30*time.Second)
			defer cancel()
			conn.Run(rctx, connectors.Command{Script: "rm -rf " + connectors.Quote(dir)})
		})
		return conn, dir
	}

	fmt.Fprintf(stdout, "conformance suite against %s (@%s)\n", t.Name, t.Scheme)
	var pending []string // failures of subtests, printed under their test
	counts := map[string]int{}
	outcomes := conntest.Run(ctx, open, conntest.RunOptions{
		Select: sel,
		Logs:   f.Verbose > 0,
		Done: func(o conntest.Outcome) {
			if o.Depth() > 0 {
				if o.Status == "fail" || f.Verbose > 0 {
					for _, m := range o.Messages {
						pending = append(pending, fmt.Sprintf("%s: %s", o.Name, m))
					}
				}
				return
			}
			counts[o.Status]++
			note := fmt.Sprintf("%.2fs", o.Duration.Seconds())
			if o.Status == "skip" && len(o.Messages) > 0 {
				note += "  " + o.Messages[0]
			}
			fmt.Fprintf(stdout, "%-4s  %-20s %s\n", strings.ToUpper(o.Status), o.Name, note)
			if o.Status != "skip" {
				for _, m := range o.Messages {
					pending = append(pending, m)
				}
			}
			for _, line := range pending {
				for _, l := range strings.Split(line, "\n") {
					fmt.Fprintf(stdout, "        %s\n", l)
				}
			}
			pending = nil
		},
	})
	if ctx.Err() != nil {
		return fmt.Errorf("connector test interrupted: %w", ctx.Err())
	}
	if len(outcomes) == 0 {
		return usagef("--test %q matches no test", c.Test)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed, %d skipped\n", counts["pass"], counts["fail"], counts["skip"])
	if counts["fail"] > 0 {
		return &testsFailedError{counts["fail"]}
	}
	return nil
}
