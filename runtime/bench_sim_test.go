package runtime_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	rt "runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/connectors/fake"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// simOps is the number of operations the script of BenchmarkSimulatedHosts
// runs on each host.
const simOps = 100

// simScript is simOps operations: 90 shell() calls, 5 facts and 5 put()
// uploads (a probe, then the upload: the fake answers the probe "missing").
var simScript = strings.Join([]string{
	"for i in range(90):",
	"    shell('echo %d' % i)",
	"fact('arch')",
	"fact('hostname')",
	"fact('which', 'sh')",
	"fact('file', '/etc/passwd')",
	"fact('os')",
	"for i in range(5):",
	"    put('/etc/sim%d' % i, content = 'hi ' + host.name)",
}, "\n")

// simEnv is the integer of the environment variable name, or def.
func simEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// BenchmarkSimulatedHosts runs simOps operations on many fake hosts whose
// every round trip (Run, Put) takes a fixed latency, and reports the
// engine's own cost: everything that is not waiting for the hosts.
//
//	STAR_DEPLOY_SIM_HOSTS     hosts (default 200; make bench uses 10000)
//	STAR_DEPLOY_SIM_PARALLEL  Options.Parallel (default 1000)
//	STAR_DEPLOY_SIM_LATENCY_US  latency of each round trip in µs (default 1000)
//
// Metrics, per iteration:
//
//	overhead-µs/host-op  (wall time − the latency's lower bound) / (hosts × ops)
//	cpu-µs/host-op       user+system CPU of the process (getrusage) / (hosts × ops)
//	peak-KiB/host        peak of heap objects + goroutine stacks above the
//	                     start, / hosts (it includes the fake's own records)
//	peak-KiB/running-host  the same peak / the hosts that run at once
//	floor-s              the lower bound: ceil(hosts / parallel) hosts one
//	                     after another, each its round trips × the latency
//
// The lower bound counts round trips of one host (the fake's Commands and
// Puts); every host runs the same ones. Events are produced and counted, as
// the CLI would consume them.
func BenchmarkSimulatedHosts(b *testing.B) {
	n := simEnv(b, "STAR_DEPLOY_SIM_HOSTS", 200)
	parallel := simEnv(b, "STAR_DEPLOY_SIM_PARALLEL", 1000)
	latency := time.Duration(simEnv(b, "STAR_DEPLOY_SIM_LATENCY_US", 1000)) * time.Microsecond

	hosts := make([]sdrt.Host, n)
	for i := range hosts {
		name := fmt.Sprintf("sim%05d", i)
		hosts[i] = sdrt.Host{Name: name, Target: connectors.Target{Scheme: "fake", Name: name}}
	}
	var first atomic.Pointer[fake.Conn] // the latest conn of hosts[0]
	factory := fake.NewFactory(func(t connectors.Target) *fake.Conn {
		// The file probe of put() starts "p=PATH"; exit 3 means the file
		// is missing, so every run uploads.
		c := fake.New(t.Name).Latency(latency).On("p=", connectors.Result{ExitCode: 3})
		if t.Name == hosts[0].Name {
			first.Store(c)
		}
		return c
	})
	var events atomic.Int64
	r := sdrt.New(sdrt.Options{
		Connectors: connectors.NewRegistry(factory),
		Parallel:   parallel,
		OnEvent:    func(sdrt.Event) { events.Add(1) },
	})
	file := filepath.Join(writeFiles(b, map[string]string{"sim.star": simScript}), "sim.star")
	p, err := r.Compile(b.Context(), file, nil)
	if err != nil {
		b.Fatal(err)
	}

	var wall, cpu time.Duration
	var peak uint64
	var rounds, iters int
	for b.Loop() {
		rt.GC()
		base := simMemory()
		stopSampler := simSampler(base, &peak)
		cpu0 := simCPU(b)
		start := time.Now()
		rep := r.Run(b.Context(), []*sdrt.Program{p}, hosts)
		wall += time.Since(start)
		cpu += simCPU(b) - cpu0
		stopSampler()
		if k := rep.Failed(); k != 0 {
			b.Fatalf("%d hosts failed: %v", k, rep.Hosts[0].Err)
		}
		c := first.Load()
		rounds = len(c.Commands()) + len(c.Puts())
		iters++
	}
	floor := time.Duration(math.Ceil(float64(n)/float64(min(parallel, n)))) * time.Duration(rounds) * latency
	hostOps := float64(iters) * float64(n) * simOps
	b.ReportMetric(float64(wall-time.Duration(iters)*floor)/hostOps/1e3, "overhead-µs/host-op")
	b.ReportMetric(float64(cpu)/hostOps/1e3, "cpu-µs/host-op")
	b.ReportMetric(float64(peak)/float64(n)/1024, "peak-KiB/host")
	b.ReportMetric(float64(peak)/float64(min(parallel, n))/1024, "peak-KiB/running-host")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(float64(rounds), "round-trips/host")
	b.Logf("%d hosts × %d ops, parallel %d, latency %v: %d round trips per host, %d events per run", n, simOps, parallel, latency, rounds, events.Load()/int64(max(iters, 1)))
}

// simCPU is the user and system CPU time of the process so far.
func simCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var simMetrics = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/stacks:bytes"},
}

// simMemory is the bytes of live heap objects (and not yet collected
// garbage) plus goroutine stacks.
func simMemory() uint64 {
	s := make([]metrics.Sample, len(simMetrics))
	copy(s, simMetrics)
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

// simSampler raises *peak to the most memory above base it sees, now and
// every 10 ms, until the returned function is called.
func simSampler(base uint64, peak *uint64) (stop func()) {
	sample := func() bool {
		if m := simMemory(); m > base && m-base > *peak {
			*peak = m - base
		}
		return false
	}
	sample()
	return sdrt.Poll(10*time.Millisecond, sample)
}
