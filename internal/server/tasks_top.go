package server

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	tasksapi "github.com/berth-dev/berth/api/tasks/v1"
	"github.com/berth-dev/berth/internal/cgroups"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func statsToProto(st *cgroups.Stats) *tasksapi.Stats {
	return &tasksapi.Stats{
		Time:                  timestamppb.Now(),
		CpuUsageNs:            st.CPU.UsageNanos,
		CpuUserNs:             st.CPU.UserNanos,
		CpuSystemNs:           st.CPU.SystemNanos,
		CpuThrottledPeriods:   st.CPU.ThrottledPeriods,
		MemoryUsageBytes:      st.Memory.Usage,
		MemoryLimitBytes:      st.Memory.Limit,
		MemoryWorkingSetBytes: st.Memory.WorkingSet,
		MemoryRssBytes:        st.Memory.RSS,
		MemoryCacheBytes:      st.Memory.Cache,
		OomKills:              st.Memory.OOMKills,
		PidsCurrent:           st.Pids.Current,
		PidsLimit:             st.Pids.Limit,
		IoReadBytes:           st.IO.ReadBytes,
		IoWriteBytes:          st.IO.WriteBytes,
	}
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// readProc describes a process from /proc/PID/stat, status and cmdline.
func readProc(pid int) (*tasksapi.TopProcess, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// pid (comm) state ppid ... utime(14) stime(15) ... rss(24)
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 22 {
		return nil, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	num := func(i int) uint64 { n, _ := strconv.ParseUint(fields[i], 10, 64); return n }
	p := &tasksapi.TopProcess{
		Pid:       uint32(pid),
		State:     fields[0],
		Ppid:      uint32(num(1)),
		CpuTimeNs: (num(11) + num(12)) * (1e9 / clockTicks),
		RssBytes:  num(21) * uint64(os.Getpagesize()),
	}
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					uid, _ := strconv.ParseUint(f[0], 10, 32)
					p.Uid = uint32(uid)
				}
			}
		}
	}
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && len(cmd) > 0 {
		p.Command = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	} else {
		p.Command = "[" + string(stat[bytes.IndexByte(stat, '(')+1:end]) + "]"
	}
	return p, nil
}
