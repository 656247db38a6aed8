# nsfd — make is the front door: `make run`, `make test`, `make bench`.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin
EXAMPLES    := echo http kv

.PHONY: all build run setup test vet staticcheck unit fuzz bench bench-quick clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/nsfd ./cmd/nsfd
	@for e in $(EXAMPLES); do $(GO) build -o $(BIN)/$$e ./examples/$$e || exit 1; done

# Runs the master in the foreground on the sample etc/ (^C drains and exits).
run: build
	@echo "nsfd: central log in var/log/nsfd.log; try: nc 127.0.0.1 7001"
	$(BIN)/nsfd run --etc etc

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 ./...

# What the tests need on a fresh machine (PostgreSQL for the registry tests,
# systemd-analyze for the unit check): installed when root, else named.
setup:
	@bash .ci/setup

# Every fuzz target of the module (found by name: func FuzzX in a _test.go
# file), each fuzzed for FUZZTIME: 13 targets at 2s take about 40 s in all. Their
# seeds and the corpora in testdata/fuzz/ also run with every `go test`;
# an input that fails is written to testdata/fuzz/FuzzX/ and must be
# committed with the fix.
FUZZTIME ?= 2s

fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		dir=$$(dirname $$f); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$dir $$name for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$dir; \
		done; \
	done

test: setup vet staticcheck unit fuzz

# The benchmark suite against the peers (installed from Debian's packages when
# missing): writes docs/benchmarks.md and its charts, in about 15 minutes.
bench:
	bash bench/run

# The same in about 2 minutes, written to var/bench/benchmarks.md.
bench-quick:
	bash bench/run --quick

clean:
	rm -rf $(BIN) var
