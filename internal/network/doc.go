// Package network gives containers their network through CNI: it creates
// network namespaces, runs the CNI plugins (through libcni) that attach a
// namespace to a network, and undoes both.
//
// It owns berth's bridge network: its CNI configuration (bridge with
// host-local addresses, and portmap for containers that publish ports) and
// its iptables rules, the same for every container (masquerading, FORWARD
// accepts); see docs/networking.md. It
// also attaches containers to networks of other CNI configuration
// directories (LoadNetwork), for pod sandboxes. Its state is under
// Config.StateDir:
//
//	STATEDIR/                  default /run/berth/net
//	  netns/<name>             network namespace bind mounts (NewNetNS);
//	                           netns/ is a shared mount of itself
//	  cache/results/<network>-<id>-eth0
//	                           libcni's record of each completed ADD: the
//	                           config, runtime arguments (published ports)
//	                           and result that Teardown replays as DEL
//	  pending/<id>.json        berth's record of an ADD in progress: the
//	                           config and ports, for Teardown after a crash
//	  ipam/berth/<ip>          host-local's address allocations, one file
//	                           per address holding the container id
//
// # Lifecycle
//
//	path, _ := m.NewNetNS(name)                // lo up, nothing else
//	res, _ := m.Setup(ctx, id, path, network.ModeBridge, ports)
//	...                                        // OCI spec: network namespace path
//	m.Teardown(ctx, id, path)                  // after the task exited
//	m.Close()                                  // at daemon stop
//
// id is the CNI container id: it keys the cache, the address allocation
// and the iptables comments, and must match [a-zA-Z0-9][a-zA-Z0-9_.-]*.
// Setup and Teardown are safe to call concurrently for different ids; the
// plugins lock their own shared state (host-local its data dir, iptables
// its rules).
//
// It must not know about tasks, specs or the daemon's records: callers pass
// ids and paths in and get values back. Host settings it leaves to the
// plugins, which set what they need (the bridge plugin turns on
// net.ipv4.ip_forward, portmap route_localnet on the bridge).
package network
