package main

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	const rev = "b60759b9128ec767be836f4f0bc711c61783ab11"
	platform := runtime.GOOS + "/" + runtime.GOARCH
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name, version, commit string
		bi                    *debug.BuildInfo
		want                  string
	}{
		{"make release", "v1.2.3", rev, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"star-deploy v1.2.3 (commit " + rev + ", go1.26.8, " + platform + ")"},
		{"stamped beats build info", "v1.2.3", "abc", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.9.0"}, Settings: vcs("true")},
			"star-deploy v1.2.3 (commit abc, go1.26.8, " + platform + ")"},
		{"go install @version", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			"star-deploy v1.2.3 (commit unknown, go1.26.8, " + platform + ")"},
		{"go build in a clean checkout", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201210737-b60759b9128e"}, Settings: vcs("false")},
			"star-deploy v0.0.0-20261201210737-b60759b9128e (commit " + rev + ", go1.26.8, " + platform + ")"},
		{"go build in a modified checkout", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201210737-b60759b9128e+dirty"}, Settings: vcs("true")},
			"star-deploy v0.0.0-20261201210737-b60759b9128e+dirty (commit " + rev + ", modified, go1.26.8, " + platform + ")"},
		{"stamped version, commit from vcs", "v1.2.3", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")},
			"star-deploy v1.2.3 (commit " + rev + ", go1.26.8, " + platform + ")"},
		{"go build without vcs", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"star-deploy dev (commit unknown, go1.26.8, " + platform + ")"},
		{"no build info", "", "", nil,
			"star-deploy dev (commit unknown, " + runtime.Version() + ", " + platform + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatVersion(tt.version, tt.commit, tt.bi); got != tt.want {
				t.Errorf("formatVersion(%q, %q, ...)\n got %q\nwant %q", tt.version, tt.commit, got, tt.want)
			}
		})
	}
}

// TestVersionStamped builds the binary as make release does and checks that
// --version prints the stamped version and commit.
func TestVersionStamped(t *testing.T) {
	const version, commit = "v1.2.3-4-gb60759b-dirty", "b60759b9128ec767be836f4f0bc711c61783ab11"
	bin := buildStampedBinary(t, version, commit)
	out, err := exec.CommandContext(t.Context(), bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	want := "star-deploy " + version + " (commit " + commit + ", "
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("--version printed %q, want it to start with %q", out, want)
	}
}

// TestVersionBuildInfo runs a binary built by a plain go build: --version
// prints what the binary's own build info records (in a git checkout with
// VCS stamping on, the commit).
func TestVersionBuildInfo(t *testing.T) {
	bin := buildBinary(t)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), formatVersion("", "", bi); got != want {
		t.Errorf("--version printed %q, want %q", got, want)
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && !strings.Contains(string(out), "commit "+s.Value) {
			t.Errorf("--version printed %q, want the commit %s", out, s.Value)
		}
	}
}

// TestReleaseStampsTheVersionVariables checks that make release sets the
// variables formatVersion reads.
func TestReleaseStampsTheVersionVariables(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-X main.version=", "-X main.commit=", "CGO_ENABLED=0", "-trimpath", "sha256sum"} {
		if !strings.Contains(string(mk), want) {
			t.Errorf("the Makefile's release target does not use %q", want)
		}
	}
}
