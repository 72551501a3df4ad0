// Package runtime runs container tasks through berth-shim: one shim per
// task, which drives the OCI runtime (runc or crun) and owns the
// container's stdio, log and exit status (see docs/shim-protocol.md).
//
// Manager creates tasks (task directory STATE/tasks/<namespace>/<id>: the
// bundle with its rootfs mounted, on the bridge a network namespace through
// internal/network, config.json and task.json), starts, signals, pauses,
// execs into and deletes them, and reports exits: the exit is recorded,
// then events and OnExit, then waiters, then the task is released in two
// steps (see Manager.Delete). Restore reconnects to the shims of a previous
// daemon after a restart; shims and containers outlive the daemon.
//
// Shims run the runtime from a sealed in-memory copy of its binary
// (sealedRuntimes), made once per binary.
//
// It knows nothing of container records or images: internal/containers
// hands it specs and mounts.
package runtime
