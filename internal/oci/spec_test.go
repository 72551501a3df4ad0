package oci

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestGenerateDefaults(t *testing.T) {
	img := ocispec.ImageConfig{
		Entrypoint: []string{"/entry"},
		Cmd:        []string{"serve"},
		Env:        []string{"PATH=/app/bin", "LANG=C"},
		Volumes:    map[string]struct{}{"/data": {}},
		Labels:     map[string]string{"a": "b"},
	}
	s, err := generate(img, Options{ID: "web", Users: readUsers(t, testRootfs(t)), CgroupsPath: "/berth/default/web"}, testHost())
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	want := &specs.Process{
		User: specs.User{},
		Args: []string{"/entry", "serve"},
		Env:  []string{"PATH=/app/bin", "LANG=C", "HOSTNAME=web", "HOME=/root"},
		Cwd:  "/",
		Capabilities: &specs.LinuxCapabilities{
			Bounding:  []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"},
			Effective: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"},
			Permitted: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"},
		},
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 20000}},
		NoNewPrivileges: true,
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("process (-want +got):\n%s", diff)
	}
	if s.Version != SpecVersion || s.Hostname != "web" || *s.Root != (specs.Root{Path: "rootfs"}) || s.Annotations != nil {
		t.Errorf("spec version %q hostname %q root %+v annotations %v", s.Version, s.Hostname, s.Root, s.Annotations)
	}
	// The image's volume is not mounted.
	if diff := cmp.Diff(defaultMounts(false), s.Mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	l := s.Linux
	if l.CgroupsPath != "/berth/default/web" {
		t.Errorf("cgroups path %q", l.CgroupsPath)
	}
	wantNS := []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "cgroup"}}
	if diff := cmp.Diff(wantNS, l.Namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(maskedPaths, l.MaskedPaths); diff != "" {
		t.Errorf("masked paths (-want +got):\n%s", diff)
	}
	for _, m := range []string{"/proc/kcore", "/proc/keys", "/proc/acpi", "/sys/firmware", "/proc/sched_debug", "/proc/scsi", "/sys/devices/virtual/powercap"} {
		if !slices.Contains(l.MaskedPaths, m) {
			t.Errorf("%s is not masked", m)
		}
	}
	if diff := cmp.Diff([]string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}, l.ReadonlyPaths); diff != "" {
		t.Errorf("read-only paths (-want +got):\n%s", diff)
	}
	if l.Seccomp == nil || l.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("seccomp %+v, want the default profile", l.Seccomp)
	}
	// Devices: deny all, then the standard character devices.
	r := l.Resources
	if len(r.Devices) == 0 || r.Devices[0].Allow || r.Devices[0].Access != "rwm" || r.Devices[0].Type != "" {
		t.Fatalf("first device rule %+v, want deny all", r.Devices)
	}
	var allowed []string
	for _, d := range r.Devices[1:] {
		minor := "*"
		if d.Minor != nil {
			minor = strconv.FormatInt(*d.Minor, 10)
		}
		allowed = append(allowed, fmt.Sprintf("%s %d:%s %s", d.Type, *d.Major, minor, d.Access))
	}
	wantDev := []string{"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"}
	if diff := cmp.Diff(wantDev, allowed); diff != "" {
		t.Errorf("allowed devices (-want +got):\n%s", diff)
	}
	var nodes []string
	for _, d := range l.Devices {
		nodes = append(nodes, d.Path)
	}
	if diff := cmp.Diff([]string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}, nodes); diff != "" {
		t.Errorf("device nodes (-want +got):\n%s", diff)
	}
	if r.Memory != nil || r.CPU != nil || r.Pids != nil {
		t.Errorf("limits set without asking: %+v", r)
	}
}

