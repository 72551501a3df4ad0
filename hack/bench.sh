#!/usr/bin/env bash
# berth's bench: measures berth against a floor on the same machine in one
# run and prints the ratios. Disk timings swing from minute to minute on
# shared machines: compare only figures from the same run.
#
# Rows:
#   ingest+commit of a 1 GiB blob through the API  vs  cat FILE | sha256sum
# and, for the multilayer and smallfiles test images (hack/testimage) on a
# loopback docker-registry, every berth pull cold (rmi + system prune before):
#   fetch    berth pull --all-platforms IMAGE:fetch, an index of IMAGE for a
#            foreign platform and of a stub image (pulled beforehand) for this
#            one, so that berth fetches IMAGE and unpacks nothing  vs  curl of
#            the manifest, then of all blobs in parallel
#   pull     berth pull IMAGE  vs  the same curls of the layers, then tar -xzf
#            of each layer in order into an empty directory, then sync
#   ctr      berth pull IMAGE  vs  ctr image pull (containerd on a temporary
#            root), when Debian's containerd is installed
#   re-pull  berth pull IMAGE when the image is present
# and, for containers of the busybox test image (BENCH_RUN_RUNS runs each):
#   run      berth run --rm --net none IMG true  vs  runc run of the same
#            bundle (berth's spec, a copy of the image's rootfs); with
#            --runtime crun vs crun run (in a mount namespace without the
#            cgroup2 mount, which crun 1.8 needs on this hybrid host); and vs
#            ctr run --rm of Debian's containerd on the same image
#   run -d   50 containers started one after another, detached, vs runc run -d
#   memory   shim RSS/PSS/USS per running container; berthd RSS idle and with
#            100 running containers
#   starts   100 berth run -d at once (bridge network): starts per second
#   restart  berthd SIGKILLed with 100 running containers: time until its API
#            answers and lists every task running again
#
# Environment: BENCH_SIZE_MIB (default 1024), BENCH_RUNS (default 5) for the
# ingest row; BENCH_PULL_RUNS (default 3) for the image rows; BENCH_DIR
# (default /var/tmp), the file system berth's root and the floors write to
# (berthd's --state and the floor runtimes' --root are on a tmpfs mounted
# there, as /run is on standard hosts);
# BENCH_RUN_RUNS (default 30) for the run rows; BENCH_ONLY=containers skips
# the ingest and image rows.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
. hack/lib.sh

# ---- helpers

# median prints the median of its arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# since START prints the seconds elapsed since START, an $EPOCHREALTIME.
since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN {printf "%.6f", e - s}'; }

# timed ARRAY CMD... runs CMD, output discarded, and appends its wall time
# in seconds to ARRAY.
timed() {
	local -n timed_into=$1
	shift
	local start=$EPOCHREALTIME
	"$@" >/dev/null
	timed_into+=("$(since "$start")")
}

# hash_file FILE: the ingest floor.
hash_file() { cat "$1" | sha256sum; }

# settle flushes what the previous step wrote, so that the next one does not
# pay for it.
settle() { sync; }

# calc EXPR prints the value of an awk expression.
calc() { awk "BEGIN {print ($1)}"; }

# row NAME BERTH_S OTHER_S RATIO TARGET OK prints one line of the table.
row() {
	local verdict=MISS
	[ "$(calc "$6")" = 1 ] && verdict=ok
	printf '%-34s %9s %9s %8s %9s  %s\n' "$1" "$2" "$3" "$4" "$5" "$verdict"
}

