package builtins

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostCaptureDir holds the outputs of the host facts' probes that
// facts_host_test.go parses; its README says where each came from.
const hostCaptureDir = "testdata/facts/host"

// hideTools is a shell prelude that puts on PATH a directory of links to
// every program of the usual directories but the ones named in $HIDE, so a
// probe runs as on a host without them.
const hideTools = `if [ -n "$HIDE" ]; then
  d=$(mktemp -d /tmp/star-deploy-capture.XXXXXX)
  trap '/bin/rm -rf "$d"' EXIT
  for p in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    for f in "$p"/*; do
      n=${f##*/}
      case " $HIDE " in *" $n "*) continue ;; esac
      [ -e "$d/$n" ] || ln -s "$f" "$d/$n"
    done
  done
  PATH=$d
fi
`

// TestCaptureHostFacts regenerates the captures of testdata/facts/host by
// running each probe for real: on this machine, in the Debian test image
// (as root and as the user deploy) and in the busybox test image. It runs
// only with STAR_DEPLOY_CAPTURE=1 (it writes into the source tree):
//
//	STAR_DEPLOY_CAPTURE=1 go test -run TestCaptureHostFacts ./builtins/
func TestCaptureHostFacts(t *testing.T) {
	if os.Getenv("STAR_DEPLOY_CAPTURE") != "1" {
		return // not a test: a tool for the captures, see its comment
	}
	find, _ := findCommand("/etc", "host*", "f")
	findDirs, _ := findCommand("/etc", "*.d", "d")
	probes := map[string]string{
		"cpus":             cpusProbe,
		"meminfo":          "cat /proc/meminfo",
		"kernel":           "uname -s; uname -r; uname -v",
		"modules":          "if [ -r /proc/modules ]; then cat /proc/modules; fi",
		"locales":          "command -v locale >/dev/null 2>&1 || exit 3; locale -a",
		"timezone":         timezoneProbe,
		"hostname_fqdn":    "hostname -f 2>/dev/null || hostname 2>/dev/null || uname -n",
		"network":          networkProbe,
		"block":            blockProbe,
		"df":               "df -P -k",
		"ports":            portsProbe,
		"ps":               psProbe,
		"env":              "env -0 2>/dev/null || env",
		"find_files":       find,
		"find_directories": findDirs,
		"sshd":             sshdProbe,
	}
	type place struct {
		dir  string
		argv []string // the command that runs a script given as the last argument
		hide string   // tools to hide
		only []string // the probes to run (all when empty)
		skip string   // a probe not to run
		pre  string   // run before the probe
		// busybox's sh runs its applets whatever PATH says: the tools
		// the probes test for with "command -v NAME" are hidden there by
		// testing "false" instead.
		without []string
	}
	dockerRun := func(image string, extra ...string) []string {
		return append(append([]string{"docker", "run", "--rm"}, extra...), image, "sh", "-c")
	}
	const debian, busybox = "star-deploy-test/debian:bookworm", "star-deploy-test/busybox:v1"
	places := []place{
		// Not ps here: this machine's processes are not the project's
		// to publish (the containers' ps is the same procps).
		{dir: "debian12-vm", argv: []string{"sh", "-c"}, skip: "ps"},
		{dir: "debian12-vm-without-ss-ip-lsblk", argv: []string{"sh", "-c"}, hide: "ss ip lsblk", only: []string{"network", "block", "ports"}},
		{dir: "debian12-vm-proc-net", argv: []string{"sh", "-c"}, without: []string{"ss", "netstat"}, only: []string{"ports"}},
		{dir: "debian12-container", argv: dockerRun(debian), pre: "ssh-keygen -A >/dev/null 2>&1\n"},
		{dir: "debian12-container-deploy", argv: dockerRun(debian, "-u", "deploy"), only: []string{"sshd", "env", "ps", "locales"}},
		{dir: "busybox", argv: dockerRun(busybox)},
		{dir: "busybox-without-ip", argv: dockerRun(busybox), without: []string{"ip"}, only: []string{"network"}},
		{dir: "busybox-proc-net", argv: dockerRun(busybox), without: []string{"ip", "ifconfig", "ss", "netstat"}, pre: "nc -l -p 8080 & sleep 0.3\n", only: []string{"ports", "network"}},
	}
	for _, pl := range places {
		names := pl.only
		if len(names) == 0 {
			for n := range probes {
				if n != pl.skip {
					names = append(names, n)
				}
			}
		}
		dir := filepath.Join(hostCaptureDir, pl.dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			probe := probes[n]
			for _, w := range pl.without {
				probe = strings.ReplaceAll(probe, "command -v "+w+" ", "false ")
			}
			script := "HIDE='" + pl.hide + "'\n" + hideTools + pl.pre + probe
			args := append(append([]string{}, pl.argv[1:]...), script)
			cmd := exec.Command(pl.argv[0], args...)
			// This machine's environment stays out of the captures.
			cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root", "LANG=C.UTF-8", "MULTI=line one\nline two"}
			out, err := cmd.Output()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("%s %s: %v", pl.dir, n, err)
			}
			if code != 0 {
				if err := os.WriteFile(filepath.Join(dir, n+".exit"), []byte{byte('0' + code)}, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, n+".txt"), out, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
