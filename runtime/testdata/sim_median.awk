# Reads the output of go test -bench BenchmarkSimulatedHosts -count N and
# prints each run, then the median of each figure (make bench).
function median(name,   n, i, j, t, v) {
	n = cnt[name]
	for (i = 1; i <= n; i++) v[i] = val[name, i]
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
	return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
/^BenchmarkSimulatedHosts/ {
	print
	for (i = 3; i < NF; i += 2) { u = $(i+1); val[u, ++cnt[u]] = $i }
	next
}
/bench_sim_test.go/ && !seen++ { sub(/^ */, ""); print "  " $0 }
/^(FAIL|---.FAIL|panic)/ { print; failed = 1 }
END {
	if (!cnt["overhead-µs/host-op"]) { print "no BenchmarkSimulatedHosts result"; exit 1 }
	printf "median of %d: engine overhead %.1f µs per host-operation (target ≤ 20), CPU %.1f µs per host-operation, peak %.1f KiB per host (%.0f KiB per running host), wall %.2f s (latency floor %.2f s)\n", \
		cnt["overhead-µs/host-op"], median("overhead-µs/host-op"), median("cpu-µs/host-op"), median("peak-KiB/host"), median("peak-KiB/running-host"), median("ns/op") / 1e9, median("floor-s")
	exit failed
}
