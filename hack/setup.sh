#!/usr/bin/env bash
# Installs the Debian packages berth's build, tests and demo need. Safe to
# re-run: it installs only what is missing. Needs root.
set -euo pipefail
packages=(
	protobuf-compiler # protoc, for make generate / verify
	libprotobuf-dev   # google/protobuf/*.proto (Timestamp) that the API imports
	ca-certificates
	curl              # bench floor and e2e helpers
	jq                # bench: reads manifests
	docker-registry   # the registry tests push to and pull from (loopback)
	busybox-static    # /bin/busybox: the root of the test images
	tar               # fidelity tests compare with GNU tar
	isal              # igzip: the fastest gzip decoder here, used for layers when present
	runc              # the default OCI runtime
	crun              # the alternative OCI runtime (--runtime crun)
	containernetworking-plugins # CNI bridge, host-local, portmap, loopback for --net bridge
	iptables          # used by the CNI bridge (ipMasq) and portmap plugins
	iproute2          # ip: network tests inspect interfaces and namespaces
	skopeo            # interop tests: images berth pushes are read by skopeo and back
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup: Go is required (https://go.dev/dl)" >&2; exit 1; }
