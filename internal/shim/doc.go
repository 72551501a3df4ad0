// Package shim is the shim side of berth's tasks: the body of berth-shim, the
// process that runs one container for berthd.
//
// The shim runs the OCI runtime binary (runc or crun) to create the
// container, becomes its parent (it is a child subreaper) and stays alive
// while it runs. It owns:
//
//   - the container's stdio: pipes it makes, or the pty master the runtime
//     sends over a console socket; output goes to the CRI-format container
//     log (logfile.go) and to attach streams;
//   - reaping: one loop waits for every child, runtime invocations and
//     container processes alike (reaper_linux.go);
//   - the exit record: when the init exits, its status is written durably to
//     the task directory before anyone waiting is told;
//   - the API on a 0600 Unix socket in the task directory, described in
//     api/shim/v1 and docs/shim-protocol.md.
//
// Words: the container is what the runtime created from the bundle; its init
// is the process of config.json; exec processes are added later; "process"
// is either.
//
// The shim must not import daemon-side packages, gRPC or anything heavy: its
// memory is paid once per running container. It uses the standard library,
// x/sys/unix, api/shim/v1 and internal/log only (not internal/errdefs, which
// brings gRPC: its errors wrap api/shim/v1's sentinels), and never leaks a
// descriptor into the container (everything it opens is close-on-exec; the
// runtime gets exactly stdin, stdout and stderr).
package shim
