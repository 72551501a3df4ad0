package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Stats is a snapshot of a cgroup's resource use, its descendants included.
// A section whose controller the cgroup does not have is zero.
type Stats struct {
	CPU    CPUStats
	Memory MemoryStats
	Pids   PidsStats
	IO     IOStats
}

// CPUStats is CPU time consumed and CFS bandwidth throttling.
type CPUStats struct {
	UsageNanos  uint64 // total CPU time
	UserNanos   uint64 // CPU time in user mode
	SystemNanos uint64 // CPU time in kernel mode
	// Throttling, counted only while a CPU quota is set.
	Periods          uint64 // enforcement periods that have elapsed
	ThrottledPeriods uint64 // periods in which the cgroup was throttled
	ThrottledNanos   uint64 // total time throttled
}

// MemoryStats is memory use in bytes.
type MemoryStats struct {
	Usage uint64 // charged memory, page cache included (v1 memory.usage_in_bytes, v2 memory.current)
	Limit uint64 // Unlimited if no limit is set
	// WorkingSet is Usage less inactive file pages, floored at 0: what the
	// kubelet reports and evicts on.
	WorkingSet uint64
	RSS        uint64 // anonymous memory (v1 total_rss, v2 anon)
	Cache      uint64 // page cache (v1 total_cache, v2 file)
	// MaxUsage is the highest Usage seen (v1 memory.max_usage_in_bytes,
	// v2 memory.peak), 0 on cgroup v2 before Linux 5.19.
	MaxUsage uint64
	OOMKills uint64 // processes killed by the OOM killer (see OOMKills)
	Swap     uint64 // swap in use, 0 without swap accounting
}

// PidsStats is the number of tasks (processes and threads).
type PidsStats struct {
	Current uint64
	Limit   uint64 // Unlimited if no limit is set
}

// IOStats is block I/O summed over all devices. On cgroup v1 it counts
// what the throttling layer saw, descendants included where the kernel has
// the _recursive files.
type IOStats struct {
	ReadBytes  uint64
	WriteBytes uint64
	ReadOps    uint64
	WriteOps   uint64
}

// files reads the interface files of one cgroup directory and keeps the
// first error, so that a stats reader can read many files and check once.
type files struct {
	fsys fs.FS
	err  error
}

// read returns the content of the file name; a missing file is an error of
// kind errdefs.ErrNotFound (the cgroup is gone).
func (f *files) read(name string) string {
	data, ok := f.optional(name)
	if !ok && f.err == nil {
		f.err = fmt.Errorf("read %s: %w", name, errdefs.ErrNotFound)
	}
	return data
}

// optional returns the content of the file name and whether it exists,
// for files that older kernels or some configurations lack.
func (f *files) optional(name string) (string, bool) {
	if f.err != nil {
		return "", false
	}
	data, err := fs.ReadFile(f.fsys, name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.err = err
		}
		return "", false
	}
	return string(data), true
}

func (f *files) uint(name string) uint64 {
	data := f.read(name)
	if f.err != nil {
		return 0
	}
	v, err := parseUint(name, data)
	f.err = err
	return v
}

func (f *files) limit(name string) uint64 {
	data := f.read(name)
	if f.err != nil {
		return 0
	}
	v, err := parseLimit(name, data)
	f.err = err
	return v
}

// keyed calls fn for each line of the flat keyed file name.
func (f *files) keyed(name string, fn func(key string, v uint64)) {
	data := f.read(name)
	if f.err == nil {
		f.err = parseFlatKeyed(name, data, fn)
	}
}

// v1Dirs holds a cgroup's directory in each v1 hierarchy that stats read
// (cpu and cpuacct may be the same); nil where there is none.
type v1Dirs struct {
	cpu, cpuacct, memory, pids, blkio fs.FS
}

