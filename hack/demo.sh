#!/usr/bin/env bash
# The main job of the README: installs what is needed, builds berth, starts
# berthd with its default paths (unless one is already serving), and shows
# the daemon working. The daemon keeps running afterwards. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (berthd owns /var/lib/berth and /run/berth)" >&2; exit 1; }
hack/setup.sh
echo "== build"
make build >/dev/null
export PATH="$PWD/bin:$PATH"
sock=/run/berth/berth.sock
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
	echo "berthd pid $pid (stop it with: kill $pid)"
fi
echo "== berth info"
berth info
echo "== berth content ingest + ls"
printf 'hello from berth\n' | berth content ingest demo-hello -
berth content ls
