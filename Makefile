# meshgate: build, lint and test. `make test` is what CI runs.
GO ?= go
STATICCHECK_VERSION := v0.8.2

.PHONY: all build build-standalone test lint cross unit deps fuzz demo generate envtest bench bench-smoke

all: build

build:
	$(GO) build -o bin/meshgate ./cmd/meshgate

# build-standalone: serve, check, route and demo only, without the Kubernetes
# client and the xDS server: a third of the binary, half the resident memory.
build-standalone:
	$(GO) build -tags standalone -o bin/meshgate-standalone ./cmd/meshgate

# test: lint, then every test with the race detector, and the allocation
# tests that need it off. It installs what it needs itself (Go modules
# through the module proxy).
test: lint cross unit

# cross: meshgate builds for the other platforms it ships for. The data
# plane's socket code is the only code that differs by platform; the
# standalone build has all of it and compiles in a fraction of the time.
CROSS_PLATFORMS := darwin/arm64 windows/amd64 linux/arm64 freebsd/amd64
cross:
	@for p in $(CROSS_PLATFORMS); do \
		echo "GOOS=$${p%/*} GOARCH=$${p#*/} go build -tags standalone ./cmd/meshgate"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -tags standalone -o /dev/null ./cmd/meshgate || exit 1; \
	done

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags standalone ./cmd/meshgate
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags standalone ./cmd/meshgate

# unit runs the Kubernetes tests against a real kube-apiserver and etcd,
# built once per machine into a version-keyed cache outside the repository
# (about 11 minutes the first time; KUBEBUILDER_ASSETS overrides it).
unit: deps
	KUBEBUILDER_ASSETS="$${KUBEBUILDER_ASSETS:-$$(hack/k8s-bins/build.sh)}" $(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'Allocations$$' ./internal/dataplane

# deps installs the Debian packages the tests use (hack/debian-deps.sh).
deps:
	@hack/debian-deps.sh

# envtest builds (or finds) the kube-apiserver and etcd of the tests and
# prints their folder.
envtest:
	@hack/k8s-bins/build.sh

# generate rewrites api/v1beta2/zz_generated.deepcopy.go, the CRDs in
# config/crd/bases and their copy in charts/meshgate/crds with controller-gen.
generate:
	hack/generate.sh

# fuzz: a short run of every fuzz target (the seed corpora also run in `make test`).
fuzz:
	$(GO) test ./internal/resource -run '^$$' -fuzz FuzzAddFile -fuzztime 30s
	$(GO) test ./internal/resource -run '^$$' -fuzz FuzzFastParse -fuzztime 30s
	$(GO) test ./internal/resource -run '^$$' -fuzz FuzzFastPathMatchesLibrary -fuzztime 30s
	$(GO) test ./internal/router -run '^$$' -fuzz 'FuzzDecide$$' -fuzztime 30s
	$(GO) test ./internal/router -run '^$$' -fuzz FuzzDecideIndexed -fuzztime 30s
	$(GO) test ./internal/dataplane -run '^$$' -fuzz FuzzH1Response -fuzztime 30s
	$(GO) test ./internal/dataplane -run '^$$' -fuzz FuzzH1ServerParse -fuzztime 30s
	$(GO) test ./internal/dataplane -run '^$$' -fuzz FuzzHeadEnd -fuzztime 30s

demo:
	$(GO) run ./cmd/meshgate demo

# bench: the side-by-side proxy benchmark (BENCHMARKS.md); not part of test.
bench:
	bench/run.sh

bench-smoke:
	bench/run.sh -smoke
