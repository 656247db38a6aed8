# nsfd — make is the front door: `make run`, `make test`, `make bench`.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin
EXAMPLES    := echo http kv

.PHONY: all build run setup test vet staticcheck unit portable e2e-portable e2e-portable-all fuzz bench bench-quick clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/nsfd ./cmd/nsfd
	@for e in $(EXAMPLES); do $(GO) build -o $(BIN)/$$e ./examples/$$e || exit 1; done

# Runs the master in the foreground on the sample etc/ (^C drains and exits).
run: build
		$(BIN)/nsfd run --etc etc

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

# bench/ is a module of its own (its plotting dependencies stay out of
# nsfd's go.mod), checked as a separate step.
staticcheck:
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...

# What must build without cgo: the worker library, the framework's client
# side, the registry (its SQLite driver says so at open time) and the
# examples; client_deps_test.go checks that a client links no SQLite. And
# the whole module, master included, for macOS and FreeBSD (built and
# vetted, tests too: the master there runs on prefork's portable backend).
PORTABLE := ./worker ./wire ./client ./registry/... ./queue ./logging ./config ./examples/...
portable:
	CGO_ENABLED=0 $(GO) build $(PORTABLE)
	CGO_ENABLED=0 $(GO) test -count=1 ./registry/sqlite
	@for os in darwin freebsd; do echo "CGO_ENABLED=0 GOOS=$$os go build/vet ./..."; \
		CGO_ENABLED=0 GOOS=$$os $(GO) build ./... || exit 1; \
		CGO_ENABLED=0 GOOS=$$os $(GO) vet ./... || exit 1; done

unit:
	$(GO) test -race -count=1 -timeout 40m ./...
	cd bench && $(GO) test -race -count=1 ./...

# prefork's tests as macOS and FreeBSD run it (the portable backend, a
# notify socket per worker), and the end-to-end tests of the workers' lives
# (start, exit, replacement, notify, user switch, drain, a killed master)
# again on the portable backend; `unit` ran the whole suite on the pump.
# The whole end-to-end suite on it: make e2e-portable E2E_PORTABLE=.
E2E_PORTABLE ?= TestEchoWorkersShareOneListener|TestKilledWorkerIsReplaced|TestCrashingDaemonGoesFatalOthersServe|TestStopKillsStubbornWorkerAndExitsZero|TestKilledMasterLeavesNoWorker|TestSystemdNotify|TestWorkersDropToDaemonUser|TestProcessSettings|TestMaxRequestsReplacesWorkersWithoutFailures|TestWatchdogReplacesSilentWorker|TestReadyTimeoutIsAFailedStart|TestChaosKillWorkers|TestChaosMasterKilled|TestSecurityKilledMasterLeavesNoWorkerOfAnotherUser|TestShutdownWhileADaemonDrains|TestLogsTailAndFollow|TestChaosLogSinkBlocked|TestPythonWorker|TestHostileNotifyFlood
e2e-portable:
	NSFD_PROCESS_BACKEND=portable NSFD_TEST_NOTIFY=per-worker $(GO) test -race -count=1 ./prefork
	NSFD_PROCESS_BACKEND=portable $(GO) test -race -count=1 -timeout 30m -run '$(E2E_PORTABLE)' ./cmd/nsfd

# The whole end-to-end suite on the portable backend (about 12 minutes; CI
# runs it after make test, .ci/run): tests of what only the Linux backend
# does skip and say why (needPump).
e2e-portable-all:
	$(MAKE) e2e-portable E2E_PORTABLE=.

# What the tests need on a fresh machine (PostgreSQL for the registry tests,
# systemd-analyze for the unit check): installed when root, else named.
setup:
	@bash .ci/setup

# Every fuzz target of the module (found by name: func FuzzX in a _test.go
# file; bench/ is a module of its own and has none), each fuzzed for
# FUZZTIME: 13 targets of 1000 inputs each take about 40 s in all. A count,
# not a duration: with -fuzztime=2s, Go 1.26's coordinator can report its own
# deadline as a failure (`context deadline exceeded`, no input written) when
# a worker is slow to stop on a loaded machine (golang/go#75804, fixed in
# Go 1.27); CI hit it. Their seeds and the corpora in testdata/fuzz/ also run
# with every `go test`; an input that fails is written to
# testdata/fuzz/FuzzX/ and must be committed with the fix.
FUZZTIME ?= 1000x

fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' --exclude-dir=bench '^func Fuzz' . | sort); do \
		dir=$$(dirname $$f); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$dir $$name for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$dir; \
		done; \
	done

test: setup vet staticcheck portable unit e2e-portable fuzz

# The benchmark suite against the peers (installed from Debian's packages when
# missing): writes docs/benchmarks.md and its charts, in about 15 minutes.
bench:
	bash bench/run

# The same in about 2 minutes, written to var/bench/benchmarks.md.
bench-quick:
	bash bench/run --quick

clean:
	rm -rf $(BIN) var
