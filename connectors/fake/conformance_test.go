package fake_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/conntest"
	"github.com/star-deploy/star-deploy/connectors/fake"
)

// noShell is why the suite's command tests do not apply: the fake runs
// nothing, a command gets the response a test scripted for it.
const noShell = "the fake runs no shell: a command gets the response a test scripted (TestRunResponses covers that)"

// TestConformance runs the connector conformance suite on the fake. The
// suite inspects files with three shell commands (ls -A, stat -c %a,
// wc -c); the fake answers them from its files, as scripted responses
// (inspect), so that its Put and Get are held to what real connectors do.
func TestConformance(t *testing.T) {
	conntest.SuiteSkipping(t, func(t *testing.T) (connectors.Connector, string) {
		c := fake.New("@fake/conformance")
		inspect(c)
		return c, "/scratch"
	}, map[string]string{
		"RunExitCodes":              noShell,
		"RunStdoutStderr":           noShell,
		"RunLargeOutput":            noShell,
		"RunMaxOutput":              noShell,
		"RunStdin":                  noShell,
		"RunEnvChdir":               noShell,
		"RunLiveOutput":             noShell,
		"RunConcurrent":             noShell,
		"RunTimeout":                noShell,
		"RunCancel":                 noShell,
		"PutGetRoundTrip/from_host": noShell,
		"PutGetStreaming":           "the fake keeps its files in memory by design; the suite's heap bound is for hosts with a disk",
		"PutMissingDir":             "the fake has files but no directories by design: a put creates its path, so tests need not create parents first",
	})
}

// inspect scripts c to answer the suite's file inspections from its files.
func inspect(c *fake.Conn) {
	c.OnFunc("ls -A ", func(_ context.Context, cmd connectors.Command) (connectors.Result, error) {
		dir, _ := shellWord(strings.TrimPrefix(cmd.Script, "ls -A "))
		var names []string
		for _, p := range c.Paths() {
			if rel, ok := strings.CutPrefix(p, dir+"/"); ok {
				if name, _, _ := strings.Cut(rel, "/"); !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
		return stdout(strings.Join(names, "\n")), nil
	})
	c.OnFunc("stat -c %a ", func(_ context.Context, cmd connectors.Command) (connectors.Result, error) {
		p, _ := shellWord(strings.TrimPrefix(cmd.Script, "stat -c %a "))
		f, ok := c.File(p)
		if !ok {
			return connectors.Result{ExitCode: 1}, nil
		}
		return stdout(fmt.Sprintf("%o", f.Mode.Perm())), nil
	})
	c.OnFunc("wc -c < ", func(_ context.Context, cmd connectors.Command) (connectors.Result, error) {
		p, _ := shellWord(strings.TrimPrefix(cmd.Script, "wc -c < "))
		f, ok := c.File(p)
		if !ok {
			return connectors.Result{ExitCode: 1}, nil
		}
		return stdout(fmt.Sprint(len(f.Content))), nil
	})
}

func stdout(s string) connectors.Result { return connectors.Result{Stdout: []byte(s + "\n")} }

// shellWord splits the first word off s, undoing connectors.Quote: a bare
// word, or one in single quotes with '\” for a quote.
func shellWord(s string) (word, rest string) {
	if !strings.HasPrefix(s, "'") {
		word, rest, _ = strings.Cut(s, " ")
		return word, rest
	}
	var b strings.Builder
	for s != "" && s[0] == '\'' {
		end := strings.IndexByte(s[1:], '\'') + 1
		b.WriteString(s[1:end])
		s = s[end+1:]
		if after, ok := strings.CutPrefix(s, `\'`); ok {
			b.WriteByte('\'')
			s = after
		}
	}
	return b.String(), strings.TrimPrefix(s, " ")
}
