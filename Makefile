# star-deploy — build, test, bench, lint.
#
#   make build        bin/star-deploy
#   make test         vet, then every test with the race detector
#                     (TESTFLAGS="-run TestX -v" to narrow it down)
#   make bench        benchmarks of the runtime and the builtins
#   make lint         go vet and gofmt
#   make fuzz         (no fuzz targets yet)
#
# With CI=true, tests that would skip for a missing sshd or Docker fail.

GO        ?= go
TESTFLAGS ?=
BIN       := bin/star-deploy

.PHONY: all build test bench lint fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/star-deploy

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 $(TESTFLAGS) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./runtime/... ./builtins/...

lint:
	$(GO) vet ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then \
		echo "gofmt would change these files:"; echo "$$out"; exit 1; \
	fi

fuzz:
	@echo "fuzz: no fuzz targets yet; nothing to run"

clean:
	rm -rf bin
