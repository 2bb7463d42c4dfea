package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/internal/sshtest"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// TestMain serves isolated runs, as main does: the test binary is the
// child that RunIsolated starts.
func TestMain(m *testing.M) {
	if sdrt.IsChild() {
		serveChild()
	}
	os.Exit(m.Run())
}

// TestEmbed runs the example app against a real container: a user's
// deploy works (and is quiet the second time), an escape is refused, and a
// memory hog fails alone.
func TestEmbed(t *testing.T) {
	c := sshtest.Fleet(t, 1)[0]
	run1 := func(script string, extra ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		args := append([]string{"-dir", "automation", "-script", script}, extra...)
		code := run(t.Context(), append(args, c.Name), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run1("deploy.star")
	if code != 0 || !strings.Contains(out, "1 changed") && !strings.Contains(out, "2 changed") || !strings.Contains(out, "os: Debian") {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	if motd, err := c.Exec(t, "cat", "/etc/motd"); err != nil || motd != c.Name+" is managed by the platform team.\n" {
		t.Errorf("/etc/motd = %q, %v", motd, err)
	}
	if code, out, errOut = run1("deploy.star", "-isolate=false"); code != 0 || !strings.Contains(out, "0 changed") {
		t.Errorf("second deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut = run1("escape.star"); code != 1 || !strings.Contains(errOut, "leaves the sandbox") {
		t.Errorf("escape: exit %d\n%s", code, errOut)
	}
	if code, _, errOut = run1("hog.star", "-memory-mib", "128"); code != 1 || !strings.Contains(errOut, "memory limit of 128 MiB") {
		t.Errorf("hog: exit %d\n%s", code, errOut)
	}
}
