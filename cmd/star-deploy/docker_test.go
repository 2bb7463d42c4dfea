package main

import (
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// TestDockerMixedWithLocal runs one script on a container of the Debian
// test image and on @local in the same run.
func TestDockerMixedWithLocal(t *testing.T) {
	c := sshtest.Fleet(t, 1)[0]
	script := writeFile(t, t.TempDir(), "s.star", `print("os=" + fact("os")["id"] + " on " + host.connector)`)
	code, out, errOut := runCLI(t, "@docker/"+c.Name+",@local", script)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "[@docker/"+c.Name+"] os=debian on docker") || !strings.Contains(out, "[@local] os=") {
		t.Errorf("output:\n%s", out)
	}
}
