# Container rows of hack/bench.sh, which sources this file: it uses that
# script's helpers (median, since, calc, row, berth, ctr, containerd_start)
# and variables (work, registry, have_ctr).

# percentile P VALUES... prints the P-th percentile (nearest rank).
percentile() {
	local p=$1
	shift
	printf '%s\n' "$@" | sort -g | awk -v p="$p" '{a[NR]=$1} END {i=int((p*NR+99)/100); if (i<1) i=1; print a[i]}'
}

# rss_kb PID prints a process's RSS; smaps KEY PID a field of smaps_rollup.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
smaps() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$2/smaps_rollup"; }

run_runs=${BENCH_RUN_RUNS:-30}
echo "== push the busybox test image"
read -r bb_ref _ < <("$work/bin/testimage" -registry "$registry" busybox)
berth pull -q "$bb_ref" >/dev/null

# The bundle runc and crun run: berth's own spec for the image, with the
# image's files copied into the bundle.
bundle=$work/bundle
mkdir -p "$bundle/rootfs" "$work/imgroot"
berth image mount "$bb_ref" "$work/imgroot" >/dev/null
cp -a "$work/imgroot/." "$bundle/rootfs/"
berth image unmount "$work/imgroot" >/dev/null
berth create --net none --name bench-spec "$bb_ref" true >/dev/null
# Each runtime container gets the default cgroup path, /<id>.
berth inspect bench-spec | jq --arg root "$bundle/rootfs" '.[0].spec | .root.path = $root |
	.process.terminal = false | del(.linux.cgroupsPath)' >"$bundle/config.json"
sleeper=$work/bundle-sleep
mkdir -p "$sleeper"
jq '.process.args = ["sleep", "3600"]' "$bundle/config.json" >"$sleeper/config.json"
runc_root=$work/state/runc-floor # tmpfs, like /run/runc

# floor_run RUNTIME ID: one foreground run of the bundle.
floor_run() { "$1" --root "$runc_root" run --bundle "$bundle" "$2" </dev/null >/dev/null 2>&1; }

berth_run=() berth_run_bridge=() runc_run=() berth_crun=() crun_run=() ctr_run=()
for i in $(seq "$run_runs"); do
	timed berth_run berth run --rm --net none "$bb_ref" true
	timed runc_run floor_run runc "bench-$i"
	timed berth_crun berth run --rm --net none --runtime crun "$bb_ref" true
