package main

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/google/go-cmp/cmp"
)

func TestCPUPercentFromDeltas(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		prev, cur  client.Stats
		wantPerCPU float64
	}{
		{"half a CPU", client.Stats{Time: t0, CPUUsage: time.Second}, client.Stats{Time: t0.Add(2 * time.Second), CPUUsage: 2 * time.Second}, 50},
		{"two CPUs busy", client.Stats{Time: t0}, client.Stats{Time: t0.Add(time.Second), CPUUsage: 2 * time.Second}, 200},
		{"idle", client.Stats{Time: t0, CPUUsage: time.Second}, client.Stats{Time: t0.Add(time.Second), CPUUsage: time.Second}, 0},
		{"counter reset by a new task", client.Stats{Time: t0, CPUUsage: time.Hour}, client.Stats{Time: t0.Add(time.Second), CPUUsage: time.Millisecond}, 0},
		{"same time", client.Stats{Time: t0}, client.Stats{Time: t0, CPUUsage: time.Second}, 0},
	} {
		if got := cpuPercent(tc.prev, tc.cur); got != tc.wantPerCPU {
			t.Errorf("%s: %v%%, want %v%%", tc.name, got, tc.wantPerCPU)
		}
	}
}

func TestStatsRow(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	ct := client.Container{ID: "0123456789abcdef", Name: "web"}
	const host = 8 << 30
	prev := statsSample{ct: ct, ok: true, stats: client.Stats{Time: t0, CPUUsage: 0}}
	cur := statsSample{ct: ct, ok: true, stats: client.Stats{
		Time: t0.Add(time.Second), CPUUsage: 250 * time.Millisecond,
		MemoryUsage: 300 << 20, MemoryWorkingSet: 128 << 20, MemoryLimit: 512 << 20,
		PidsCurrent: 3, IOReadBytes: 1536, IOWriteBytes: 0,
	}}
	want := []string{"0123456789ab", "web", "25.00%", "128 MiB / 512 MiB", "25.00%", "3", "1.5 KiB / 0 B"}
	if diff := cmp.Diff(want, statsRow(prev, cur, host)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	// No earlier sample: no CPU figure yet. No limit: the host's memory.
	cur.stats.MemoryLimit = 1<<63 - 1
	want = []string{"0123456789ab", "web", "--", "128 MiB / 8 GiB", "1.56%", "3", "1.5 KiB / 0 B"}
	if diff := cmp.Diff(want, statsRow(statsSample{}, cur, host)); diff != "" {
		t.Errorf("row without limit (-want +got):\n%s", diff)
	}
	cur.stats.MemoryWorkingSet, cur.stats.MemoryLimit = 0, 0
	if got := statsRow(prev, cur, host)[3]; got != "300 MiB / 8 GiB" {
		t.Errorf("usage without working set: %q", got)
	}
	want = []string{"0123456789ab", "web", "--", "-- / --", "--", "--", "-- / --"}
	if diff := cmp.Diff(want, statsRow(prev, statsSample{ct: ct}, host)); diff != "" {
		t.Errorf("row of a stopped container (-want +got):\n%s", diff)
	}
}
