package runtime_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	"github.com/star-deploy/star-deploy/connectors/local"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// benchRun compiles script once and runs it on hosts b.N times.
func benchRun(b *testing.B, script string, hosts []sdrt.Host) {
	b.Helper()
	file := filepath.Join(writeFiles(b, map[string]string{"bench.star": script}), "bench.star")
	r := sdrt.New(sdrt.Options{Connectors: connectors.NewRegistry(local.NewFactory(), fake.NewFactory(func(t connectors.Target) *fake.Conn {
		// The file probe of put() starts "p=PATH"; exit 3 means the file
		// is missing, so every run uploads.
		return fake.New(t.Name).On("p=", connectors.Result{ExitCode: 3})
	}))})
	p, err := r.Compile(b.Context(), file, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rep := r.Run(b.Context(), []*sdrt.Program{p}, hosts)
		if n := rep.Failed(); n != 0 {
			b.Fatalf("%d hosts failed: %v", n, rep.Hosts[0].Err)
		}
	}
}

// BenchmarkLocal1000UnchangedPuts is the engine's overhead per operation on
// @local: 1,000 put() calls whose file already matches (one probe, then
// cached facts), so nearly all the time is Starlark, SHA-256 and events.
func BenchmarkLocal1000UnchangedPuts(b *testing.B) {
	dest := filepath.Join(b.TempDir(), "f")
	benchRun(b, fmt.Sprintf("for i in range(1000):\n    put(%q, content = 'same')\n", dest), []sdrt.Host{localHost(b, "@local", nil)})
}

// BenchmarkLocal1000Shell runs shell("true") 1,000 times on @local: the
// cost of a real command, dominated by fork/exec of sh.
func BenchmarkLocal1000Shell(b *testing.B) {
	benchRun(b, "for i in range(1000):\n    shell('true')\n", []sdrt.Host{localHost(b, "@local", nil)})
}

// BenchmarkFake100Hosts runs 100 operations (shell, fact, put) on each of
// 100 in-memory hosts: scheduling, threads and events with no I/O.
func BenchmarkFake100Hosts(b *testing.B) {
	var hosts []sdrt.Host
	for i := range 100 {
		name := fmt.Sprintf("host%03d", i)
		hosts = append(hosts, sdrt.Host{Name: name, Target: connectors.Target{Scheme: "fake", Name: name}})
	}
	script := strings.Join([]string{
		"for i in range(98):",
		"    shell('echo %d' % i)",
		"fact('arch')",
		"put('/etc/motd', content = 'hi ' + host.name)",
	}, "\n")
	benchRun(b, script, hosts)
}
