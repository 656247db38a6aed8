# nsfd — make is the front door: `make run`, `make test`, `make bench`.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin
EXAMPLES    := echo http kv

.PHONY: all build run setup test vet staticcheck unit bench bench-quick clean

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

test: setup vet staticcheck unit

# The benchmark suite against the peers (installed from Debian's packages when
# missing): writes docs/benchmarks.md and its charts, in about 15 minutes.
bench:
	bash bench/run

# The same in about 2 minutes, written to var/bench/benchmarks.md.
bench-quick:
	bash bench/run --quick

clean:
	rm -rf $(BIN) var
