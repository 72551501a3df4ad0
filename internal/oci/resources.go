package oci

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Resources are a container's cgroup limits. The zero value sets none. The
// runtime writes them to cgroup v1 or v2 files as the host has.
type Resources struct {
	// MemoryBytes is the memory limit (--memory); 0: none. At least 6 MiB.
	MemoryBytes int64
	// MemorySwapBytes is the limit on memory plus swap (--memory-swap);
	// 0: not set (the kernel's default), -1: unlimited swap. Needs
	// MemoryBytes, and is at least MemoryBytes.
	MemorySwapBytes int64
	// CPUs is how many CPUs' worth of time the container may use (--cpus),
	// enforced as a CFS quota per 100 ms period; 0: no quota.
	CPUs float64
	// CPUShares is the relative CPU weight (--cpu-shares), 2 to 262144;
	// 0: the default (1024).
	CPUShares uint64
	// CpusetCpus and CpusetMems are the CPUs and memory nodes the container
	// may use (--cpuset-cpus, --cpuset-mems), as lists like "0-2,4".
	CpusetCpus, CpusetMems string
	// PidsLimit is the most processes the container may have (--pids-limit);
	// 0: not set, -1: unlimited.
	PidsLimit int64
}

// cpuPeriod is the CFS period, in microseconds, that --cpus is a quota of.
const cpuPeriod = 100000

// minMemory is the smallest memory limit a container can start with.
const minMemory = 6 << 20

func (r Resources) apply(lr *specs.LinuxResources, h host) error {
	if r.MemoryBytes < 0 || (r.MemoryBytes > 0 && r.MemoryBytes < minMemory) {
		return fmt.Errorf("--memory %d: must be at least 6 MiB (%d bytes): %w", r.MemoryBytes, minMemory, errdefs.ErrInvalidArgument)
	}
	if r.MemorySwapBytes != 0 {
		switch {
		case r.MemoryBytes == 0:
			return fmt.Errorf("--memory-swap %d: needs --memory: %w", r.MemorySwapBytes, errdefs.ErrInvalidArgument)
		case r.MemorySwapBytes != -1 && r.MemorySwapBytes < r.MemoryBytes:
			return fmt.Errorf("--memory-swap %d: must be -1 or at least --memory %d: %w", r.MemorySwapBytes, r.MemoryBytes, errdefs.ErrInvalidArgument)
		}
	}
	if r.MemoryBytes > 0 {
		lr.Memory = &specs.LinuxMemory{Limit: ptr(r.MemoryBytes)}
		if r.MemorySwapBytes != 0 {
			lr.Memory.Swap = ptr(r.MemorySwapBytes)
		}
	}
	if r.CPUs != 0 || r.CPUShares != 0 || r.CpusetCpus != "" || r.CpusetMems != "" {
		lr.CPU = &specs.LinuxCPU{}
	}
	if r.CPUs != 0 {
		quota, err := cpuQuota(r.CPUs, h.cpus)
		if err != nil {
			return err
		}
		lr.CPU.Quota, lr.CPU.Period = ptr(quota), ptr(uint64(cpuPeriod))
	}
	if r.CPUShares != 0 {
		if r.CPUShares < 2 || r.CPUShares > 262144 {
			return fmt.Errorf("--cpu-shares %d: must be from 2 to 262144: %w", r.CPUShares, errdefs.ErrInvalidArgument)
		}
		lr.CPU.Shares = ptr(r.CPUShares)
	}
	if r.CpusetCpus != "" {
		if err := validateCPUList(r.CpusetCpus); err != nil {
			return fmt.Errorf("--cpuset-cpus %q: %w", r.CpusetCpus, err)
		}
		lr.CPU.Cpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		if err := validateCPUList(r.CpusetMems); err != nil {
			return fmt.Errorf("--cpuset-mems %q: %w", r.CpusetMems, err)
		}
		lr.CPU.Mems = r.CpusetMems
	}
	if r.PidsLimit < -1 {
		return fmt.Errorf("--pids-limit %d: must be positive, or -1 for unlimited: %w", r.PidsLimit, errdefs.ErrInvalidArgument)
	}
	if r.PidsLimit != 0 {
		lr.Pids = &specs.LinuxPids{Limit: ptr(r.PidsLimit)}
	}
	return nil
}