# url REF [KIND DIGEST] prints the registry URL of REF's manifest, or of a
# blob (KIND blobs) of its repository. REF is HOST:PORT/REPO:TAG.
url() {
	local host=${1%%/*} path=${1#*/}
	if [ $# -eq 1 ]; then
		echo "http://$host/v2/${path%:*}/manifests/${path##*:}"
	else
		echo "http://$host/v2/${path%:*}/$2/$3"
	fi
}

# digests REF FILTER prints the digests jq FILTER picks from REF's manifest.
digests() {
	curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' "$(url "$1")" | jq -r "$2"
}

# fetch REF DIR DIGEST... downloads the blobs into DIR, all in parallel.
fetch() {
	local ref=$1 dir=$2 args=() d
	shift 2
	mkdir -p "$dir"
	for d; do args+=(-o "$dir/${d#sha256:}" "$(url "$ref" blobs "$d")"); done
	curl -fsS --no-progress-meter --parallel --parallel-max 64 "${args[@]}"
}

# floor_fetch REF DIR: the fetch floor.
floor_fetch() { fetch "$1" "$2" $(digests "$1" '.config.digest, .layers[].digest'); }

# floor_pull REF DIR: the pull floor (layers unpacked into DIR/rootfs).
floor_pull() {
	local layers=($(digests "$1" '.layers[].digest')) d
	fetch "$1" "$2" "${layers[@]}"
	mkdir "$2/rootfs"
	for d in "${layers[@]}"; do tar -xzf "$2/${d#sha256:}" -C "$2/rootfs"; done
	sync
}

# berth runs the CLI against the bench's daemon.
berth() { "$work/bin/berth" --address "$work/state/berth.sock" "$@"; }

# forget REF removes the image and everything only it used.
forget() { berth rmi "$1" >/dev/null && berth system prune >/dev/null; }

# ctr runs containerd's CLI against the bench's containerd.
ctr() { command ctr --address "$work/containerd/containerd.sock" -n bench "$@"; }

# containerd_start starts containerd with an empty root and state.
containerd_start() {
	local dir=$work/containerd
	mkdir -p "$dir"
	cat >"$dir/config.toml" <<-EOF
		version = 2
		root = "$dir/root"
		state = "$dir/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri"]
		[grpc]
		  address = "$dir/containerd.sock"
	EOF
	containerd --config "$dir/config.toml" >"$dir/log" 2>&1 &
	containerd_pid=$!
	for _ in $(seq 100); do ctr version >/dev/null 2>&1 && return; sleep 0.1; done
	echo "containerd did not start; see $dir/log" >&2
	return 1
}

# containerd_stop stops it and removes its root.
containerd_stop() {
	kill "$containerd_pid" && wait "$containerd_pid" || true
	containerd_pid=
	rm -rf "$work/containerd"
}

# ---- setup

size_mib=${BENCH_SIZE_MIB:-1024}
only=${BENCH_ONLY:-}
runs=${BENCH_RUNS:-5}
pull_runs=${BENCH_PULL_RUNS:-3}
for bin in docker-registry curl jq tar; do
	command -v "$bin" >/dev/null || { echo "bench: $bin not found: run hack/setup.sh" >&2; exit 1; }
