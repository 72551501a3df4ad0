// Package cgroups owns reading and removing the control groups that an OCI
// runtime (runc, crun) creates for a container: resource statistics, the
// processes in a cgroup, OOM kill counts, killing everything in a cgroup and
// removing its directories. Linux only.
//
// A cgroup is named by its cgroupsPath, the OCI spec's linux.cgroupsPath as
// given to the runtime with the cgroupfs driver, for example
// "/berth/default/web". As runc does, the path is taken relative to the root
// of each hierarchy's mount point: on cgroup v1 it names one directory per
// mounted hierarchy (/sys/fs/cgroup/memory/berth/default/web, and so on, with
// co-mounted controllers such as "cpu,cpuacct" sharing one directory), on
// cgroup v2 the one directory /sys/fs/cgroup/berth/default/web.
//
// Three host layouts are handled (see Mode): Legacy (v1 hierarchies only),
// Hybrid (v1 controllers plus cgroup2, without controllers, at
// /sys/fs/cgroup/unified) and Unified (/sys/fs/cgroup is cgroup2). In the
// Hybrid layout statistics come from the v1 controllers; the cgroup2
// directory, where it exists (runc makes one), is listed, killed and removed
// with the rest. A cgroup that exists only in a cgroup2 hierarchy is read as
// cgroup v2.
//
// This package must not create cgroups or set limits: the runtime does that
// from the spec. It depends on the standard library and golang.org/x/sys
// only, because the per-container shim imports it. A missing cgroup is
// reported as errdefs.ErrNotFound.
package cgroups
