#!/usr/bin/env bash
# Regenerates the Go code for api/**/*.proto with protoc from Debian's
# protobuf-compiler and the Go plugins pinned as tools in go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc not found: run hack/setup.sh (installs protobuf-compiler)" >&2; exit 1; }
plugins=$(mktemp -d)
trap 'rm -rf "$plugins"' EXIT
go build -o "$plugins/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
protoc -I . -I /usr/include \
	--plugin=protoc-gen-go="$plugins/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="$plugins/protoc-gen-go-grpc" \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	api/*/v1/*.proto
