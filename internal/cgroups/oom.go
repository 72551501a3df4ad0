package cgroups

import (
	"errors"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/errdefs"
)

// OOMKills returns how many processes the kernel's OOM killer has killed in
// the cgroup that cgroupsPath names (see Load): the oom_kill count of
// memory.oom_control on cgroup v1 (0 on kernels before 4.13, which lack
// it) or of memory.events on cgroup v2. A cgroup without the memory
// controller has 0. The count lives as long as the cgroup: read it before
// the runtime deletes the container. A missing cgroup is an error of kind
// errdefs.ErrNotFound.
func OOMKills(cgroupsPath string) (uint64, error) {
	c, err := Load(cgroupsPath)
	if err != nil {
		return 0, err
	}
	dir, file := c.v1Dir("memory"), "memory.oom_control"
	if c.isV2() {
		dir, file = c.unified, "memory.events"
	}
	if dir == "" {
		return 0, nil
	}
	f := &files{fsys: os.DirFS(dir)}
	n := f.oomKills(file)
	switch {
	case errors.Is(f.err, errdefs.ErrNotFound) && c.isV2() && existingDir(dir) != "":
		return 0, nil // the memory controller is not enabled for this cgroup
	case f.err != nil:
		return 0, fmt.Errorf("oom kills of cgroup %q: %w", cgroupsPath, f.err)
	}
	return n, nil
}
