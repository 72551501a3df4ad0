# berth build entry points. Logic lives in scripts under hack/; this file only names them.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/berth-dev/berth/internal/version.Version=$(VERSION) \
            -X github.com/berth-dev/berth/internal/version.Revision=$(REVISION)
BIN      ?= bin

.PHONY: build test test-privileged e2e lint generate verify bench setup

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test:
	go test -race -count=1 ./...

test-privileged:
	BERTH_TEST_PRIVILEGED=1 go test -race -count=1 ./...

e2e:
	BERTH_TEST_PRIVILEGED=1 go test -count=1 -v ./test/e2e/...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...
	go tool staticcheck ./...

generate:
	hack/generate.sh

verify: generate
	git diff --exit-code -- api/ || { echo "generated code differs from the committed code: run make generate"; exit 1; }
	go mod tidy -diff

bench:
	hack/bench.sh

setup:
	hack/setup.sh
