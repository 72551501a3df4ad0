#!/usr/bin/env bash
# The test command of the README and CI: installs prerequisites, then lint and
# generated-code check, unit tests, privileged tests and end-to-end tests, in
# that order. Run as root; privileged tests fail (not skip) if a prerequisite
# is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export BERTH_TEST_PRIVILEGED=1
hack/setup.sh
echo "== lint"
make lint
echo "== verify (generated code, go.mod)"
make verify
echo "== unit and privileged tests (race detector)"
go test -race -count=1 $(go list ./... | grep -v /test/e2e)
echo "== fuzzing the layer applier and decompression (briefly; seeds: the malicious-layer corpus)"
for target in FuzzApply FuzzDecompress FuzzDetectCompression; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "${BERTH_FUZZTIME:-10s}" ./internal/diff
done
echo "== end-to-end tests"
go test -count=1 -v ./test/e2e/...
