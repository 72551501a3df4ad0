package cgroups

import "golang.org/x/sys/unix"

// Where the host mounts its cgroup filesystems.
const (
	mountRoot    = "/sys/fs/cgroup"
	unifiedMount = "/sys/fs/cgroup/unified"
)

// Mode is the cgroup layout of the host.
type Mode int

const (
	// Legacy: only cgroup v1 hierarchies, one per controller (or group of
	// co-mounted controllers) under /sys/fs/cgroup.
	Legacy Mode = iota
	// Hybrid: cgroup v1 controllers as in Legacy, plus a cgroup2 hierarchy
	// without controllers at /sys/fs/cgroup/unified.
	Hybrid
	// Unified: /sys/fs/cgroup is cgroup2 and holds every controller.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return "unknown"
}

// DetectMode tells the host's layout from the filesystem types of
// /sys/fs/cgroup and /sys/fs/cgroup/unified.
func DetectMode() Mode {
	if isCgroup2(mountRoot) {
		return Unified
	}
	if isCgroup2(unifiedMount) {
		return Hybrid
	}
	return Legacy
}

func isCgroup2(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}
