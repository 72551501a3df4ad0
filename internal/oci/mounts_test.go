package oci

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseVolume(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mount
	}{
		{"/data:/srv", Mount{Type: MountBind, Source: "/data", Destination: "/srv"}},
		{"/data:/srv:ro", Mount{Type: MountBind, Source: "/data", Destination: "/srv", ReadOnly: true}},
		{"/data:/srv:rw", Mount{Type: MountBind, Source: "/data", Destination: "/srv"}},
	} {
		got, err := ParseVolume(tc.in)
		if err != nil {
			t.Errorf("ParseVolume(%q): %v", tc.in, err)
		} else if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseVolume(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, in := range []string{"/data", "vol:/srv", "data:/srv", "/data:srv", "/data:/", "/data:/srv:z", "/data:/srv:ro:x", "/data:/srv:ro,z", ""} {
		if _, err := ParseVolume(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseVolume(%q): error %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mount
	}{
		{"/run", Mount{Type: MountTmpfs, Destination: "/run"}},
		{"/run:size=64m,mode=755", Mount{Type: MountTmpfs, Destination: "/run", Options: []string{"size=64m", "mode=755"}}},
		{"/run:ro,exec,uid=1000,nr_inodes=10k", Mount{Type: MountTmpfs, Destination: "/run", ReadOnly: true, Options: []string{"exec", "uid=1000", "nr_inodes=10k"}}},
		{"/run:size=50%", Mount{Type: MountTmpfs, Destination: "/run", Options: []string{"size=50%"}}},
	} {
		got, err := ParseTmpfs(tc.in)
		if err != nil {
			t.Errorf("ParseTmpfs(%q): %v", tc.in, err)
		} else if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseTmpfs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, in := range []string{"run", "/", "/run:size=", "/run:mode=999", "/run:bogus", "/run:size=1m;x", "/run:uid=root", "/run:loop"} {
		if _, err := ParseTmpfs(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseTmpfs(%q): error %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestMounts(t *testing.T) {
	host := t.TempDir()
	got, err := mounts([]Mount{
		{Type: MountBind, Source: host, Destination: "/data/", ReadOnly: true},
		{Type: MountBind, Source: host, Destination: "/rw"},
		{Type: MountTmpfs, Destination: "/run", Options: []string{"size=1m", "exec"}},
		{Type: MountTmpfs, Destination: "/dev/shm", Options: []string{"size=1g"}},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	var want []specs.Mount
	for _, d := range defaultMounts(false) {
		if d.Destination != "/dev/shm" {
			want = append(want, d)
		}
	}
	want = append(want,
		specs.Mount{Destination: "/data", Type: "bind", Source: host, Options: []string{"rbind", "ro", "rprivate"}},
		specs.Mount{Destination: "/rw", Type: "bind", Source: host, Options: []string{"rbind", "rw", "rprivate"}},
		specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "size=1m", "exec", "rw"}},
		specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "size=1g", "rw"}},
	)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}

	for name, ms := range map[string][]Mount{
		"missing host path": {{Type: MountBind, Source: host + "/nope", Destination: "/x"}},
		"same destination":  {{Type: MountTmpfs, Destination: "/x"}, {Type: MountBind, Source: host, Destination: "/x/"}},
		"relative":          {{Type: MountTmpfs, Destination: "x"}},
		"bad type":          {{Type: "nfs", Destination: "/x"}},
		"bind options":      {{Type: MountBind, Source: host, Destination: "/x", Options: []string{"exec"}}},
		"tmpfs source":      {{Type: MountTmpfs, Source: "/etc", Destination: "/x"}},
	} {
		if _, err := mounts(ms, false); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: error %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := mounts([]Mount{{Type: MountBind, Source: host + "/nope", Destination: "/x"}}, false); err == nil || !strings.Contains(err.Error(), host+"/nope") {
		t.Errorf("missing host path: error %v does not name the path", err)
	}
}

func TestDefaultMountsPrivilegedSysIsWritable(t *testing.T) {
	for _, privileged := range []bool{false, true} {
		for _, m := range defaultMounts(privileged) {
			if m.Destination != "/sys" && m.Destination != "/sys/fs/cgroup" {
				continue
			}
			if ro := slices.Contains(m.Options, "ro"); ro == privileged {
				t.Errorf("privileged %v: %s options %q", privileged, m.Destination, m.Options)
			}
		}
	}
}