// userHZ is the unit of cpuacct.stat: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// readStatsV1 reads the statistics of a cgroup v1 cgroup.
func readStatsV1(d v1Dirs) (*Stats, error) {
	var s Stats
	var errs []error
	if d.cpuacct != nil {
		f := &files{fsys: d.cpuacct}
		s.CPU.UsageNanos = f.uint("cpuacct.usage")
		user, okUser := f.optional("cpuacct.usage_user")
		sys, okSys := f.optional("cpuacct.usage_sys")
		if okUser && okSys {
			// Linux 4.7 and later count user and system time in ns.
			s.CPU.UserNanos, f.err = parseUint("cpuacct.usage_user", user)
			if f.err == nil {
				s.CPU.SystemNanos, f.err = parseUint("cpuacct.usage_sys", sys)
			}
		} else {
			f.keyed("cpuacct.stat", func(k string, v uint64) {
				switch k {
				case "user":
					s.CPU.UserNanos = v * (1e9 / userHZ)
				case "system":
					s.CPU.SystemNanos = v * (1e9 / userHZ)
				}
			})
		}
		errs = append(errs, f.err)
	}
	if d.cpu != nil {
		f := &files{fsys: d.cpu}
		f.keyed("cpu.stat", func(k string, v uint64) {
			switch k {
			case "nr_periods":
				s.CPU.Periods = v
			case "nr_throttled":
				s.CPU.ThrottledPeriods = v
			case "throttled_time":
				s.CPU.ThrottledNanos = v
			}
		})
		errs = append(errs, f.err)
	}
	if d.memory != nil {
		f := &files{fsys: d.memory}
		m := &s.Memory
		m.Usage = f.uint("memory.usage_in_bytes")
		m.Limit = f.limit("memory.limit_in_bytes")
		m.MaxUsage = f.uint("memory.max_usage_in_bytes")
		var inactiveFile uint64
		f.keyed("memory.stat", func(k string, v uint64) {
			switch k {
			case "total_rss":
				m.RSS = v
			case "total_cache":
				m.Cache = v
			case "total_inactive_file":
				inactiveFile = v
			}
		})
		m.WorkingSet = m.Usage - min(m.Usage, inactiveFile)
		m.OOMKills = f.oomKills("memory.oom_control")
		if memsw, ok := f.optional("memory.memsw.usage_in_bytes"); ok {
			var total uint64
			total, f.err = parseUint("memory.memsw.usage_in_bytes", memsw)
			m.Swap = total - min(total, m.Usage)
		}
		errs = append(errs, f.err)
	}
	if d.pids != nil {
		f := &files{fsys: d.pids}
		s.Pids = f.pids()
		errs = append(errs, f.err)
	}
	if d.blkio != nil {
		f := &files{fsys: d.blkio}
		bytes := f.recursive("blkio.throttle.io_service_bytes")
		ops := f.recursive("blkio.throttle.io_serviced")
		if f.err == nil {
			s.IO.ReadBytes, s.IO.WriteBytes, f.err = parseBlkio("blkio.throttle.io_service_bytes", bytes)
		}
		if f.err == nil {
			s.IO.ReadOps, s.IO.WriteOps, f.err = parseBlkio("blkio.throttle.io_serviced", ops)
		}
		errs = append(errs, f.err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &s, nil
}

// recursive reads the _recursive variant of a blkio file, which counts
// descendants too (Linux 4.11 and later), or else the file itself.
func (f *files) recursive(name string) string {
	if data, ok := f.optional(name + "_recursive"); ok {
		return data
	}
	return f.read(name)
}

// pids reads pids.current and pids.max, the same in v1 and v2.
func (f *files) pids() PidsStats {
	return PidsStats{Current: f.uint("pids.current"), Limit: f.limit("pids.max")}
}

// oomKills reads the oom_kill count of memory.oom_control (v1) or
// memory.events (v2), 0 if the file has none.
func (f *files) oomKills(name string) uint64 {
	data := f.read(name)
	if f.err != nil {
		return 0
	}
	var n uint64
	n, f.err = keyedValue(name, data, "oom_kill")
	return n
}

// readStatsV2 reads the statistics of a cgroup v2 cgroup. Sections are
// read for the controllers that cgroup.controllers lists; cpu.stat's usage
// lines are there without the cpu controller too.
func readStatsV2(fsys fs.FS) (*Stats, error) {
	var s Stats
	f := &files{fsys: fsys}
	controllers := strings.Fields(f.read("cgroup.controllers"))
	f.keyed("cpu.stat", func(k string, v uint64) {
		switch k {
		case "usage_usec":
			s.CPU.UsageNanos = v * 1000
		case "user_usec":
			s.CPU.UserNanos = v * 1000
		case "system_usec":
			s.CPU.SystemNanos = v * 1000
		case "nr_periods":
			s.CPU.Periods = v
		case "nr_throttled":
			s.CPU.ThrottledPeriods = v
		case "throttled_usec":
			s.CPU.ThrottledNanos = v * 1000
		}
	})
	if slices.Contains(controllers, "memory") {
		m := &s.Memory
		m.Usage = f.uint("memory.current")
		m.Limit = f.limit("memory.max")
		if peak, ok := f.optional("memory.peak"); ok {
			m.MaxUsage, f.err = parseUint("memory.peak", peak)
		}
		var inactiveFile uint64
		f.keyed("memory.stat", func(k string, v uint64) {
			switch k {
			case "anon":
				m.RSS = v
			case "file":
				m.Cache = v
			case "inactive_file":
				inactiveFile = v
			}
		})
		m.WorkingSet = m.Usage - min(m.Usage, inactiveFile)
		m.OOMKills = f.oomKills("memory.events")
		if swap, ok := f.optional("memory.swap.current"); ok {
			m.Swap, f.err = parseUint("memory.swap.current", swap)
		}
	}
	if slices.Contains(controllers, "pids") {
		s.Pids = f.pids()
	}
	if slices.Contains(controllers, "io") {
		if data := f.read("io.stat"); f.err == nil {
			s.IO, f.err = parseIOStat(data)
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return &s, nil
}
