# Trypema-Go. The README's two commands: `make demo` and `make test`.

GO        ?= go
PKGS      := ./...
BENCHSTAT := $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0
BENCH     ?= .
BENCHCOUNT ?= 6

.PHONY: all demo test vet lint bench generate check-generated

all: test

## demo: real HTTP traffic through httplimit against each provider and strategy, ~12 s (a throwaway redis-server when installed, or REDIS_URL)
demo:
	$(GO) run ./cmd/trypema demo

## test: check the generated files, install redis-server if missing (as root), vet, and run every test with -race
test: check-generated
	./scripts/ensure-redis.sh
	$(GO) vet $(PKGS)
	TRYPEMA_REQUIRE_REDIS=1 $(GO) test -race -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

## generate: write the files generated from lua/v1/*.lua (dist scripts, functions.lua, CONTRACT.md, client/scripts_gen.go)
generate:
	$(GO) run ./gen

## check-generated: fail, listing them, when generated files are stale (fix: make generate)
check-generated:
	$(GO) run ./gen -check

## lint: gofmt, go vet and staticcheck
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(STATICCHECK) $(PKGS)

## bench: benchmark Trypema-Go beside the libraries users would pick instead (bench/, its own module;
## BENCH=regexp, BENCHCOUNT=n) against one throwaway redis-server; writes bench/results.txt and BENCHMARKS.md
bench:
	./scripts/ensure-redis.sh
	cd bench && $(GO) run ./cmd/benchreport -go '$(GO)' -bench '$(BENCH)' -count $(BENCHCOUNT) -out ../BENCHMARKS.md
