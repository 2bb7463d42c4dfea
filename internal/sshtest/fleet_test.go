package sshtest

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestFleet checks the image with the real ssh client: deploy has
// passwordless sudo, deploy2 needs its password.
func TestFleet(t *testing.T) {
	cs := Fleet(t, 2)
	for _, c := range cs {
		ssh := func(user string, cmd string) (string, error) {
			out, err := exec.Command("ssh", "-F", "/dev/null", "-i", c.ClientKey, "-p", strconv.Itoa(c.Port),
				"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
				user+"@"+c.Host, cmd).CombinedOutput()
			return string(out), err
		}
		if out, err := ssh(UserNopasswd, "sudo -n id -u"); err != nil || !strings.HasSuffix(out, "0\n") {
			t.Errorf("%s: deploy: sudo -n id -u: %v %q", c.Name, err, out)
		}
		if out, err := ssh(UserPasswd, "sudo -n true"); err == nil {
			t.Errorf("%s: deploy2: sudo -n without a password worked: %q", c.Name, out)
		}
		if out, err := ssh(UserPasswd, "echo "+SudoPassword+" | sudo -S -p '' id -u"); err != nil || !strings.HasSuffix(out, "0\n") {
			t.Errorf("%s: deploy2: sudo with the password: %v %q", c.Name, err, out)
		}
	}
}
