package oci

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestResources(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Resources
		want specs.LinuxResources
		err  error
	}{
		{name: "none"},
		{name: "memory", r: Resources{MemoryBytes: 64 << 20}, want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)}}},
		{name: "memory and swap", r: Resources{MemoryBytes: 64 << 20, MemorySwapBytes: 128 << 20},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](128 << 20)}}},
		{name: "unlimited swap", r: Resources{MemoryBytes: 64 << 20, MemorySwapBytes: -1},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](-1)}}},
		{name: "cpus 1.5", r: Resources{CPUs: 1.5}, want: specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](150000), Period: ptr[uint64](100000)}}},
		{name: "cpus 0.5", r: Resources{CPUs: 0.5}, want: specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](100000)}}},
		{name: "cpus 0.01", r: Resources{CPUs: 0.01}, want: specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](1000), Period: ptr[uint64](100000)}}},
		{name: "cpus all", r: Resources{CPUs: 2}, want: specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](200000), Period: ptr[uint64](100000)}}},
		{name: "shares and cpuset", r: Resources{CPUShares: 512, CpusetCpus: "0-1,3", CpusetMems: "0"},
			want: specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](512), Cpus: "0-1,3", Mems: "0"}}},
		{name: "pids", r: Resources{PidsLimit: 100}, want: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](100)}}},
		{name: "pids unlimited", r: Resources{PidsLimit: -1}, want: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-1)}}},
		{name: "memory too small", r: Resources{MemoryBytes: 1 << 20}, err: errdefs.ErrInvalidArgument},
		{name: "memory negative", r: Resources{MemoryBytes: -5}, err: errdefs.ErrInvalidArgument},
		{name: "swap without memory", r: Resources{MemorySwapBytes: 1 << 30}, err: errdefs.ErrInvalidArgument},
		{name: "swap below memory", r: Resources{MemoryBytes: 64 << 20, MemorySwapBytes: 32 << 20}, err: errdefs.ErrInvalidArgument},
		{name: "cpus above available", r: Resources{CPUs: 3}, err: errdefs.ErrInvalidArgument},
		{name: "cpus too small", r: Resources{CPUs: 0.001}, err: errdefs.ErrInvalidArgument},
		{name: "cpus negative", r: Resources{CPUs: -1}, err: errdefs.ErrInvalidArgument},
		{name: "shares too small", r: Resources{CPUShares: 1}, err: errdefs.ErrInvalidArgument},
		{name: "shares too large", r: Resources{CPUShares: 300000}, err: errdefs.ErrInvalidArgument},
		{name: "bad cpuset", r: Resources{CpusetCpus: "0-"}, err: errdefs.ErrInvalidArgument},
		{name: "reversed cpuset", r: Resources{CpusetCpus: "3-1"}, err: errdefs.ErrInvalidArgument},
		{name: "bad mems", r: Resources{CpusetMems: "a"}, err: errdefs.ErrInvalidArgument},
		{name: "pids below -1", r: Resources{PidsLimit: -2}, err: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got specs.LinuxResources
			err := tc.r.apply(&got, testHost())
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "100b": 100, "1k": 1024, "1K": 1024, "64m": 64 << 20, "64M": 64 << 20,
		"64mb": 64 << 20, "100MiB": 100 << 20, "1.5g": 3 << 29, "2 GB": 2 << 30, "1t": 1 << 40, "1p": 1 << 50,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1", "1x", "1.2.3", "1ib", "10000p", "1e3", "abc"} {
		if _, err := ParseBytes(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseBytes(%q): error %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestParseUlimit(t *testing.T) {
	for in, want := range map[string]specs.POSIXRlimit{
		"nofile=1024:2048": {Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048},
		"nproc=100":        {Type: "RLIMIT_NPROC", Soft: 100, Hard: 100},
		"core=0:-1":        {Type: "RLIMIT_CORE", Soft: 0, Hard: Unlimited},
		"memlock=-1":       {Type: "RLIMIT_MEMLOCK", Soft: Unlimited, Hard: Unlimited},
	} {
		got, err := ParseUlimit(in)
		if err != nil || got != want {
			t.Errorf("ParseUlimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"nofile", "nofile=", "bogus=1", "nofile=2:1", "nofile=a", "nofile=-1:10", "nofile=1:2:3", "=1"} {
		if _, err := ParseUlimit(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseUlimit(%q): error %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestRlimits(t *testing.T) {
	nofile := func(soft, hard uint64) specs.POSIXRlimit {
		return specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: soft, Hard: hard}
	}
	for _, tc := range []struct {
		name    string
		hostMax uint64
		held    bool
		ulimits []specs.POSIXRlimit
		want    []specs.POSIXRlimit
		err     error
	}{
		{name: "capped at berthd's hard limit", hostMax: 20000, want: []specs.POSIXRlimit{nofile(1024, 20000)}},
		{name: "default hard", hostMax: 1 << 30, want: []specs.POSIXRlimit{nofile(1024, 1048576)}},
		{name: "host below soft", hostMax: 512, want: []specs.POSIXRlimit{nofile(512, 512)}},
		{name: "user nofile replaces", hostMax: 20000, ulimits: []specs.POSIXRlimit{nofile(100, 200)}, want: []specs.POSIXRlimit{nofile(100, 200)}},
		{name: "other limits appended", hostMax: 20000, ulimits: []specs.POSIXRlimit{{Type: "RLIMIT_NPROC", Soft: 10, Hard: 10}},
			want: []specs.POSIXRlimit{nofile(1024, 20000), {Type: "RLIMIT_NPROC", Soft: 10, Hard: 10}}},
		{name: "above berthd without CAP_SYS_RESOURCE", hostMax: 20000, ulimits: []specs.POSIXRlimit{nofile(100, 30000)}, err: errdefs.ErrFailedPrecondition},
		{name: "above berthd with CAP_SYS_RESOURCE", hostMax: 20000, held: true, ulimits: []specs.POSIXRlimit{nofile(100, 30000)}, want: []specs.POSIXRlimit{nofile(100, 30000)}},
		{name: "unknown type", hostMax: 20000, ulimits: []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}, err: errdefs.ErrInvalidArgument},
		{name: "twice", hostMax: 20000, ulimits: []specs.POSIXRlimit{nofile(1, 1), nofile(2, 2)}, err: errdefs.ErrInvalidArgument},
		{name: "soft above hard", hostMax: 20000, ulimits: []specs.POSIXRlimit{nofile(3, 2)}, err: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost()
			h.hardLimits["RLIMIT_NOFILE"] = tc.hostMax
			if tc.held {
				h.caps = append(h.caps, "CAP_SYS_RESOURCE")
			}
			got, err := rlimits(tc.ulimits, h)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got); tc.err == nil && diff != "" {
				t.Errorf("rlimits (-want +got):\n%s", diff)
			}
		})
	}
}