// cpuQuota converts --cpus to a CFS quota per cpuPeriod: 1.5 CPUs is 150000
// microseconds per 100000.
func cpuQuota(cpus float64, available int) (int64, error) {
	if math.IsNaN(cpus) || cpus < 0.01 || cpus > float64(available) {
		return 0, fmt.Errorf("--cpus %g: must be from 0.01 to %d, the CPUs available: %w", cpus, available, errdefs.ErrInvalidArgument)
	}
	return int64(math.Round(cpus * cpuPeriod)), nil
}

// validateCPUList checks a cpuset list: comma-separated numbers and
// ranges, like "0-2,4".
func validateCPUList(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return fmt.Errorf("%q is not a number or range: %w", item, errdefs.ErrInvalidArgument)
		}
		if isRange {
			b, err := strconv.ParseUint(hi, 10, 16)
			if err != nil || b < a {
				return fmt.Errorf("%q is not a number or range: %w", item, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

type rlimitType struct {
	name     string // as in --ulimit: "nofile"
	typ      string // as in the spec: "RLIMIT_NOFILE"
	resource int
}

// rlimitTypes maps --ulimit names to rlimit types and resources.
var rlimitTypes = []rlimitType{
	{"as", "RLIMIT_AS", unix.RLIMIT_AS},
	{"core", "RLIMIT_CORE", unix.RLIMIT_CORE},
	{"cpu", "RLIMIT_CPU", unix.RLIMIT_CPU},
	{"data", "RLIMIT_DATA", unix.RLIMIT_DATA},
	{"fsize", "RLIMIT_FSIZE", unix.RLIMIT_FSIZE},
	{"locks", "RLIMIT_LOCKS", unix.RLIMIT_LOCKS},
	{"memlock", "RLIMIT_MEMLOCK", unix.RLIMIT_MEMLOCK},
	{"msgqueue", "RLIMIT_MSGQUEUE", unix.RLIMIT_MSGQUEUE},
	{"nice", "RLIMIT_NICE", unix.RLIMIT_NICE},
	{"nofile", "RLIMIT_NOFILE", unix.RLIMIT_NOFILE},
	{"nproc", "RLIMIT_NPROC", unix.RLIMIT_NPROC},
	{"rss", "RLIMIT_RSS", unix.RLIMIT_RSS},
	{"rtprio", "RLIMIT_RTPRIO", unix.RLIMIT_RTPRIO},
	{"rttime", "RLIMIT_RTTIME", unix.RLIMIT_RTTIME},
	{"sigpending", "RLIMIT_SIGPENDING", unix.RLIMIT_SIGPENDING},
	{"stack", "RLIMIT_STACK", unix.RLIMIT_STACK},
}

// Unlimited is the rlimit value meaning no limit (RLIM_INFINITY).
const Unlimited = math.MaxUint64

// The default RLIMIT_NOFILE: soft 1024 (select(2) cannot watch higher file
// descriptors), hard 1048576 or berthd's own hard limit if lower, since
// raising a hard limit needs CAP_SYS_RESOURCE.
const (
	defaultNofileSoft = 1024
	defaultNofileHard = 1 << 20
)

// ParseUlimit parses a --ulimit value, NAME=SOFT[:HARD] (for example
// "nofile=1024:2048"), where NAME is as in Docker (nofile, nproc, core,
// memlock, stack, ...) and -1 means unlimited. Without HARD, the hard limit
// is SOFT.
func ParseUlimit(s string) (specs.POSIXRlimit, error) {
	bad := func(why string) (specs.POSIXRlimit, error) {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %q: %s: %w", s, why, errdefs.ErrInvalidArgument)
	}
	name, values, ok := strings.Cut(s, "=")
	if !ok {
		return bad("want NAME=SOFT[:HARD]")
	}
	i := slices.IndexFunc(rlimitTypes, func(r rlimitType) bool { return r.name == name })
	if i < 0 {
		return bad("unknown limit " + strconv.Quote(name))
	}
	softS, hardS, hasHard := strings.Cut(values, ":")
	if !hasHard {
		hardS = softS
	}
	parse := func(v string) (uint64, bool) {
		if v == "-1" {
			return Unlimited, true
		}
		n, err := strconv.ParseUint(v, 10, 64)
		return n, err == nil
	}
	soft, ok1 := parse(softS)
	hard, ok2 := parse(hardS)
	if !ok1 || !ok2 {
		return bad("limits must be numbers or -1")
	}
	if soft > hard {
		return bad("soft limit exceeds hard limit")
	}
	return specs.POSIXRlimit{Type: rlimitTypes[i].typ, Soft: soft, Hard: hard}, nil
}

// rlimits returns the process rlimits: the default RLIMIT_NOFILE, then
// each of ulimits, which replace a default of the same type.
func rlimits(ulimits []specs.POSIXRlimit, h host) ([]specs.POSIXRlimit, error) {
	hard := min(uint64(defaultNofileHard), h.hardLimits["RLIMIT_NOFILE"])
	out := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: min(defaultNofileSoft, hard), Hard: hard}}
	seen := map[string]bool{}
	for _, u := range ulimits {
		known := slices.ContainsFunc(rlimitTypes, func(r rlimitType) bool { return r.typ == u.Type })
		switch {
		case !known:
			return nil, fmt.Errorf("--ulimit %s: unknown limit: %w", u.Type, errdefs.ErrInvalidArgument)
		case seen[u.Type]:
			return nil, fmt.Errorf("--ulimit %s: given twice: %w", u.Type, errdefs.ErrInvalidArgument)
		case u.Soft > u.Hard:
			return nil, fmt.Errorf("--ulimit %s: soft limit %d exceeds hard limit %d: %w", u.Type, u.Soft, u.Hard, errdefs.ErrInvalidArgument)
		case u.Hard > h.hardLimits[u.Type] && !h.holds("CAP_SYS_RESOURCE"):
			return nil, fmt.Errorf("--ulimit %s: hard limit %d exceeds berthd's own hard limit %d, and raising it needs CAP_SYS_RESOURCE, which berthd lacks: %w", u.Type, u.Hard, h.hardLimits[u.Type], errdefs.ErrFailedPrecondition)
		}
		seen[u.Type] = true
		if u.Type == "RLIMIT_NOFILE" {
			out[0] = u
		} else {
			out = append(out, u)
		}
	}
	return out, nil
}

// ParseBytes parses a size such as "64m", "1.5g", "512k", "100MiB" or
// "4096" (bytes) as Docker's --memory and --tmpfs size do: the units are
// binary (k = 1024) and case-insensitive.
func ParseBytes(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(s)
	var f float64
	var err error
	if m != nil {
		f, err = strconv.ParseFloat(m[1], 64)
	}
	if m == nil || err != nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (b, k, m, g, t, p): %w", s, errdefs.ErrInvalidArgument)
	}
	if m[2] != "" {
		f *= math.Pow(1024, float64(strings.IndexByte("kmgtp", strings.ToLower(m[2])[0])+1))
	}
	if f >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large: %w", s, errdefs.ErrInvalidArgument)
	}
	return int64(f), nil
}

var sizeRE = regexp.MustCompile(`(?i)^(\d+(?:\.\d+)?) ?(?:([kmgtp])i?)?b?$`)

func ptr[T any](v T) *T { return &v }

// ApplyResources replaces the cgroup limits of spec with r's, as `berth
// update` does, keeping its device rules.
func ApplyResources(spec *specs.Spec, r Resources) error {
	h, err := probeHost()
	if err != nil {
		return err
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	lr := &specs.LinuxResources{}
	if spec.Linux.Resources != nil {
		lr.Devices = spec.Linux.Resources.Devices
	}
	if err := r.apply(lr, h); err != nil {
		return err
	}
	spec.Linux.Resources = lr
	return nil
}
