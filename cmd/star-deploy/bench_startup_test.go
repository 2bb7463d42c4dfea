package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestStartupBenchmark times whole star-deploy processes on this machine:
// `@local empty.star` (x = 1: start-up and exit, no operation) and the
// no-change re-run of `@local examples/hello.star`, beside the targets of
// issue 15 (10 ms and 20 ms wall). It prints the median wall and CPU time
// (user + system) and peak RSS of N runs of each, interleaved so that
// both see the same load, and the median of /bin/true as the floor of
// starting any process here. wait4 counts the test process's own RSS in a
// child's peak (it is the child until exec), so read the peaks against
// the floor's.
//
// It times the binary make release ships (CGO_ENABLED=0, -trimpath, -s
// -w): a static one, whose start skips the dynamic loader and libc. The
// empty script is timed on the tests' plain go build too, which links
// libc where a C compiler is (about 1 ms more here).
//
// It runs only when STAR_DEPLOY_STARTUP_BENCH gives N, as `make bench`
// does (STARTUP_RUNS, default 30).
func TestStartupBenchmark(t *testing.T) {
	spec := os.Getenv("STAR_DEPLOY_STARTUP_BENCH")
	if spec == "" {
		t.Skip("set STAR_DEPLOY_STARTUP_BENCH=30 to run (make bench does)")
	}
	n, err := strconv.Atoi(spec)
	if err != nil || n < 1 || n > 1000 {
		t.Fatalf("STAR_DEPLOY_STARTUP_BENCH: want a run count from 1 to 1000, got %q", spec)
	}
	plain := buildBinary(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "star-deploy")
	if err := goBuild(bin, []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags", "-s -w"); err != nil {
		t.Fatal(err)
	}
	empty := writeFile(t, dir, "empty.star", "x = 1\n")
	hello, err := filepath.Abs("../../examples/hello.star")
	if err != nil {
		t.Fatal(err)
	}
	helloArgs := []string{"--data", "dir=" + filepath.Join(dir, "hello"), "@local", hello}
	// The first run of hello.star makes its files; the timed ones change
	// nothing.
	if out, err := exec.Command(bin, helloArgs...).CombinedOutput(); err != nil {
		t.Fatalf("hello.star: %v\n%s", err, out)
	}
	cases := []struct {
		name   string
		target time.Duration
		argv   []string
	}{
		{"floor: /bin/true", 0, []string{"/bin/true"}},
		{"@local empty.star", 10 * time.Millisecond, []string{bin, "@local", empty}},
		{"  the same, plain go build", 0, []string{plain, "@local", empty}},
		{"@local hello.star (no change)", 20 * time.Millisecond, append([]string{bin}, helloArgs...)},
	}
	wall := make([][]time.Duration, len(cases))
	cpu := make([][]time.Duration, len(cases))
	rss := make([]int64, len(cases))
	for range n {
		for i, c := range cases {
			cmd := exec.Command(c.argv[0], c.argv[1:]...)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			wall[i] = append(wall[i], time.Since(start))
			if err != nil {
				t.Fatalf("%s: %v\n%s", c.name, err, out)
			}
			cpu[i] = append(cpu[i], cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				rss[i] = max(rss[i], ru.Maxrss)
			}
		}
	}
	fmt.Printf("\nstart-up, median of %d runs each (wall, CPU = user+sys, peak RSS):\n", n)
	fmt.Printf("%-32s %9s %9s %10s  %s\n", "command", "wall", "CPU", "peak RSS", "target")
	for i, c := range cases {
		w, u := median(wall[i]), median(cpu[i])
		target := "-"
		if c.target > 0 {
			verdict := "met"
			if w > c.target {
				verdict = "NOT met"
			}
			target = fmt.Sprintf("≤ %s wall: %s (%.2f×)", msText(c.target), verdict, float64(w)/float64(c.target))
		}
		fmt.Printf("%-32s %9s %9s %7.1f MiB  %s\n", c.name, msText(w), msText(u), float64(rss[i])/1024, target)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func msText(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
