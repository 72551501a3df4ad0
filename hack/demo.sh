#!/usr/bin/env bash
# The main job of the README: installs what is needed, builds berth, starts
# berthd with its default paths (unless one is already serving) and a local
# registry on 127.0.0.1:5000 (unless one answers there), pushes the busybox
# test image to it, pulls that through berthd and runs a container from it.
# berthd and the registry keep running afterwards. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (berthd owns /var/lib/berth and /run/berth)" >&2; exit 1; }
hack/setup.sh
echo "== build"
make build >/dev/null
export PATH="$PWD/bin:$PATH"
sock=/run/berth/berth.sock
stop=()
if berth --address "$sock" info >/dev/null 2>&1; then
	echo "== berthd already running on $sock"
else
	echo "== start berthd (logs: /var/log/berthd.log)"
	nohup bin/berthd >>/var/log/berthd.log 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		berth info >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || { echo "berthd exited; see /var/log/berthd.log" >&2; tail -5 /var/log/berthd.log >&2; exit 1; }
		sleep 0.1
	done
	echo "berthd pid $pid"
	stop+=("kill $pid   # berthd")
fi

registry=127.0.0.1:5000
if registry_up "$registry"; then
	echo "== registry already running on $registry"
else
	port_free 5000 || registry=127.0.0.1:$(free_port)
	dir=/var/tmp/berth-demo-registry
	echo "== start docker-registry on $registry (storage and log: $dir)"
	start_registry "$dir" "$registry"
	echo "docker-registry pid $registry_pid"
	stop+=("kill $registry_pid   # docker-registry")
fi

echo "== push the busybox test image (hack/testimage)"
read -r ref _ < <(go run ./hack/testimage -registry "$registry" busybox)
echo "$ref"
echo "== berth pull $ref"
berth pull "$ref"
echo "== berth images"
berth images
echo "== berth run --rm $ref echo ..."
berth run --rm "$ref" echo "hello from a berth container"

cat <<EOF

berth pulled $ref through the registry, unpacked it into an overlay
snapshot and ran a container from it (runc, under berth-shim, on the berth0
bridge). Online, the same is one command:
  berth run --rm docker.io/library/alpine echo hi
Try:

  export PATH=$PWD/bin:\$PATH
  berth run -it $ref sh                        # a shell; exit with Ctrl-D
  berth run -d --name web -p 127.0.0.1:8080:8080 $ref busybox httpd -f -p 8080 -h /
  curl -s 127.0.0.1:8080/ | head -3; berth ps; berth logs web; berth exec web ps
  berth stop web && berth rm web
  # the image's record, manifest and config; its root filesystem, read-only
  berth image inspect $ref
  mkdir -p /tmp/bb && berth image mount $ref /tmp/bb && ls -l /tmp/bb/bin
  berth image unmount /tmp/bb
  # pull again (everything is present), then remove the image
  berth pull $ref
  berth rmi $ref && berth system prune
  # pull speed against curl + tar (and containerd, if installed)
  make bench
EOF
if [ "${#stop[@]}" -gt 0 ]; then
	echo
	echo "Stop what this demo started with:"
	printf '  %s\n' "${stop[@]}"
fi