done
have_ctr=
type -P ctr containerd >/dev/null && have_ctr=1
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (berthd mounts overlayfs)" >&2; exit 1; }

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/berth-bench.XXXXXX")
berthd_pid= registry_pid= containerd_pid=
cleanup() {
	local p
	for p in "$containerd_pid" "$berthd_pid" "$registry_pid"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	umount -l "$work/state/net/netns" 2>/dev/null || true # berthd's netns directory mount
	umount -l "$work/state" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
# Runtime state on tmpfs, as /run is on standard hosts: berthd's --state and
# the floor runtimes' --root alike.
mkdir -m 0711 "$work/state"
mount -t tmpfs -o mode=0711 berth-bench-state "$work/state"

make build BIN="$work/bin" >/dev/null
go build -o "$work/bin/" ./hack/testimage
printf 'version = 1\n' >"$work/berthd.toml" # the defaults, whatever /etc/berth/config.toml says
"$work/bin/berthd" --config "$work/berthd.toml" --root "$work/root" --state "$work/state" \
	--address "$work/state/berth.sock" --log-level warn 2>"$work/berthd.log" &
berthd_pid=$!
for _ in $(seq 100); do berth info >/dev/null 2>&1 && break; sleep 0.1; done

registry=127.0.0.1:$(free_port)
start_registry "$work/registry" "$registry"
if [ -z "$only" ]; then
	echo "== push test images to $registry"
	"$work/bin/testimage" -registry "$registry" -fetch-index multilayer smallfiles
	for image in multilayer smallfiles; do berth pull -q "$registry/$image:fetch-stub" >/dev/null; done
fi

# ---- ingest

if [ -z "$only" ]; then
blob="$work/blob"
head -c "$((size_mib << 20))" /dev/urandom >"$blob"
cat "$blob" >/dev/null # warm the page cache for both sides
floor=() berth_t=()
for i in $(seq "$runs"); do
	timed floor hash_file "$blob"
	start=$EPOCHREALTIME
	dgst=$(berth content ingest "bench-$i" "$blob")
	berth_t+=("$(since "$start")")
	berth content rm "$dgst" >/dev/null
	berth system prune >/dev/null
done
rm "$blob"
ingest_b=$(median "${berth_t[@]}") ingest_f=$(median "${floor[@]}")

# ---- images

declare -A res
for image in multilayer smallfiles; do
	ref=$registry/$image:latest
	fetch_floor=() fetch_berth=() pull_floor=() pull_berth=() repull=() pull_ctr=()
	for i in $(seq "$pull_runs"); do
		settle; timed fetch_floor floor_fetch "$ref" "$work/floor"
		rm -rf "$work/floor"
		settle; timed fetch_berth berth pull -q --all-platforms "$registry/$image:fetch"
		forget "$registry/$image:fetch"
		settle; timed pull_floor floor_pull "$ref" "$work/floor"
		[ "$i" -gt 1 ] || res[$image.size]=$(du -sm "$work/floor/rootfs" | cut -f1)
		rm -rf "$work/floor"
		settle; timed pull_berth berth pull -q "$ref"
		timed repull berth pull -q "$ref"
		forget "$ref"
		ctr_run=
		if [ -n "$have_ctr" ]; then
			containerd_start
			settle; timed pull_ctr ctr image pull --plain-http "$ref"
			containerd_stop
			ctr_run=" ctr ${pull_ctr[-1]}"
		fi
		echo "== $image run $i of $pull_runs (s): fetch berth ${fetch_berth[-1]} floor ${fetch_floor[-1]};" \
			"pull berth ${pull_berth[-1]} floor ${pull_floor[-1]}$ctr_run; re-pull ${repull[-1]}"
	done
	res[$image.layers]=$(digests "$ref" '.layers | length')
	res[$image.gz]=$(digests "$ref" '[.layers[].size] | add / 1048576 | floor')
	res[$image.fetch_floor]=$(median "${fetch_floor[@]}") res[$image.fetch_berth]=$(median "${fetch_berth[@]}")
	res[$image.pull_floor]=$(median "${pull_floor[@]}") res[$image.pull_berth]=$(median "${pull_berth[@]}")
	res[$image.repull]=$(median "${repull[@]}")
	[ -z "$have_ctr" ] || res[$image.pull_ctr]=$(median "${pull_ctr[@]}")
done
fi

. hack/bench_containers.sh

# ---- report

if [ -z "$only" ]; then
berth_gzip="in-process (klauspost)" ctr_gzip="in-process"
command -v igzip >/dev/null && berth_gzip="igzip (isal)"
command -v unpigz >/dev/null && ctr_gzip="unpigz"
echo
printf '%-34s %9s %9s %8s %9s\n' "bench (median of $runs; images $pull_runs)" "berth" "floor" "ratio" "target"
row "ingest+commit $size_mib MiB via API" "$(printf '%.3fs' "$ingest_b")" "$(printf '%.3fs' "$ingest_f")" \
	"$(printf '%.2fx' "$(calc "$ingest_b / $ingest_f")")" "<=1.30x" "$ingest_b / $ingest_f <= 1.30"
for image in multilayer smallfiles; do
	echo "$image: ${res[$image.layers]} gzip layers, ${res[$image.gz]} MiB compressed, ${res[$image.size]} MiB unpacked"
	for r in fetch pull; do
		b=${res[$image.${r}_berth]} f=${res[$image.${r}_floor]} target=1.20
		[ "$r" = fetch ] && target=1.50
		row "  $r" "$(printf '%.3fs' "$b")" "$(printf '%.3fs' "$f")" \
			"$(printf '%.2fx' "$(calc "$b / $f")")" "<=${target}x" "$b / $f <= $target"
	done
	b=${res[$image.pull_berth]}
	if [ -n "$have_ctr" ]; then
		c=${res[$image.pull_ctr]}
		row "  pull vs ctr (ctr/berth)" "$(printf '%.3fs' "$b")" "$(printf 'ctr %.3fs' "$c")" \
			"$(printf '%.2fx' "$(calc "$c / $b")")" ">=1.50x" "$c / $b >= 1.5"
	fi
	r=${res[$image.repull]}
	row "  re-pull" "$(printf '%.0fms' "$(calc "$r * 1000")")" "" "" "<=50ms" "$r <= 0.050"
done
echo
echo "fetch floor: curl of the manifest, then of the config and layers in parallel (curl --parallel)"
echo "pull floor:  the same curls of the layers, tar -xzf of each (gzip) in order into an empty directory, sync"
echo "gzip: berth $berth_gzip, ctr $ctr_gzip; file system: $(findmnt -no FSTYPE,OPTIONS -T "$work")"
[ -n "$have_ctr" ] || echo "ctr: not installed (apt-get install containerd to compare)"
fi
report_containers