func TestGenerateOptions(t *testing.T) {
	rootfs := testRootfs(t)
	host := t.TempDir()
	adj := 500
	o := Options{
		ID:          "c1",
		Hostname:    "box.example",
		Args:        []string{"id"},
		Env:         []string{"PATH=/custom", "A=1"},
		WorkingDir:  "/work/",
		User:        "alice",
		Mounts:      []Mount{{Type: MountBind, Source: host, Destination: "/data", ReadOnly: true}, {Type: MountTmpfs, Destination: "/scratch"}},
		Resources:   Resources{MemoryBytes: 64 << 20, CPUs: 0.5, PidsLimit: 50},
		Ulimits:     []specs.POSIXRlimit{{Type: "RLIMIT_NPROC", Soft: 100, Hard: 100}},
		OOMScoreAdj: &adj,
		ReadOnly:    true,
		TTY:         true,
		CapAdd:      []string{"net_raw"},
		CapDrop:     []string{"CAP_CHOWN"},
		SecurityOpt: []string{"no-new-privileges=false", "systempaths=unconfined"},
		NetNSPath:   "/var/run/netns/c1",
		Users:       readUsers(t, rootfs),
		Annotations: map[string]string{"k": "v"},
	}
	s, err := generate(imageConfig("sh"), o, testHost())
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if diff := cmp.Diff([]string{"id"}, p.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PATH=/custom", "A=1", "HOSTNAME=box.example", "HOME=/home/alice", "TERM=xterm"}, p.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 2001}}, p.User); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
	if p.Cwd != "/work" || !p.Terminal || p.NoNewPrivileges || *p.OOMScoreAdj != 500 || !s.Root.Readonly || s.Hostname != "box.example" {
		t.Errorf("process %+v root %+v hostname %q", p, s.Root, s.Hostname)
	}
	adj = 7 // the spec holds its own copy
	if *p.OOMScoreAdj != 500 {
		t.Error("spec shares the caller's OOMScoreAdj")
	}
	if slices.Contains(p.Capabilities.Bounding, "CAP_CHOWN") || !slices.Contains(p.Capabilities.Bounding, "CAP_NET_RAW") {
		t.Errorf("capabilities %q", p.Capabilities.Bounding)
	}
	if diff := cmp.Diff([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 20000}, {Type: "RLIMIT_NPROC", Soft: 100, Hard: 100}}, p.Rlimits); diff != "" {
		t.Errorf("rlimits (-want +got):\n%s", diff)
	}
	l := s.Linux
	if l.MaskedPaths != nil || l.ReadonlyPaths != nil {
		t.Errorf("systempaths=unconfined left masked %q read-only %q", l.MaskedPaths, l.ReadonlyPaths)
	}
	if !slices.Contains(l.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/c1"}) {
		t.Errorf("namespaces %+v lack the network namespace", l.Namespaces)
	}
	if *l.Resources.Memory.Limit != 64<<20 || *l.Resources.CPU.Quota != 50000 || *l.Resources.Pids.Limit != 50 {
		t.Errorf("resources %+v", l.Resources)
	}
	if n := len(s.Mounts); n != len(defaultMounts(false))+2 || s.Mounts[n-2].Destination != "/data" || s.Mounts[n-1].Destination != "/scratch" {
		t.Errorf("mounts %+v", s.Mounts)
	}
	if diff := cmp.Diff(map[string]string{"k": "v"}, s.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

func TestGenerateImageDefaults(t *testing.T) {
	img := ocispec.ImageConfig{Cmd: []string{"run"}, User: "bob", WorkingDir: "/app/../srv/", Env: []string{"HOME=/h"}}
	s, err := generate(img, Options{ID: "c", Users: readUsers(t, testRootfs(t))}, testHost())
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.User.UID != 1001 || s.Process.Cwd != "/srv" || envMap(s.Process.Env)["HOME"] != "/h" || envMap(s.Process.Env)["PATH"] != defaultPath {
		t.Errorf("process %+v", s.Process)
	}
	// --user and -w replace the image's.
	s, err = generate(img, Options{ID: "c", Users: readUsers(t, testRootfs(t)), User: "0", WorkingDir: "/"}, testHost())
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.User.UID != 0 || s.Process.Cwd != "/" {
		t.Errorf("process %+v", s.Process)
	}
}

func TestGeneratePrivileged(t *testing.T) {
	h := testHost()
	s, err := generate(imageConfig("sh"), Options{ID: "p", Privileged: true}, h)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h.caps, s.Process.Capabilities.Effective); diff != "" {
		t.Errorf("capabilities (-want +got):\n%s", diff)
	}
	l := s.Linux
	if l.Seccomp != nil || l.MaskedPaths != nil || l.ReadonlyPaths != nil {
		t.Errorf("privileged has seccomp %v, masked %q, read-only %q", l.Seccomp != nil, l.MaskedPaths, l.ReadonlyPaths)
	}
	if diff := cmp.Diff([]specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, l.Resources.Devices); diff != "" {
		t.Errorf("device rules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(defaultMounts(true), s.Mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	// The host's devices are passed on, each once.
	seen := map[string]bool{}
	for _, d := range l.Devices {
		if seen[d.Path] {
			t.Errorf("device %s twice", d.Path)
		}
		seen[d.Path] = true
	}
	for _, p := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/tty"} {
		if !seen[p] {
			t.Errorf("device %s missing", p)
		}
	}
	if seen["/dev/console"] || seen["/dev/ptmx"] {
		t.Error("host console or ptmx passed on")
	}
	// An explicit profile still applies.
	s, err = generate(imageConfig("sh"), Options{ID: "p", Privileged: true, SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_LOG"}`}}, h)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActLog {
		t.Errorf("seccomp %+v, want the given profile", s.Linux.Seccomp)
	}
}

func TestGenerateSeccompFollowsCapabilities(t *testing.T) {
	for _, tc := range []struct {
		o       Options
		mount   bool
		seccomp bool
	}{
		{Options{}, false, true},
		{Options{CapAdd: []string{"SYS_ADMIN"}}, true, true},
		{Options{CapAdd: []string{"ALL"}, CapDrop: []string{"SYS_ADMIN"}}, false, true},
		{Options{SecurityOpt: []string{"seccomp=unconfined"}}, false, false},
	} {
		tc.o.ID = "c"
		s, err := generate(imageConfig("sh"), tc.o, testHost())
		if err != nil {
			t.Fatal(err)
		}
		if (s.Linux.Seccomp != nil) != tc.seccomp {
			t.Errorf("%+v: seccomp %v, want %v", tc.o, s.Linux.Seccomp != nil, tc.seccomp)
		}
		if s.Linux.Seccomp != nil && allowedAlways(s.Linux.Seccomp, "mount") != tc.mount {
			t.Errorf("%+v: mount allowed %v, want %v", tc.o, !tc.mount, tc.mount)
		}
	}
}

func TestGenerateNoCgroupNamespace(t *testing.T) {
	h := testHost()
	h.cgroupNS = false
	s, err := generate(imageConfig("sh"), Options{ID: "c"}, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace {
			t.Error("cgroup namespace asked for on a kernel without them")
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	users := readUsers(t, testRootfs(t))
	neg, big := -5, 1001
	for _, tc := range []struct {
		name  string
		img   ocispec.ImageConfig
		o     Options
		err   error
		names string // the error names this
	}{
		{"no id", imageConfig("sh"), Options{}, errdefs.ErrInvalidArgument, "container id"},
		{"id with slash", imageConfig("sh"), Options{ID: "a/b"}, errdefs.ErrInvalidArgument, "container id"},
		{"bad hostname", imageConfig("sh"), Options{ID: "c", Hostname: "a b"}, errdefs.ErrInvalidArgument, "hostname"},
		{"long hostname", imageConfig("sh"), Options{ID: "c", Hostname: strings.Repeat("h", 65)}, errdefs.ErrInvalidArgument, "hostname"},
		{"relative cgroups path", imageConfig("sh"), Options{ID: "c", CgroupsPath: "berth/c"}, errdefs.ErrInvalidArgument, "cgroups path"},
		{"relative netns", imageConfig("sh"), Options{ID: "c", NetNSPath: "netns"}, errdefs.ErrInvalidArgument, "network namespace"},
		{"no command", ocispec.ImageConfig{}, Options{ID: "c"}, errdefs.ErrInvalidArgument, "no command"},
		{"NUL in image cmd", imageConfig("sh\x00"), Options{ID: "c"}, errdefs.ErrInvalidArgument, "NUL"},
		{"bad env", imageConfig("sh"), Options{ID: "c", Env: []string{"NOVALUE"}}, errdefs.ErrInvalidArgument, "--env"},
		{"bad image env", ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"A=\x00"}}, Options{ID: "c"}, errdefs.ErrInvalidArgument, "image config Env"},
		{"relative workdir", imageConfig("sh"), Options{ID: "c", WorkingDir: "app"}, errdefs.ErrInvalidArgument, "--workdir"},
		{"relative image workdir", ocispec.ImageConfig{Cmd: []string{"sh"}, WorkingDir: "app"}, Options{ID: "c"}, errdefs.ErrInvalidArgument, "image config WorkingDir"},
		{"uid too large", imageConfig("sh"), Options{ID: "c", User: "4294967295"}, errdefs.ErrInvalidArgument, "--user"},
		{"uid negative", imageConfig("sh"), Options{ID: "c", User: "-1"}, errdefs.ErrInvalidArgument, "--user"},
		{"gid too large", imageConfig("sh"), Options{ID: "c", User: "1:4294967296"}, errdefs.ErrInvalidArgument, "--user"},
		{"missing user", imageConfig("sh"), Options{ID: "c", User: "nosuch", Users: users}, errdefs.ErrInvalidArgument, "nosuch"},
		{"bad image user", ocispec.ImageConfig{Cmd: []string{"sh"}, User: "a:b:c"}, Options{ID: "c"}, errdefs.ErrInvalidArgument, "image config User"},
		{"missing image user", ocispec.ImageConfig{Cmd: []string{"sh"}, User: "ghost"}, Options{ID: "c", Users: users}, errdefs.ErrInvalidArgument, "image config User"},
		{"unknown cap", imageConfig("sh"), Options{ID: "c", CapAdd: []string{"FLY"}}, errdefs.ErrInvalidArgument, "--cap-add"},
		{"cap not held", imageConfig("sh"), Options{ID: "c", CapAdd: []string{"SYS_RESOURCE"}}, errdefs.ErrFailedPrecondition, "CAP_SYS_RESOURCE"},
		{"security opt", imageConfig("sh"), Options{ID: "c", SecurityOpt: []string{"nope"}}, errdefs.ErrInvalidArgument, "--security-opt"},
		{"apparmor", imageConfig("sh"), Options{ID: "c", SecurityOpt: []string{"apparmor=x"}}, errdefs.ErrNotImplemented, "AppArmor"},
		{"negative oom score", imageConfig("sh"), Options{ID: "c", OOMScoreAdj: &neg}, errdefs.ErrFailedPrecondition, "CAP_SYS_RESOURCE"},
		{"oom score range", imageConfig("sh"), Options{ID: "c", OOMScoreAdj: &big}, errdefs.ErrInvalidArgument, "--oom-score-adj"},
		{"ulimit above berthd", imageConfig("sh"), Options{ID: "c", Ulimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1 << 21}}}, errdefs.ErrFailedPrecondition, "CAP_SYS_RESOURCE"},
		{"memory", imageConfig("sh"), Options{ID: "c", Resources: Resources{MemoryBytes: 1}}, errdefs.ErrInvalidArgument, "--memory"},
		{"cpus", imageConfig("sh"), Options{ID: "c", Resources: Resources{CPUs: 64}}, errdefs.ErrInvalidArgument, "--cpus"},
		{"mount", imageConfig("sh"), Options{ID: "c", Mounts: []Mount{{Type: MountBind, Source: "/nonexistent-berth", Destination: "/x"}}}, errdefs.ErrInvalidArgument, "/nonexistent-berth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := generate(tc.img, tc.o, testHost())
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("error %q does not name %q", err, tc.names)
			}
		})
	}
}

func TestGenerateProbesThisHost(t *testing.T) {
	s, err := Generate(imageConfig("sh"), Options{ID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || s.Process.Rlimits[0].Hard == 0 || s.Process.Rlimits[0].Hard > defaultNofileHard {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
}
