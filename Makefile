# meshgate: build, lint and test. `make test` is what CI runs.
GO ?= go
STATICCHECK_VERSION := v0.8.2

.PHONY: all build test lint unit fuzz demo

all: build

build:
	$(GO) build -o bin/meshgate ./cmd/meshgate

# test: lint, then every test with the race detector. It installs what it
# needs itself (Go modules through the module proxy).
test: lint unit

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

unit:
	$(GO) test -race -count=1 ./...

# fuzz: a short run of every fuzz target (the seed corpora also run in `make test`).
fuzz:
	$(GO) test ./internal/resource -run '^$$' -fuzz FuzzAddFile -fuzztime 30s
	$(GO) test ./internal/router -run '^$$' -fuzz FuzzDecide -fuzztime 30s

demo:
	$(GO) run ./cmd/meshgate demo
