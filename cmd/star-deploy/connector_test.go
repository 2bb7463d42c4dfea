package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/internal/sshtest"
)

// brokenPlugin is a Python plugin that fails the suite and crashes on
// demand.
func brokenPlugin(t *testing.T) string {
	t.Helper()
	needPython(t)
	p, err := filepath.Abs("testdata/plugins/star-deploy-connector-broken")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not installed; CI must install it (.ci/run)")
		}
		t.Skip("python3 is not installed")
	}
}

// startRESTServer starts the REST API of examples/connectors/rest on
// 127.0.0.1 and returns its URL and the @rest plugin.
func startRESTServer(t *testing.T, key string) (url, pluginPath string) {
	t.Helper()
	dir, err := filepath.Abs("../../examples/connectors/rest")
	if err != nil {
		t.Fatal(err)
	}
	url = sshtest.RESTServer(t, dir, key, "box")
	return url, filepath.Join(dir, "star-deploy-connector-rest")
}

func TestConnectorTestREST(t *testing.T) {
	const key = "cli-test-key-9f3"
	url, rest := startRESTServer(t, key)
	// PutGetStreaming measures the heap, which other tests of this
	// package share; the example's own test runs it.
	code, stdout, stderr := runCLI(t, "--connector-plugin", rest, "--data", "rest_url="+url, "--data", "rest_key="+key,
		"connector", "test", "@rest/box", "--test", "^(Target|Run|PutMode|PutAtomic|PutFailure|GetMissing)")
	if code != 0 || !strings.Contains(stdout, "PASS  RunCancel") || !strings.Contains(stdout, "passed, 0 failed, 0 skipped") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, key) {
		t.Errorf("the output shows rest_key")
	}
}

func TestConnectorTestBuiltin(t *testing.T) {
	code, stdout, stderr := runCLI(t, "connector", "test", "@local", "--test", "^(RunExitCodes|GetMissing)$")
	want := "conformance suite against @local (@local)\nPASS  RunExitCodes"
	if code != 0 || !strings.HasPrefix(stdout, want) || !strings.Contains(stdout, "PASS  GetMissing") || !strings.HasSuffix(stdout, "2 passed, 0 failed, 0 skipped\n") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

func TestConnectorTestFails(t *testing.T) {
	broken := brokenPlugin(t)
	code, stdout, stderr := runCLI(t, "--connector-plugin", broken, "connector", "test", "@broken/x", "--test", "^RunExitCodes$")
	if code != 1 || !strings.Contains(stdout, "FAIL  RunExitCodes") || !strings.Contains(stdout, `run "exit 1": exit status 0, want 1`) ||
		!strings.Contains(stdout, "0 passed, 1 failed") || !strings.Contains(stderr, "1 conformance test(s) failed") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "connector", "test", "@local", "--test", "^Nope$")
	if code != 2 || !strings.Contains(stderr, `--test "^Nope$" matches no test`) {
		t.Errorf("--test matching nothing: exit %d, stderr %s", code, stderr)
	}
}

// A plugin that crashes fails its host with the plugin's last words; the
// other hosts of the run carry on.
func TestPluginCrashFailsOnlyItsHost(t *testing.T) {
	broken := brokenPlugin(t)
	const secret = "tok-abcdef-123"
	code, stdout, stderr := runCLI(t, "--connector-plugin", broken, "--data", "broken_token="+secret, "@local,@broken/x", "exec", "--", "echo crash")
	out := stdout + stderr
	if code != 1 || !strings.Contains(out, "[@local] crash") ||
		!strings.Contains(out, `plugin "broken" (`+broken+`) exited unexpectedly (exit status 3); its last message: broken: crashing as asked`) {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the output shows the secret broken_token")
	}
}

func TestConnectorsListsPlugins(t *testing.T) {
	broken := brokenPlugin(t)
	t.Setenv("PATH", filepath.Dir(broken)+string(filepath.ListSeparator)+os.Getenv("PATH"))
	code, stdout, stderr := runCLI(t, "connectors")
	want := "@broken\n    plugin: " + broken + "\n    A broken plugin.\n    data keys:\n      broken_token  string  (secret)  A secret.\n"
	if code != 0 || !strings.Contains(stdout, want) || !strings.Contains(stdout, "@local\n") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant it to contain:\n%s", code, stdout, stderr, want)
	}
}

func TestConnectorPluginFlagErrors(t *testing.T) {
	dir := t.TempDir()
	noexec := writeFile(t, dir, "star-deploy-connector-x", "#!/bin/sh\n")
	local := writeFile(t, dir, "star-deploy-connector-local", "#!/bin/sh\n")
	os.Chmod(local, 0o755)
	for _, tt := range []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "--connector-plugin " + filepath.Join(dir, "missing") + ": stat"},
		{noexec, "not an executable file (chmod +x it)"},
		{local, "it would provide @local, which is already a connector"},
	} {
		code, _, stderr := runCLI(t, "--connector-plugin", tt.path, "@local", "exec", "--", "true")
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("--connector-plugin %s: exit %d, stderr %s; want 2 and %q", tt.path, code, stderr, tt.want)
		}
	}
}
