package ssh

import (
	"errors"
	"strings"
	"testing"
)

// A server without the SFTP subsystem (no Subsystem line in sshd_config)
// answers the request with a failure that says nothing of the cause.
func TestSFTPHint(t *testing.T) {
	refused := errors.New("ssh: subsystem request failed")
	got := sftpHint(refused)
	if !errors.Is(got, refused) || !strings.Contains(got.Error(), "Subsystem sftp internal-sftp") {
		t.Errorf("sftpHint(%v) = %v", refused, got)
	}
	other := errors.New("EOF")
	if got := sftpHint(other); got != other {
		t.Errorf("sftpHint(%v) = %v, want it unchanged", other, got)
	}
}
