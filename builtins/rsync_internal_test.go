package builtins

import (
	"strings"
	"testing"
)

// TestRsyncRemoteCommand: the relay's arguments become the command line
// ssh would run, and only rsync's server is accepted.
func TestRsyncRemoteCommand(t *testing.T) {
	for _, tc := range []struct {
		argv, want, err string
	}{
		{"rsync\x00--server\x00-slogDtpre.iLsfxCIvu\x00", "rsync --server -slogDtpre.iLsfxCIvu", ""},
		{"rsync\x00--server\x00-logDtpre.iLsfxCIvu\x00.\x00/srv/a\\ b\x00", `rsync --server -logDtpre.iLsfxCIvu . /srv/a\ b`, ""},
		{"sudo rsync\x00--server\x00-a\x00", "", "is not `rsync --server ...`"},
		{"rsync\x00--sender\x00-a\x00", "", "is not `rsync --server ...`"},
		{"rsync\x00--server\x00", "", "is not `rsync --server ...`"},
		{"rsync\x00--server\x00-a\x00x\ny\x00", "", "is not `rsync --server ...`"},
		{"", "", "is not `rsync --server ...`"},
	} {
		got, err := rsyncRemoteCommand([]byte(tc.argv))
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("rsyncRemoteCommand(%q) = %q, %v; want %q, %q", tc.argv, got, err, tc.want, tc.err)
		}
	}
}

func TestCheckRsyncFlags(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		err   string
	}{
		{[]string{"-ax", "--delete", "--exclude=*.swp", "--exclude", "-n", "-f", "-n", "-aT", "-n"}, ""}, // arguments, not flags
		{[]string{"--exclude=-n", "-n"}, "-n (in -n)"},
		{[]string{"-avz", "--chown=www-data:www-data", "--filter=- *.tmp", "-T/tmp/n", "-B1024n"}, ""},
		{[]string{"-aen"}, "-e (in -aen)"},
		{[]string{"--rsh=ssh"}, "--rsh is not allowed"},
		{[]string{"--log-format=%n"}, "--log-format is not allowed"},
		{[]string{"--dry-run"}, "use --dry"},
		{[]string{"--daemon"}, "--daemon is not allowed"},
		{[]string{"--"}, `"--" is not allowed`},
	} {
		err := checkRsyncFlags(tc.flags)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("checkRsyncFlags(%q) = %v, want %q", tc.flags, err, tc.err)
		}
	}
}

// TestItemizer: itemized lines are counted and kept without the marker,
// other lines are kept, and memory stays bounded by max_output and the
// longest line however much rsync prints.
func TestItemizer(t *testing.T) {
	w := &itemizer{}
	w.buf.Max = 64
	for _, chunk := range []string{"created directory /x\n" + rsyncMarker + "cd+++", "++++++ ./\n", rsyncMarker + "<f+++++++++ a\n"} {
		w.Write([]byte(chunk))
	}
	w.flush()
	if w.changes != 2 || string(w.buf.Bytes()) != "created directory /x\ncd+++++++++ ./\n<f+++++++++ a\n" {
		t.Errorf("changes %d, output %q", w.changes, w.buf.Bytes())
	}
	long := strings.Repeat("x", 3*rsyncMaxLine+5)
	for range 100 {
		w.Write([]byte(rsyncMarker + "<f+++++++++ " + long + "\n"))
	}
	w.flush()
	if w.changes != 102 || len(w.buf.Bytes()) > 64 || cap(w.partial) > 2*rsyncMaxLine || w.buf.Dropped() == 0 {
		t.Errorf("changes %d, kept %d bytes, partial cap %d, dropped %d", w.changes, len(w.buf.Bytes()), cap(w.partial), w.buf.Dropped())
	}
}
