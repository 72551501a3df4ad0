package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// statsInterval is the time between two samples of stats.
const statsInterval = time.Second

func newStatsCommand(a *app) *cobra.Command {
	var noStream, all bool
	cmd := &cobra.Command{
		Use:   "stats [CONTAINER...]",
		Short: "Show containers' resource usage, refreshed every second",
		Long: `Show the resource usage of the given containers, or of every running one
(every one with --all), refreshed every second until interrupted; with
--no-stream print one table and return.

CPU % is the CPU time used over the last interval, per cent of one CPU (up
to 100% times the number of CPUs). MEM USAGE is the working set; LIMIT is
the memory limit, or the host's memory when there is none.`,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			clear := isTerminal(w) && !noStream
			hostMem := hostMemory()
			prev, err := sampleStats(ctx, a.client, args, all)
			for err == nil {
				if !sleep(ctx, statsInterval) {
					return nil
				}
				var cur []statsSample
				if cur, err = sampleStats(ctx, a.client, args, all); err != nil {
					break
				}
				if clear {
					fmt.Fprint(w, "\x1b[2J\x1b[H")
				}
				if err = printStats(w, prev, cur, hostMem); err != nil || noStream {
					break
				}
				prev = cur
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one table and return")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show every container, not only running ones")
	return cmd
}

// statsSample is one container's stats at one time; ok is false when it
// has no running task.
type statsSample struct {
	ct    client.Container
	stats client.Stats
	ok    bool
}

// sampleStats samples the named containers, or the listed ones.
func sampleStats(ctx context.Context, c *client.Client, ids []string, all bool) ([]statsSample, error) {
	var cts []client.Container
	if len(ids) == 0 {
		list, err := c.ListContainers(ctx)
		if err != nil {
			return nil, err
		}
		for _, ct := range list {
			if all || isUp(ct.Status) {
				cts = append(cts, ct)
			}
		}
	}
	for _, id := range ids {
		ct, err := c.GetContainer(ctx, id)
		if err != nil {
			return nil, err
		}
		cts = append(cts, ct)
	}
	out := make([]statsSample, 0, len(cts))
	for _, ct := range cts {
		s := statsSample{ct: ct}
		if isUp(ct.Status) {
			st, err := c.TaskStats(ctx, ct.ID)
			if err := ignoreGone(err); err != nil {
				return nil, err
			}
			s.stats, s.ok = st, err == nil
		}
		out = append(out, s)
	}
	return out, nil
}

func printStats(w io.Writer, prev, cur []statsSample, hostMem uint64) error {
	before := make(map[string]statsSample, len(prev))
	for _, s := range prev {
		before[s.ct.ID] = s
	}
	rows := make([][]string, 0, len(cur))
	for _, s := range cur {
		rows = append(rows, statsRow(before[s.ct.ID], s, hostMem))
	}
	return printTable(w, []string{"container id", "name", "cpu %", "mem usage / limit", "mem %", "pids", "block i/o"}, rows)
}

// statsRow renders a container's usage; the CPU column needs an earlier
// sample of the same task.
func statsRow(prev, cur statsSample, hostMem uint64) []string {
	row := []string{shortID(cur.ct.ID), cur.ct.Name}
	if !cur.ok {
		return append(row, "--", "-- / --", "--", "--", "-- / --")
	}
	s := cur.stats
	cpu := "--"
	if prev.ok {
		cpu = fmt.Sprintf("%.2f%%", cpuPercent(prev.stats, s))
	}
	usage, limit := memoryUsage(s), memoryLimit(s, hostMem)
	mem := "--"
	if limit > 0 {
		mem = fmt.Sprintf("%.2f%%", 100*float64(usage)/float64(limit))
	}
	return append(row, cpu,
		humanSize(int64(usage))+" / "+humanSize(int64(limit)), mem,
		strconv.FormatUint(s.PidsCurrent, 10),
		humanSize(int64(s.IOReadBytes))+" / "+humanSize(int64(s.IOWriteBytes)))
}

// cpuPercent is the CPU time used between two samples per cent of the wall
// time between them; 0 when the samples do not follow each other (a new
// task restarts the counter).
func cpuPercent(prev, cur client.Stats) float64 {
	wall := cur.Time.Sub(prev.Time)
	used := cur.CPUUsage - prev.CPUUsage
	if wall <= 0 || used < 0 {
		return 0
	}
	return 100 * float64(used) / float64(wall)
}

// memoryUsage is the working set when the daemon reports it (usage less
// inactive page cache, as docker shows), else the usage.
func memoryUsage(s client.Stats) uint64 {
	if s.MemoryWorkingSet > 0 {
		return s.MemoryWorkingSet
	}
	return s.MemoryUsage
}

// memoryLimit is the task's memory limit, or the host's memory when the
// task has none (cgroups report none as 0 or a huge number).
func memoryLimit(s client.Stats, hostMem uint64) uint64 {
	if s.MemoryLimit == 0 || (hostMem > 0 && s.MemoryLimit > hostMem) {
		return hostMem
	}
	return s.MemoryLimit
}

// hostMemory is the host's RAM in bytes, 0 if unknown.
func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
