#!/usr/bin/env bash
# berth's bench: measures berth against a floor on the same machine in one
# run and prints the ratios. Disk timings swing from minute to minute on
# shared machines: compare only figures from the same run.
#
# Rows:
#   ingest+commit of a 1 GiB blob through the API  vs  cat FILE | sha256sum
#
# Environment: BENCH_SIZE_MIB (default 1024), BENCH_RUNS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${BENCH_SIZE_MIB:-1024}
runs=${BENCH_RUNS:-5}
work=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

make build BIN="$work/bin" >/dev/null
berth() { "$work/bin/berth" --address "$work/state/berth.sock" "$@"; }
"$work/bin/berthd" --root "$work/root" --state "$work/state" --address "$work/state/berth.sock" --log-level warn 2>"$work/berthd.log" &
pid=$!
for _ in $(seq 100); do berth info >/dev/null 2>&1 && break; sleep 0.1; done

blob="$work/blob"
head -c "$((size_mib << 20))" /dev/urandom >"$blob"
cat "$blob" >/dev/null # warm the page cache for both sides

now() { date +%s.%N; }
# median prints the median of its arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

floor=() berth_t=()
for i in $(seq "$runs"); do
	s=$(now); cat "$blob" | sha256sum >/dev/null; e=$(now)
	floor+=("$(awk "BEGIN{print $e - $s}")")
	s=$(now); dgst=$(berth content ingest "bench-$i" "$blob"); e=$(now)
	berth_t+=("$(awk "BEGIN{print $e - $s}")")
	berth content rm "$dgst" >/dev/null
	berth system prune >/dev/null
done
f=$(median "${floor[@]}") b=$(median "${berth_t[@]}")
printf '\n%-44s %10s %10s %8s %8s\n' "bench (median of $runs)" "berth s" "floor s" "ratio" "target"
printf '%-44s %10.3f %10.3f %7.2fx %8s\n' "ingest+commit ${size_mib} MiB via API" "$b" "$f" "$(awk "BEGIN{print $b / $f}")" "<=1.30x"
printf '  floor: cat FILE | sha256sum\n'
