# star-deploy — build, test, bench, lint.
#
#   make build        bin/star-deploy, static (CGO_ENABLED=0) as a release is: it runs
#                     on musl hosts too (--on-host) and starts about 1 ms sooner
#   make release      static binaries for linux and darwin, amd64 and arm64, in
#                     dist/ with SHA256SUMS; the version (git describe, or
#                     VERSION=v1.2.3) and the commit are stamped in
#   make test         vet, then every test with the race detector
#                     (TESTFLAGS="-run TestX -v" to narrow it down)
#   make bench        benchmarks of the runtime and the builtins, and star-deploy
#                     against the OpenSSH client on 1, 10 and 50 loopback sshd hosts
#                     (SSH_BENCH=1,10,50,200 for more), FLEET_BENCH (1000) inventory
#                     hosts on real sshd (FLEET_BENCH= to leave it out), and the engine's own
#                     overhead per host-operation on SIM_HOSTS (10000) simulated
#                     hosts × 100 operations, SIM_RUNS (3) runs and their median
#   make lint         go vet and gofmt
#   make docs         regenerate the reference in docs/ from the code
#                     (a test fails when docs/ is out of date)
#   make docs-check   regenerate docs/ and fail if that changed a committed file
#   make fuzz         run each fuzz target for FUZZTIME (default 30s); make test
#                     runs their seed corpora, and CI runs make fuzz FUZZTIME=5s
#
# With CI=true, tests that would skip for a missing sshd or Docker fail.

GO        ?= go
TESTFLAGS ?=
BIN       := bin/star-deploy
SIM_HOSTS ?= 10000
SIM_RUNS  ?= 3

.PHONY: all build release test bench lint docs docs-check fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/star-deploy

# release: one static binary per platform, dist/star-deploy-OS-ARCH, and
# dist/SHA256SUMS in the format of sha256sum (check with sha256sum -c).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

release:
	rm -rf dist && mkdir dist
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; echo "build dist/star-deploy-$$os-$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
			-ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)" \
			-o dist/star-deploy-$$os-$$arch ./cmd/star-deploy || exit 1; \
	done
	cd dist && sha256sum star-deploy-* >SHA256SUMS

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m $(TESTFLAGS) ./...

# SSH_BENCH lists the host counts of the star-deploy vs OpenSSH comparison
# (sshd on 127.0.0.2 ... 127.0.0.N+1).
SSH_BENCH ?= 1,10,50
# FLEET_BENCH is the host count of the one-controller fleet bench: ceil(N/16)
# sshd processes on 16 ports each; FLEET_PARALLEL lists the --parallel values.
FLEET_BENCH    ?= 1000
FLEET_PARALLEL ?= 1000,100

bench:
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkSimulatedHosts$$' -benchmem ./runtime/... ./builtins/... ./stdlib/...
	@echo "BenchmarkSimulatedHosts: $(SIM_HOSTS) fake hosts × 100 operations, $(SIM_RUNS) runs..."
	@out="$$(STAR_DEPLOY_SIM_HOSTS=$(SIM_HOSTS) $(GO) test -run '^$$' -bench '^BenchmarkSimulatedHosts$$' -benchtime 1x -count $(SIM_RUNS) ./runtime/)" || { echo "$$out"; exit 1; }; \
	echo "$$out" | awk -f runtime/testdata/sim_median.awk
	@echo "SSH per-command latency after connecting (target ≤ 2 ms, persistent shell) and connect + first command, loopback sshd:"
	$(GO) test -run '^$$' -bench '^(BenchmarkRunLatency|BenchmarkConnectFirstCommand)$$' -benchtime 300x -count 3 ./connectors/ssh/
	STAR_DEPLOY_STARTUP_BENCH=$${STARTUP_RUNS:-30} $(GO) test -count=1 -v -run '^TestStartupBenchmark$$' ./cmd/star-deploy/
	STAR_DEPLOY_SSH_BENCH=$(SSH_BENCH) $(GO) test -count=1 -v -timeout 30m -run '^TestSSHBenchmark$$' ./cmd/star-deploy/
	STAR_DEPLOY_FLEET_BENCH=$(FLEET_BENCH) STAR_DEPLOY_FLEET_PARALLEL=$(FLEET_PARALLEL) $(GO) test -count=1 -v -timeout 60m -run '^TestSSHFleetBenchmark$$' ./cmd/star-deploy/

lint:
	$(GO) vet ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then \
		echo "gofmt would change these files:"; echo "$$out"; exit 1; \
	fi

# docs/ holds only generated files: stale ones (a removed stdlib module) go.
docs:
	rm -f docs/*.md docs/stdlib/*.md
	COLUMNS= $(GO) run ./cmd/star-deploy docs --dir docs

# Fuzz targets: package and name, one per line of FUZZ_TARGETS.
FUZZTIME ?= 30s
FUZZ_TARGETS := ./inventory:FuzzLoadStar ./inventory:FuzzParse ./runtime:FuzzSandbox \
	./connectors/ssh:FuzzKnownHosts ./connectors/ssh:FuzzConfig \
	./connectors:FuzzRender ./cmd/star-deploy:FuzzDataFlag

docs-check: docs
	git diff --exit-code -- docs
	@test -z "$$(git status --porcelain -- docs)" || { git status --porcelain -- docs; exit 1; }

# A target whose only failure is the fuzzing engine's own "context deadline
# exceeded" (it can report that when -fuzztime ends while it handles a new
# input; no failing input is written) runs once more; any other failure
# stops make fuzz.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); rc=$$?; echo "$$out"; \
		if [ $$rc -ne 0 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input'; then \
			echo "fuzz $$pkg $$name: the engine's deadline error, again once"; \
			$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		elif [ $$rc -ne 0 ]; then exit 1; fi; \
	done

clean:
	rm -rf bin dist
