package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/all"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// FuzzDataFlag feeds one --data item through the command line parser, the
// KEY=VALUE split and the control keys' value parsing. Whatever it is, it
// must be refused with an error or reach host data unchanged; a control
// value that is accepted must mean what its text says.
func FuzzDataFlag(f *testing.F) {
	for _, s := range []string{
		"role=web", "k=", "k=a=b", "list=a,b", `esc=a\,b`, "=v", "noequals", "1k=v", "a-b=v", "é=v",
		"sudo=true", "sudo=maybe", "sudo=1", "doas=F", "ignore_errors=TRUE", "get_pty=0",
		"timeout=30", "timeout=0.5", "timeout=-1", "timeout=NaN", "timeout=Inf", "timeout=1e300", "timeout=0x1p4",
		"retries=3", "retries=1.5", "retries=1e30", "retries=-1", "retries=+2", "retry_delay=2",
		"success_exit_codes=0,1", "success_exit_codes= 0 , 2", "success_exit_codes=", "success_exit_codes=a",
		"env=A=1", "sudo_user=app", "sudo_user=", "chdir=/srv/it's", "stdin=a\nb",
		"ssh_port=2222", "ssh_bogus=1", "local_x=1", "docker_host=unix:///x",
		"v=a\xffb", "v=\x00", "v=--json", "v=-1",
	} {
		f.Add(s)
	}
	reg := all.Registry()
	f.Fuzz(func(t *testing.T, item string) {
		if len(item) > 4096 {
			t.Skip("too long")
		}
		c, _, err := parse([]string{"--data", item, "@local", "x.star"}, nil, nil)
		if err != nil {
			// kong takes a value starting with "-" for a flag; such an
			// item is no KEY=VALUE anyway.
			if utf8.ValidString(item) && !strings.HasPrefix(item, "-") {
				t.Fatalf("the parser refused --data %q: %v", item, err)
			}
			return
		}
		if len(c.Data) != 1 || c.Data[0] != item {
			t.Fatalf("--data %q reached the flags as %q", item, c.Data)
		}
		data, err := parseData(reg, c.Data)
		if err != nil {
			return
		}
		k, v, _ := strings.Cut(item, "=")
		if len(data) != 1 || data[k] != v || !connectors.ValidName(k) || !utf8.ValidString(v) {
			t.Fatalf("--data %q became %q", item, data)
		}
		ctl, err := sdrt.ControlFromData(sdrt.Control{}, anyMap(data))
		if err != nil || !sdrt.IsControlKey(k) {
			return
		}
		checkControl(t, k, v, ctl)
	})
}

// checkControl checks that the accepted control value v of key k set ctl
// to what v says.
func checkControl(t *testing.T, k, v string, ctl sdrt.Control) {
	t.Helper()
	switch k {
	case "sudo", "doas", "ignore_errors", "get_pty":
		b, err := strconv.ParseBool(v)
		got := map[string]bool{"sudo": ctl.Sudo, "doas": ctl.Doas, "ignore_errors": ctl.IgnoreErrors, "get_pty": ctl.GetPTY}[k]
		if err != nil || got != b {
			t.Fatalf("%s=%q set %v", k, v, got)
		}
	case "retries":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || ctl.Retries != n {
			t.Fatalf("retries=%q set %d", v, ctl.Retries)
		}
	case "timeout", "retry_delay":
		d := map[string]time.Duration{"timeout": ctl.Timeout, "retry_delay": ctl.RetryDelay}[k]
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 || secs > 365*24*3600 || d < 0 || (d-time.Duration(secs*float64(time.Second))).Abs() > time.Microsecond {
			t.Fatalf("%s=%q set %v", k, v, d)
		}
	case "success_exit_codes":
		var want []string
		for _, p := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				t.Fatalf("success_exit_codes=%q accepted with a part %q that is no number", v, p)
			}
			want = append(want, strconv.Itoa(n))
		}
		var got []string
		for _, n := range ctl.SuccessExitCodes {
			got = append(got, strconv.Itoa(n))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("success_exit_codes=%q set %v", v, ctl.SuccessExitCodes)
		}
	case "sudo_user", "su_user", "doas_user", "chdir", "shell_executable", "stdin":
		got := map[string]string{"sudo_user": ctl.SudoUser, "su_user": ctl.SuUser, "doas_user": ctl.DoasUser,
			"chdir": ctl.Chdir, "shell_executable": ctl.ShellExecutable, "stdin": ctl.Stdin}[k]
		if got != v {
			t.Fatalf("%s=%q set %q", k, v, got)
		}
	}
}
