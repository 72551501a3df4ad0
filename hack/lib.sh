# Shell functions shared by hack/bench.sh and hack/demo.sh. Source it; it
# runs nothing by itself.

# registry_up ADDR succeeds when a registry answers /v2/ on ADDR (host:port).
registry_up() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1/v2/") || true
	[ "$code" = 200 ] || [ "$code" = 401 ]
}

# port_free PORT succeeds when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a loopback TCP port nothing listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		port_free "$p" && { echo "$p"; return; }
	done
}

# start_registry DIR ADDR starts Debian's docker-registry serving ADDR
# (127.0.0.1:PORT) with its storage, config and log in DIR, waits until it
# answers and sets registry_pid. Like internal/testutil.StartRegistry.
start_registry() {
	local dir=$1 addr=$2
	mkdir -p "$dir"
	cat >"$dir/config.yml" <<-EOF
		version: 0.1
		log:
		  level: warn
		storage:
		  filesystem:
		    rootdirectory: $dir/data
		  delete:
		    enabled: true
		http:
		  addr: $addr
	EOF
	nohup docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
	registry_pid=$!
	for _ in $(seq 150); do
		registry_up "$addr" && return
		kill -0 "$registry_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "docker-registry did not start on $addr; see $dir/registry.log:" >&2
	tail -5 "$dir/registry.log" >&2
	return 1
}
