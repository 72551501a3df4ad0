package cgroups

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
)

func TestParseMountinfoFindsEachV1HierarchyOnce(t *testing.T) {
	const mountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
34 31 0:31 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,net_cls,net_prio
35 31 0:32 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,xattr,name=systemd
36 31 0:33 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:14 - cgroup2 cgroup2 rw,nsdelegate
37 22 0:30 / /mnt/mem\040ory rw,relatime - cgroup cgroup rw,memory
38 22 0:34 / /mnt/my\040pids rw,relatime - cgroup none rw,pids
`
	want := []v1Mount{
		{mountpoint: "/sys/fs/cgroup/cpu,cpuacct", options: []string{"rw", "cpu", "cpuacct"}},
		{mountpoint: "/sys/fs/cgroup/memory", options: []string{"rw", "memory"}},
		{mountpoint: "/sys/fs/cgroup/net_cls,net_prio", options: []string{"rw", "net_cls", "net_prio"}},
		{mountpoint: "/sys/fs/cgroup/systemd", options: []string{"rw", "xattr", "name=systemd"}},
		{mountpoint: "/mnt/my pids", options: []string{"rw", "pids"}},
	}
	got := parseMountinfo(mountinfo)
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(v1Mount{})); diff != "" {
		t.Errorf("parseMountinfo (-want +got):\n%s", diff)
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:             "/plain",
		`/a\040b\011c\134d`:  "/a b\tc\\d",
		`/trailing\04`:       `/trailing\04`,
		`/not\999octal\012x`: "/not\\999octal\nx",
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		data    string
		want    uint64
		wantErr bool
	}{
		{data: "max\n", want: Unlimited},
		{data: "67108864\n", want: 64 << 20},
		{data: "0\n", want: 0},
		{data: "9223372036854771712\n", want: Unlimited}, // v1 memory, 4 KiB pages
		{data: "9223372036854710272\n", want: Unlimited}, // v1 memory, 64 KiB pages
		{data: "-1\n", wantErr: true},
		{data: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseLimit("memory.max", tt.data)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseLimit(%q) = %d, %v; want %d, error %v", tt.data, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("parseLimit(%q) error %v is not invalid argument", tt.data, err)
		}
	}
}

func TestParseFlatKeyedRejectsMalformedLines(t *testing.T) {
	for _, data := range []string{"usage_usec\n", "usage_usec x\n", "usage_usec -3\n"} {
		err := parseFlatKeyed("cpu.stat", data, func(string, uint64) {})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("parseFlatKeyed(%q) = %v, want invalid argument", data, err)
		}
	}
}

func TestKeyedValue(t *testing.T) {
	tests := []struct {
		data, key string
		want      uint64
	}{
		{data: "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", key: "oom_kill", want: 3},
		{data: "oom_kill_disable 0\nunder_oom 0\n", key: "oom_kill", want: 0}, // before Linux 4.13
		{data: "low 0\nhigh 0\nmax 17\noom 2\noom_kill 2\noom_group_kill 0\n", key: "oom_kill", want: 2},
		{data: "populated 1\nfrozen 1\n", key: "frozen", want: 1},
	}
	for _, tt := range tests {
		got, err := keyedValue("f", tt.data, tt.key)
		if err != nil || got != tt.want {
			t.Errorf("keyedValue(%q, %s) = %d, %v; want %d", tt.data, tt.key, got, err, tt.want)
		}
	}
}

func TestParseBlkio(t *testing.T) {
	const data = `254:0 Read 1048576
254:0 Write 2097152
254:0 Sync 3145728
254:0 Async 0
254:0 Discard 0
254:0 Total 3145728
8:16 Read 4096
8:16 Write 0
8:16 Sync 4096
8:16 Async 0
8:16 Discard 0
8:16 Total 4096
Total 3149824
`
	r, w, err := parseBlkio("blkio.throttle.io_service_bytes", data)
	if err != nil || r != 1048576+4096 || w != 2097152 {
		t.Errorf("parseBlkio = %d, %d, %v; want %d, %d", r, w, err, 1048576+4096, 2097152)
	}
	if r, w, err := parseBlkio("blkio.throttle.io_serviced", "Total 0\n"); err != nil || r != 0 || w != 0 {
		t.Errorf("parseBlkio(no devices) = %d, %d, %v; want 0, 0", r, w, err)
	}
	if _, _, err := parseBlkio("blkio.throttle.io_serviced", "8:0 Read x\n"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("parseBlkio(bad value) = %v, want invalid argument", err)
	}
}

func TestParseIOStat(t *testing.T) {
	const data = `254:0 rbytes=90112 wbytes=4096 rios=5 wios=1 dbytes=0 dios=0
8:16 rbytes=1000 wbytes=2000 rios=3 wios=4 dbytes=512 dios=1 cost.vrate=100.00
`
	want := IOStats{ReadBytes: 91112, WriteBytes: 6096, ReadOps: 8, WriteOps: 5}
	got, err := parseIOStat(data)
	if err != nil || got != want {
		t.Errorf("parseIOStat = %+v, %v; want %+v", got, err, want)
	}
	if got, err := parseIOStat(""); err != nil || got != (IOStats{}) {
		t.Errorf("parseIOStat(empty) = %+v, %v; want zero", got, err)
	}
	if _, err := parseIOStat("8:0 rbytes\n"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("parseIOStat(bad) = %v, want invalid argument", err)
	}
}

func TestAppendPids(t *testing.T) {
	got, err := appendPids([]int{1}, "42\n7\n\n")
	if err != nil || !cmp.Equal(got, []int{1, 42, 7}) {
		t.Errorf("appendPids = %v, %v; want [1 42 7]", got, err)
	}
	if _, err := appendPids(nil, "12x\n"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("appendPids(bad) = %v, want invalid argument", err)
	}
}

// v2Files is a cgroup v2 directory of a container running under runc on
// Linux 6.x, with the cpu, memory, pids and io controllers enabled.
func v2Files() fstest.MapFS {
	return fstest.MapFS{
		"cgroup.controllers": {Data: []byte("cpuset cpu io memory hugetlb pids rdma misc\n")},
		"cpu.stat": {Data: []byte(`usage_usec 2503311
user_usec 1802000
system_usec 701311
core_sched.force_idle_usec 0
nr_periods 120
nr_throttled 31
throttled_usec 941277
nr_bursts 0
burst_usec 0
`)},
		"memory.current": {Data: []byte("52428800\n")},
		"memory.max":     {Data: []byte("134217728\n")},
		"memory.peak":    {Data: []byte("60817408\n")},
		"memory.stat": {Data: []byte(`anon 31457280
file 18874368
kernel 1900544
kernel_stack 81920
pagetables 331776
sec_pagetables 0
percpu 1440
sock 0
vmalloc 0
shmem 0
zswap 0
zswapped 0
file_mapped 6291456
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 31330304
active_anon 126976
inactive_file 12582912
active_file 6291456
unevictable 0
slab_reclaimable 874208
slab_unreclaimable 498936
slab 1373144
workingset_refault_anon 0
workingset_refault_file 0
pgfault 15618
pgmajfault 12
thp_fault_alloc 0
`)},
		"memory.events":       {Data: []byte("low 0\nhigh 0\nmax 40\noom 2\noom_kill 2\noom_group_kill 0\n")},
		"memory.swap.current": {Data: []byte("4096\n")},
		"pids.current":        {Data: []byte("7\n")},
		"pids.max":            {Data: []byte("max\n")},
		"io.stat":             {Data: []byte("254:0 rbytes=90112 wbytes=4096 rios=5 wios=1 dbytes=0 dios=0\n")},
	}
}

func TestReadStatsV2(t *testing.T) {
	full := &Stats{
		CPU: CPUStats{UsageNanos: 2503311000, UserNanos: 1802000000, SystemNanos: 701311000,
			Periods: 120, ThrottledPeriods: 31, ThrottledNanos: 941277000},
		Memory: MemoryStats{Usage: 52428800, Limit: 134217728, WorkingSet: 52428800 - 12582912,
			RSS: 31457280, Cache: 18874368, MaxUsage: 60817408, OOMKills: 2, Swap: 4096},
		Pids: PidsStats{Current: 7, Limit: Unlimited},
		IO:   IOStats{ReadBytes: 90112, WriteBytes: 4096, ReadOps: 5, WriteOps: 1},
	}
	tests := []struct {
		name   string
		change func(fstest.MapFS)
		want   func(*Stats)
	}{
		{name: "all controllers", change: func(fstest.MapFS) {}, want: func(*Stats) {}},
		{
			name: "no limits, no memory.peak (before Linux 5.19), no swap accounting",
			change: func(f fstest.MapFS) {
				f["memory.max"].Data = []byte("max\n")
				f["pids.max"].Data = []byte("512\n")
				delete(f, "memory.peak")
				delete(f, "memory.swap.current")
			},
			want: func(s *Stats) {
				s.Memory.Limit, s.Memory.MaxUsage, s.Memory.Swap = Unlimited, 0, 0
				s.Pids.Limit = 512
			},
		},
		{
			name: "inactive file above usage floors working set at 0",
			change: func(f fstest.MapFS) {
				f["memory.current"].Data = []byte("1000\n")
			},
			want: func(s *Stats) { s.Memory.Usage, s.Memory.WorkingSet = 1000, 0 },
		},
		{
			name: "only core cpu.stat without enabled controllers",
			change: func(f fstest.MapFS) {
				f["cgroup.controllers"].Data = []byte("\n")
				f["cpu.stat"].Data = []byte("usage_usec 2503311\nuser_usec 1802000\nsystem_usec 701311\ncore_sched.force_idle_usec 0\n")
				for name := range f {
					if name != "cgroup.controllers" && name != "cpu.stat" {
						delete(f, name)
					}
				}
			},
			want: func(s *Stats) {
				*s = Stats{CPU: CPUStats{UsageNanos: 2503311000, UserNanos: 1802000000, SystemNanos: 701311000}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := v2Files()
			tt.change(f)
			want := *full
			tt.want(&want)
			got, err := readStatsV2(f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("readStatsV2 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadStatsV2Errors(t *testing.T) {
	gone := v2Files()
	delete(gone, "cgroup.controllers")
	delete(gone, "memory.current")
	if _, err := readStatsV2(gone); !errdefs.IsNotFound(err) {
		t.Errorf("readStatsV2(removed cgroup) = %v, want not found", err)
	}
	bad := v2Files()
	bad["pids.current"].Data = []byte("lots\n")
	if _, err := readStatsV2(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("readStatsV2(bad pids.current) = %v, want invalid argument", err)
	}
}

// v1Files is a container's cgroup v1 directories under runc on Linux 6.x,
// with cpu and cpuacct co-mounted.
func v1Files() (cpu, memory, pids, blkio fstest.MapFS) {
	cpu = fstest.MapFS{
		"cpuacct.usage":      {Data: []byte("2503311000\n")},
		"cpuacct.usage_user": {Data: []byte("1802000000\n")},
		"cpuacct.usage_sys":  {Data: []byte("701311000\n")},
		"cpuacct.stat":       {Data: []byte("user 180\nsystem 70\n")},
		"cpu.stat":           {Data: []byte("nr_periods 120\nnr_throttled 31\nthrottled_time 941277000\nnr_bursts 0\nburst_time 0\n")},
	}
	memory = fstest.MapFS{
		"memory.usage_in_bytes":       {Data: []byte("52428800\n")},
		"memory.limit_in_bytes":       {Data: []byte("134217728\n")},
		"memory.max_usage_in_bytes":   {Data: []byte("60817408\n")},
		"memory.memsw.usage_in_bytes": {Data: []byte("52432896\n")},
		"memory.oom_control":          {Data: []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")},
		"memory.stat": {Data: []byte(`cache 18874368
rss 31457280
rss_huge 0
shmem 0
mapped_file 6291456
dirty 0
writeback 0
swap 4096
pgpgin 15618
pgpgout 3410
pgfault 15618
pgmajfault 12
inactive_anon 31330304
active_anon 126976
inactive_file 12582912
active_file 6291456
unevictable 0
hierarchical_memory_limit 134217728
hierarchical_memsw_limit 9223372036854771712
total_cache 18878464
total_rss 31461376
total_rss_huge 0
total_shmem 0
total_mapped_file 6291456
total_dirty 0
total_writeback 0
total_swap 4096
total_pgpgin 15618
total_pgpgout 3410
total_pgfault 15618
total_pgmajfault 12
total_inactive_anon 31330304
total_active_anon 126976
total_inactive_file 12587008
total_active_file 6291456
total_unevictable 0
`)},
	}
	pids = fstest.MapFS{
		"pids.current": {Data: []byte("7\n")},
		"pids.max":     {Data: []byte("max\n")},
	}
	blkio = fstest.MapFS{
		"blkio.throttle.io_service_bytes_recursive": {Data: []byte("254:0 Read 90112\n254:0 Write 4096\n254:0 Sync 94208\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 94208\nTotal 94208\n")},
		"blkio.throttle.io_serviced_recursive":      {Data: []byte("254:0 Read 5\n254:0 Write 1\n254:0 Sync 6\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 6\nTotal 6\n")},
		"blkio.throttle.io_service_bytes":           {Data: []byte("254:0 Read 1\n254:0 Write 1\nTotal 2\n")},
		"blkio.throttle.io_serviced":                {Data: []byte("254:0 Read 1\n254:0 Write 1\nTotal 2\n")},
	}
	return cpu, memory, pids, blkio
}

func TestReadStatsV1(t *testing.T) {
	full := &Stats{
		CPU: CPUStats{UsageNanos: 2503311000, UserNanos: 1802000000, SystemNanos: 701311000,
			Periods: 120, ThrottledPeriods: 31, ThrottledNanos: 941277000},
		Memory: MemoryStats{Usage: 52428800, Limit: 134217728, WorkingSet: 52428800 - 12587008,
			RSS: 31461376, Cache: 18878464, MaxUsage: 60817408, OOMKills: 2, Swap: 4096},
		Pids: PidsStats{Current: 7, Limit: Unlimited},
		IO:   IOStats{ReadBytes: 90112, WriteBytes: 4096, ReadOps: 5, WriteOps: 1},
	}
	tests := []struct {
		name   string
		change func(cpu, memory, pids, blkio fstest.MapFS) v1Dirs
		want   func(*Stats)
	}{
		{
			name: "cpu,cpuacct co-mounted",
			change: func(cpu, memory, pids, blkio fstest.MapFS) v1Dirs {
				return v1Dirs{cpu: cpu, cpuacct: cpu, memory: memory, pids: pids, blkio: blkio}
			},
			want: func(*Stats) {},
		},
		{
			name: "old kernel: ticks in cpuacct.stat, no oom_kill, no _recursive, no swap accounting, no limits",
			change: func(cpu, memory, pids, blkio fstest.MapFS) v1Dirs {
				delete(cpu, "cpuacct.usage_user")
				delete(cpu, "cpuacct.usage_sys")
				memory["memory.oom_control"].Data = []byte("oom_kill_disable 0\nunder_oom 0\n")
				memory["memory.limit_in_bytes"].Data = []byte("9223372036854771712\n")
				delete(memory, "memory.memsw.usage_in_bytes")
				delete(blkio, "blkio.throttle.io_service_bytes_recursive")
				delete(blkio, "blkio.throttle.io_serviced_recursive")
				return v1Dirs{cpu: cpu, cpuacct: cpu, memory: memory, pids: pids, blkio: blkio}
			},
			want: func(s *Stats) {
				s.CPU.UserNanos, s.CPU.SystemNanos = 1800000000, 700000000
				s.Memory.OOMKills, s.Memory.Limit, s.Memory.Swap = 0, Unlimited, 0
				s.IO = IOStats{ReadBytes: 1, WriteBytes: 1, ReadOps: 1, WriteOps: 1}
			},
		},
		{
			name: "only memory mounted",
			change: func(cpu, memory, pids, blkio fstest.MapFS) v1Dirs {
				return v1Dirs{memory: memory}
			},
			want: func(s *Stats) { *s = Stats{Memory: s.Memory} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := *full
			tt.want(&want)
			got, err := readStatsV1(tt.change(v1Files()))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("readStatsV1 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadStatsV1RemovedCgroupIsNotFound(t *testing.T) {
	cpu, _, pids, blkio := v1Files()
	_, err := readStatsV1(v1Dirs{cpu: cpu, cpuacct: cpu, memory: fstest.MapFS{}, pids: pids, blkio: blkio})
	if !errdefs.IsNotFound(err) {
		t.Errorf("readStatsV1(memory dir empty) = %v, want not found", err)
	}
}
