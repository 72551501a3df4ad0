package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// v1Mount is one cgroup v1 hierarchy as mounted.
type v1Mount struct {
	mountpoint string
	options    []string // super options: controllers, "name=..." and flags
}

// parseMountinfo returns the cgroup v1 hierarchies in a
// /proc/self/mountinfo, each once (at its first mount), in order.
func parseMountinfo(data string) []v1Mount {
	var mounts []v1Mount
	seen := map[string]bool{}
	for line := range strings.Lines(data) {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:15 - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || g[0] != "cgroup" || seen[f[2]] {
			continue
		}
		seen[f[2]] = true
		mounts = append(mounts, v1Mount{mountpoint: unescapeOctal(f[4]), options: strings.Split(g[2], ",")})
	}
	return mounts
}

// unescapeOctal undoes the \ooo escapes with which mountinfo writes space,
// tab, newline and backslash in paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Unlimited is the value of a limit that is not set: "max" in cgroup v2
// and pids.max, the largest page-aligned value in cgroup v1 memory files.
const Unlimited uint64 = math.MaxUint64

// v1NoLimit is the least value a cgroup v1 memory limit file shows when no
// limit is set: the largest int64 rounded down to the page size (pages of up
// to 64 KiB).
const v1NoLimit = math.MaxInt64 - (1<<16 - 1)

// parseUint parses a file holding one unsigned integer.
func parseUint(name, data string) (uint64, error) {
	s := strings.TrimSpace(data)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %q is not an unsigned integer: %w", name, s, errdefs.ErrInvalidArgument)
	}
	return v, nil
}

// parseLimit parses a file holding a limit: an unsigned integer or "max".
// Both "max" and the cgroup v1 no-limit values become Unlimited.
func parseLimit(name, data string) (uint64, error) {
	if strings.TrimSpace(data) == "max" {
		return Unlimited, nil
	}
	v, err := parseUint(name, data)
	if err != nil {
		return 0, err
	}
	if v >= v1NoLimit {
		return Unlimited, nil
	}
	return v, nil
}

// parseFlatKeyed calls fn for each "key value" line of a flat keyed file
// (cpu.stat, memory.stat, memory.events, memory.oom_control, cgroup.events,
// cpuacct.stat).
func parseFlatKeyed(name, data string, fn func(key string, v uint64)) error {
	for line := range strings.Lines(data) {
		key, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			if key == "" {
				continue
			}
			return fmt.Errorf("parse %s: line %q is not \"key value\": %w", name, key, errdefs.ErrInvalidArgument)
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("parse %s: key %s: %q is not an unsigned integer: %w", name, key, val, errdefs.ErrInvalidArgument)
		}
		fn(key, v)
	}
	return nil
}

// keyedValue returns the value of key in a flat keyed file, 0 if the key
// is absent (memory.oom_control has no oom_kill line before Linux 4.13).
func keyedValue(name, data, key string) (uint64, error) {
	var v uint64
	err := parseFlatKeyed(name, data, func(k string, val uint64) {
		if k == key {
			v = val
		}
	})
	return v, err
}

// parseBlkio sums the Read and Write lines of a cgroup v1
// blkio.throttle.io_service_bytes or io_serviced file over all devices:
//
//	8:0 Read 4096
//	8:0 Write 0
//	...
//	Total 4096
func parseBlkio(name, data string) (read, write uint64, err error) {
	for line := range strings.Lines(data) {
		f := strings.Fields(line)
		if len(f) != 3 || (f[1] != "Read" && f[1] != "Write") {
			continue
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s: line %q: %w", name, strings.TrimSpace(line), errdefs.ErrInvalidArgument)
		}
		if f[1] == "Read" {
			read += v
		} else {
			write += v
		}
	}
	return read, write, nil
}

// parseIOStat sums a cgroup v2 io.stat over all devices:
//
//	8:0 rbytes=90112 wbytes=0 rios=5 wios=0 dbytes=0 dios=0
func parseIOStat(data string) (IOStats, error) {
	var s IOStats
	for line := range strings.Lines(data) {
		f := strings.Fields(line)
		for _, kv := range f[min(1, len(f)):] {
			key, val, ok := strings.Cut(kv, "=")
			if !ok {
				return IOStats{}, fmt.Errorf("parse io.stat: line %q: %w", strings.TrimSpace(line), errdefs.ErrInvalidArgument)
			}
			var field *uint64
			switch key {
			case "rbytes":
				field = &s.ReadBytes
			case "wbytes":
				field = &s.WriteBytes
			case "rios":
				field = &s.ReadOps
			case "wios":
				field = &s.WriteOps
			default:
				continue
			}
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return IOStats{}, fmt.Errorf("parse io.stat: line %q: %w", strings.TrimSpace(line), errdefs.ErrInvalidArgument)
			}
			*field += v
		}
	}
	return s, nil
}