done
for i in $(seq 10); do timed berth_run_bridge berth run --rm "$bb_ref" true; done
# crun 1.8 refuses this hybrid cgroup layout unless the cgroup2 mount is
# hidden: time it inside one mount namespace that has it unmounted.
if command -v crun >/dev/null; then
	mapfile -t crun_run < <(unshare -m --propagation private bash -c '
		[ -d /sys/fs/cgroup/unified ] && umount -l /sys/fs/cgroup/unified
		for i in $(seq '"$run_runs"'); do
			s=$EPOCHREALTIME
			crun --root '"$runc_root"' run --bundle '"$bundle"' crun-$i </dev/null >/dev/null 2>&1
			awk -v s="$s" -v e="$EPOCHREALTIME" "BEGIN {printf \"%.6f\n\", e - s}"
		done')
fi
if [ -n "$have_ctr" ]; then
	containerd_start
	ctr image pull --plain-http "$bb_ref" >/dev/null
	ctr run --rm "$bb_ref" ctr-warm true >/dev/null 2>&1 || true
	for i in $(seq "$run_runs"); do timed ctr_run ctr run --rm "$bb_ref" "ctr-$i" true; done
	containerd_stop
fi

# 50 detached, one after another.
start=$EPOCHREALTIME
for i in $(seq 50); do berth run -d --net none "$bb_ref" sleep 3600 >/dev/null; done
berth_50=$(since "$start")
start=$EPOCHREALTIME
for i in $(seq 50); do runc --root "$runc_root" run -d --bundle "$sleeper" "bg-$i" </dev/null >/dev/null 2>&1; done
runc_50=$(since "$start")
for i in $(seq 50); do runc --root "$runc_root" delete -f "bg-$i" >/dev/null 2>&1; done
berth rm bench-spec >/dev/null

# Shim memory with 50 containers running.
rss=() pss=() uss=()
for f in "$work"/state/tasks/default/*/shim.pid; do
	p=$(cat "$f")
	rss+=("$(smaps Rss "$p")") pss+=("$(smaps Pss "$p")")
	uss+=("$(( $(smaps Private_Clean "$p") + $(smaps Private_Dirty "$p") ))")
done
shim_rss=$(median "${rss[@]}") shim_pss=$(median "${pss[@]}") shim_uss=$(median "${uss[@]}")
berth rm -f $(berth ps -q) >/dev/null
sleep 1
berthd_idle=$(rss_kb "$berthd_pid")

# 100 at once, on the bridge network.
start=$EPOCHREALTIME
seq 100 | xargs -P 100 -I{} "$work/bin/berth" --address "$work/state/berth.sock" run -d "$bb_ref" sleep 3600 >/dev/null
starts_s=$(since "$start")
started=$(berth ps -q | wc -l)
berthd_100=$(rss_kb "$berthd_pid")

# berthd SIGKILLed with 100 running, restarted: until every task answers.
kill -9 "$berthd_pid"
wait "$berthd_pid" 2>/dev/null || true
start=$EPOCHREALTIME
"$work/bin/berthd" --config "$work/berthd.toml" --root "$work/root" --state "$work/state" \
	--address "$work/state/berth.sock" --log-level warn 2>>"$work/berthd.log" &
berthd_pid=$!
until [ "$(berth ps -q 2>/dev/null | wc -l)" -ge "$started" ]; do sleep 0.01; done
restart_s=$(since "$start")
berth rm -f $(berth ps -aq) >/dev/null

report_containers() {
	local b r
	echo
	printf '%-34s %9s %9s %8s %9s\n' "containers (runs: $run_runs)" "berth" "floor" "ratio" "target"
	for q in 50 99; do
		b=$(percentile "$q" "${berth_run[@]}") r=$(percentile "$q" "${runc_run[@]}")
		row "run --rm true p$q vs runc run" "$(printf '%.0fms' "$(calc "$b*1000")")" "$(printf '%.0fms' "$(calc "$r*1000")")" \
			"$(printf '%.2fx' "$(calc "$b / $r")")" "<=1.20x" "$b / $r <= 1.20"
	done
	b=$(percentile 50 "${berth_run_bridge[@]}")
	row "  same, bridge network (p50)" "$(printf '%.0fms' "$(calc "$b*1000")")" "" "" "" "1"
	if [ "${#crun_run[@]}" -gt 0 ]; then
		b=$(percentile 50 "${berth_crun[@]}") r=$(percentile 50 "${crun_run[@]}")
		row "run --rm --runtime crun vs crun" "$(printf '%.0fms' "$(calc "$b*1000")")" "$(printf '%.0fms' "$(calc "$r*1000")")" \
			"$(printf '%.2fx' "$(calc "$b / $r")")" "<=1.50x" "$b / $r <= 1.50"
	fi
	if [ "${#ctr_run[@]}" -gt 0 ]; then
		b=$(percentile 50 "${berth_run[@]}") r=$(percentile 50 "${ctr_run[@]}")
		row "run --rm vs ctr run --rm (ctr/b)" "$(printf '%.0fms' "$(calc "$b*1000")")" "$(printf 'ctr %.0fms' "$(calc "$r*1000")")" \
			"$(printf '%.2fx' "$(calc "$r / $b")")" ">=3.00x" "$r / $b >= 3"
	fi
	row "50 run -d in a row vs runc run -d" "$(printf '%.2fs' "$berth_50")" "$(printf '%.2fs' "$runc_50")" \
		"$(printf '%.2fx' "$(calc "$berth_50 / $runc_50")")" "<=1.30x" "$berth_50 / $runc_50 <= 1.30"
	row "shim RSS per container" "$(printf '%.1fMiB' "$(calc "$shim_rss/1024")")" "" "" "<=6MiB" "$shim_rss <= 6144"
	row "shim PSS per container" "$(printf '%.1fMiB' "$(calc "$shim_pss/1024")")" "" "" "<=2MiB" "$shim_pss <= 2048"
	row "shim USS per container" "$(printf '%.1fMiB' "$(calc "$shim_uss/1024")")" "" "" "" "1"
	row "berthd RSS idle" "$(printf '%.1fMiB' "$(calc "$berthd_idle/1024")")" "" "" "<=30MiB" "$berthd_idle <= 30720"
	row "berthd RSS, 100 running" "$(printf '%.1fMiB' "$(calc "$berthd_100/1024")")" "" "" "<=60MiB" "$berthd_100 <= 61440"
	row "100 concurrent run -d (bridge)" "$(printf '%.1f/s' "$(calc "$started/$starts_s")")" "" "" ">=20/s" "$started == 100 && $started/$starts_s >= 20"
	row "berthd restart, 100 running" "$(printf '%.0fms' "$(calc "$restart_s*1000")")" "" "" "<=1000ms" "$restart_s <= 1"
	echo "run floor: runc run of berth's spec with the image's files copied into the bundle; crun likewise"
	[ "${#ctr_run[@]}" -gt 0 ] || echo "ctr: not installed (apt-get install containerd to compare)"
}
