# Floe's build entry points. `make test` is the README's test command and what CI runs.
GO ?= go
GOTESTFLAGS ?= -timeout 30m
BIN := bin/floe

.PHONY: all build test test-race test-short lint fmt vet staticcheck fuzz bench clean run

all: build

build: bin/floe-plugin-host
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/floe

# The C helper that runs fluent-bit-go .so output plugins (floe finds it next
# to its own binary; without it floe compiles the same source on first use).
CC ?= gcc
bin/floe-plugin-host: internal/goplugin/host/floe-plugin-host.c
	mkdir -p bin
	$(CC) -O2 -Wall -Wextra -o $@ $< -ldl -lpthread

run: build
	./$(BIN) -c examples/dummy-stdout.conf

# Unit, integration (embedded nats-server) and end-to-end (real floe processes) tests,
# then the packages with concurrent code again under the race detector.
test:
	$(GO) test $(GOTESTFLAGS) ./...
	$(MAKE) test-race

RACE_PKGS ?= ./internal/jsx/... ./services/... ./internal/wasmhost/... ./internal/plugins/...
test-race:
	CGO_ENABLED=1 $(GO) test -race $(GOTESTFLAGS) $(RACE_PKGS)

test-short:
	$(GO) test -short ./...

lint: vet staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	staticcheck ./...

# Run every fuzz target for FUZZTIME each (default 60s); new corpus entries land in testdata/fuzz.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeChunk -fuzztime=$(FUZZTIME) ./internal/event/
	$(GO) test -run='^$$' -fuzz=FuzzParseClassic -fuzztime=$(FUZZTIME) ./internal/config/

# Whole-pipeline suite (test/bench, docs/performance.md): builds floe, runs every scenario as whole
# processes (all-in-one and separate stages) and writes bench/results.json plus a table.
# BENCH_SCALE multiplies the event counts (0.05: a quick run); FLUENT_BIT=/path/to/fluent-bit runs the
# same scenarios through Fluent Bit for ratios; BENCH_SCENARIO=name runs only matching scenarios;
# BENCH_MICRO=1 adds the Go micro benchmarks (event, tag, WASM deadline options); BENCH_SERVICE="key value;..."
# adds [SERVICE] settings to Floe's configs.
BENCH_SCALE ?= 1
BENCH_MICRO ?= 0
bench:
	@if [ "$(BENCH_MICRO)" = 1 ]; then \
		$(GO) test -run='^$$' -bench=. -benchmem ./internal/event/ ./internal/tag/ && \
		$(GO) test -run='^$$' -bench=BenchmarkDeadline ./internal/wasmhost/; fi
	mkdir -p bench
	BENCH_SCALE=$(BENCH_SCALE) FLUENT_BIT=$(FLUENT_BIT) $(GO) run ./test/bench -out bench/results.json

clean:
	rm -rf bin bench/results.json

# Container image (deploy/Dockerfile: FROM scratch, the static binary compiled here), tagged $(IMAGE).
IMAGE ?= floe:dev
.PHONY: image docker-e2e
image:
	GO=$(GO) sh deploy/build-image.sh $(IMAGE)

# The deployment files' checks and the Docker tests (Compose, scaled filters, NATS cluster) on
# $(IMAGE); fails, rather than skips, without a Docker daemon.
docker-e2e: image
	$(GO) test -count=1 ./test/deploy/
	FLOE_REQUIRE_DOCKER=1 FLOE_IMAGE=$(IMAGE) $(GO) test -count=1 -v -run '^TestCompose' ./test/e2e/
