package oci

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// host is what Generate needs to know about the machine and about berthd's
// own process. probeHost reads it; tests build it by hand.
type host struct {
	caps       []string          // capabilities in berthd's bounding set, by number
	hardLimits map[string]uint64 // berthd's hard rlimits, by type ("RLIMIT_NOFILE")
	cgroupNS   bool              // the kernel has cgroup namespaces
	cpus       int               // CPUs berthd may run on
}

func probeHost() (host, error) {
	h := host{hardLimits: map[string]uint64{}, cpus: runtime.NumCPU()}
	for i, name := range capNames {
		held, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break // the kernel knows no capability this high
		}
		if err != nil {
			return host{}, fmt.Errorf("read capability bounding set: %w", err)
		}
		if held == 1 {
			h.caps = append(h.caps, name)
		}
	}
	for _, r := range rlimitTypes {
		var l unix.Rlimit
		if err := unix.Getrlimit(r.resource, &l); err != nil {
			return host{}, fmt.Errorf("getrlimit %s: %w", r.typ, err)
		}
		h.hardLimits[r.typ] = l.Max
	}
	_, err := os.Stat("/proc/self/ns/cgroup")
	h.cgroupNS = err == nil
	return h, nil
}

func (h host) holds(capability string) bool { return slices.Contains(h.caps, capability) }
