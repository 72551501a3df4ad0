// Package oci owns turning an image config and a container's options into
// the OCI runtime spec (config.json) that runc or crun runs: the process
// (arguments, environment, user, working directory, capabilities, rlimits),
// the mounts, the namespaces, the cgroup resources, the device rules and the
// seccomp profile. It also builds the process of an exec in a running
// container (ExecProcess), and filters image labels (ImageLabels).
//
// Generate is the only place where berth's security defaults are decided;
// docs/security.md describes them and what each flag changes. In short: nine
// capabilities, no-new-privileges, a default seccomp profile (an allowlist
// whose unlisted syscalls fail with EPERM), masked and read-only /proc and
// /sys paths, a default-deny device cgroup, and private pid, ipc, uts, mount
// and cgroup namespaces.
//
// # Untrusted input
//
// The image config comes from a registry and is untrusted. Its environment,
// user, working directory, entrypoint and command are validated like flags
// are (errdefs.ErrInvalidArgument naming the field and the value). The user
// is looked up in the image's /etc/passwd and /etc/group, which are opened
// with openat2(2) RESOLVE_IN_ROOT so that a symlink in the image resolves
// inside the root filesystem and never reaches a host file. Volumes declared
// by the image (config.Volumes) are ignored: no anonymous volume is created
// and the path stays part of the container's writable root filesystem. Image
// labels in berth's own namespace (berth.io/) are dropped by ImageLabels.
//
// # Host facts
//
// A few defaults depend on the daemon's own process: capabilities that
// --privileged and --cap-add ALL give are those in berthd's bounding set,
// the default hard RLIMIT_NOFILE is capped at berthd's own hard limit, and
// --ulimit or a negative --oom-score-adj that would need CAP_SYS_RESOURCE is
// refused up front when berthd lacks it, rather than failing later inside
// the runtime.
//
// This package must not run the runtime, write bundles, mount anything or
// create cgroups: it returns the spec as data, and the runtime service uses
// it. It reads only the image's /etc/passwd and /etc/group, the host paths
// of bind mounts (to check they exist), a seccomp profile file named by
// --security-opt, /dev (for --privileged) and facts about its own process.
// Linux only.
package oci
