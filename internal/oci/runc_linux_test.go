package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// These tests run specs made by Generate with runc, in a root filesystem of
// busybox-static and a probe program (testdata/probe) that makes syscalls
// and prints their errno, and check from inside the container that the
// defaults and flags take effect.

var (
	probeOnce sync.Once
	probeBin  []byte
	probeErr  error
)

// probe returns the statically linked testdata/probe program, built once.
func probe(t *testing.T) []byte {
	t.Helper()
	goBin := testutil.RequireBinary(t, "go")
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-probe-")
		if err != nil {
			probeErr = err
			return
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(dir, "probe"), "./testdata/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("build probe: %v\n%s", err, out)
			return
		}
		probeBin, probeErr = os.ReadFile(filepath.Join(dir, "probe"))
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probeBin
}

const (
	runcPasswd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
	runcGroup  = "root:x:0:\nalice:x:1000:\ndevs:x:2000:alice\naudio:x:2001:alice\n"
)

// busyboxRootfs returns a root filesystem with /bin/busybox and its applets,
// /bin/probe, /etc/passwd and /etc/group.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireBinary(t, "runc")
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("test needs Debian's busybox-static: %v", err)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "root", "home/alice", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 01777); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"bin/busybox": {bb, 0755},
		"bin/probe":   {probe(t), 0755},
		"etc/passwd":  {[]byte(runcPasswd), 0644},
		"etc/group":   {[]byte(runcGroup), 0644},
	} {
		if err := os.WriteFile(filepath.Join(root, name), f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"sh", "cat", "grep", "id", "ls", "echo", "touch", "wc", "head", "mount", "mknod", "hostname", "sleep", "seq", "true", "tr"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var containerSeq atomic.Int64

// run runs sh -c script in a container made by Generate from o, in a new
// network namespace, and returns its standard output. The container must
// exit 0.
func run(t *testing.T, rootfs string, img ocispec.ImageConfig, o Options, script string) string {
	t.Helper()
	id := fmt.Sprintf("berth-oci-%d-%d", os.Getpid(), containerSeq.Add(1))
	o.ID, o.CgroupsPath, o.Users = id, "/berth-test/"+id, readUsers(t, rootfs)
	o.EntrypointSet, o.Entrypoint, o.Args = true, []string{"/bin/sh", "-c"}, []string{script}
	spec, err := Generate(img, o)
	if err != nil {
		t.Fatal(err)
	}
	spec.Root.Path = rootfs
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	bundle, state := t.TempDir(), t.TempDir()
	config, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupContainer(t, state, id) })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "runc", "--root", state, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// cleanupContainer deletes the container's runc state and its cgroups.
func cleanupContainer(t *testing.T, state, id string) {
	if out, err := exec.Command("runc", "--root", state, "delete", "--force", id).CombinedOutput(); err != nil && !strings.Contains(string(out), "does not exist") {
		t.Errorf("runc delete %s: %v: %s", id, err, out)
	}
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		dir := filepath.Join(h, "berth-test", id)
		if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
			t.Errorf("remove cgroup %s: %v", dir, err)
		}
		os.Remove(filepath.Join(h, "berth-test")) // shared by concurrent test runs: fails while busy
	}
}

// fields parses "key=value" and "Key:\tvalue" lines.
func fields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		} else if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func expect(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

const statusScript = `grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; `

func TestRuncDefaults(t *testing.T) {
	rootfs := busyboxRootfs(t)
	out := run(t, rootfs, ocispec.ImageConfig{Env: []string{"FROM_IMAGE=1"}}, Options{Env: []string{"FROM_FLAG=2"}}, statusScript+`
		echo keys=$(cat /proc/keys 2>/dev/null | wc -c)
		echo timer_list=$(cat /proc/timer_list 2>/dev/null | wc -c)
		echo acpi=$(ls /proc/acpi 2>/dev/null | wc -l)
		echo firmware=$(ls /sys/firmware 2>/dev/null | wc -l)
		echo mountpoints=$(while read src dst rest; do echo -n "$dst "; done < /proc/mounts)
		(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo procsys=writable || echo procsys=readonly
		(echo 1 > /proc/sysrq-trigger) 2>/dev/null && echo sysrq=writable || echo sysrq=readonly
		f=/sys/fs/cgroup/pids.max; [ -e /sys/fs/cgroup/pids/pids.max ] && f=/sys/fs/cgroup/pids/pids.max
		(echo 1 > $f) 2>/dev/null && echo cgroupfs=writable || echo cgroupfs=readonly
		touch /ok 2>/dev/null && echo root=writable || echo root=readonly
		echo nofile=$(ulimit -n):$(ulimit -Hn)
		echo hostname=$(hostname)
		echo id=$(id -u):$(id -g)
		echo env=$FROM_IMAGE,$FROM_FLAG,$HOME,$PATH
		echo cwd=$(pwd)
		echo devices=$(ls /dev | tr '\n' ' ')
		echo null=$(echo hi > /dev/null && echo ok)
		echo urandom=$(head -c 8 /dev/urandom | wc -c)
		grep -E ' /dev/(pts|shm|mqueue) ' /proc/mounts | while read src dst typ opts rest; do echo "mount $dst=$typ $opts"; done
		grep -E ' /sys ' /proc/mounts | while read src dst typ opts rest; do echo "mount $dst=$typ ${opts%%,*}"; done
	`)
	got := fields(out)
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	expect(t, got, map[string]string{
		"CapInh": "0000000000000000", "CapPrm": "00000000000005fb", "CapEff": "00000000000005fb",
		"CapBnd": "00000000000005fb", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2",
		"keys": "0", "timer_list": "0", "acpi": "0", "firmware": "0",
		"procsys": "readonly", "sysrq": "readonly", "cgroupfs": "readonly", "root": "writable",
		"nofile": fmt.Sprintf("1024:%d", min(nofile.Max, defaultNofileHard)),
		"id":     "0:0",
		"env":    "1,2,/root," + defaultPath,
		"cwd":    "/",
		"null":   "ok", "urandom": "8",
		"mount /dev/shm": "tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k",
		"mount /sys":     "sysfs ro",
	})
	// Each masked or read-only path this kernel has is a mount point.
	for _, p := range append(slices.Clone(maskedPaths), readonlyPaths...) {
		if _, err := os.Stat(p); err == nil && !slices.Contains(strings.Fields(got["mountpoints"]), p) {
			t.Errorf("%s is not masked or read-only: mount points %s", p, got["mountpoints"])
		}
	}
	if !strings.HasPrefix(got["hostname"], "berth-oci-") {
		t.Errorf("hostname %q, want the container id", got["hostname"])
	}
	if !strings.Contains(got["mount /dev/pts"], "devpts") || !strings.Contains(got["mount /dev/pts"], "ptmxmode=666") || !strings.Contains(got["mount /dev/pts"], "gid=5") {
		t.Errorf("/dev/pts mount %q", got["mount /dev/pts"])
	}
	if !strings.HasPrefix(got["mount /dev/mqueue"], "mqueue") {
		t.Errorf("/dev/mqueue mount %q", got["mount /dev/mqueue"])
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx"} {
		if !slices.Contains(strings.Fields(got["devices"]), d) {
			t.Errorf("/dev lacks %s: %s", d, got["devices"])
		}
	}
}

func TestRuncSeccomp(t *testing.T) {
	rootfs := busyboxRootfs(t)
	const script = "/bin/probe keyctl ptrace unshare mount personality personality-query vsock inet clone3 clone-newuts exec"
	for _, tc := range []struct {
		name string
		o    Options
		want map[string]string
		not  map[string]string // results it must not have
	}{
		{
			name: "default profile",
			want: map[string]string{
				"keyctl": "EPERM", "ptrace": "EPERM", "unshare": "EPERM", "mount": "EPERM",
				"personality": "EPERM", "personality-query": "ok", "vsock": "EPERM", "inet": "ok",
				"clone3": "ENOSYS", "clone-newuts": "EPERM", "exec": "ok",
			},
		},
		{
			// Same capabilities, no filter: the refusals above that change
			// came from seccomp (mount looks its target up before checking
			// CAP_SYS_ADMIN, so it fails with ENOENT); clone(CLONE_NEWUTS)
			// still fails for want of CAP_SYS_ADMIN.
			name: "unconfined",
			o:    Options{SecurityOpt: []string{"seccomp=unconfined"}},
			want: map[string]string{
				"ptrace": "ESRCH", "unshare": "ok", "personality": "ok", "clone3": "EINVAL",
				"mount": "ENOENT", "clone-newuts": "EPERM", "exec": "ok",
			},
			not: map[string]string{"keyctl": "EPERM", "vsock": "EPERM"},
		},
		{
			name: "cap-add SYS_ADMIN",
			o:    Options{CapAdd: []string{"SYS_ADMIN"}},
			want: map[string]string{
				"mount": "ENOENT", "unshare": "ok", "clone3": "EINVAL", "clone-newuts": "ok",
				"keyctl": "EPERM", "ptrace": "EPERM", "personality": "EPERM",
			},
		},
		{
			name: "cap-add SYS_PTRACE",
			o:    Options{CapAdd: []string{"CAP_SYS_PTRACE"}},
			want: map[string]string{"ptrace": "ESRCH", "mount": "EPERM", "keyctl": "EPERM"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fields(run(t, rootfs, ocispec.ImageConfig{}, tc.o, script))
			expect(t, got, tc.want)
			for k, v := range tc.not {
				if got[k] == v || got[k] == "" {
					t.Errorf("%s = %q, want a result other than %q", k, got[k], v)
				}
			}
		})
	}
}

func TestRuncCapabilities(t *testing.T) {
	rootfs := busyboxRootfs(t)
	for _, tc := range []struct {
		name string
		o    Options
		eff  uint64
	}{
		{"cap-add", Options{CapAdd: []string{"net_raw", "CAP_SYS_CHROOT"}}, 0x5fb | 1<<13 | 1<<18},
		{"cap-drop", Options{CapDrop: []string{"chown", "KILL"}}, 0x5fb &^ (1 | 1<<5)},
		{"cap-drop ALL", Options{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}}, 1 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fields(run(t, rootfs, ocispec.ImageConfig{}, tc.o, statusScript))
			want := fmt.Sprintf("%016x", tc.eff)
			expect(t, got, map[string]string{"CapEff": want, "CapBnd": want, "CapPrm": want})
		})
	}
}

func TestRuncPrivileged(t *testing.T) {
	rootfs := busyboxRootfs(t)
	out := run(t, rootfs, ocispec.ImageConfig{}, Options{Privileged: true}, statusScript+`
		echo timer_list=$(cat /proc/timer_list 2>/dev/null | wc -c)
		echo mountpoints=$(while read src dst rest; do echo -n "$dst "; done < /proc/mounts)
		grep -E ' /sys ' /proc/mounts | while read src dst typ opts rest; do echo "sys=${opts%%,*}"; done
		mount -t tmpfs none /mnt && echo mount=ok
		echo devices=$(ls /dev | tr '\n' ' ')
		/bin/probe keyctl clone3
	`)
	got := fields(out)
	bnd := capBoundingMask(t)
	expect(t, got, map[string]string{
		"CapEff": bnd, "CapBnd": bnd, "CapPrm": bnd, "Seccomp": "0", "NoNewPrivs": "1",
		"sys": "rw", "mount": "ok", "clone3": "EINVAL",
	})
	if got["timer_list"] == "0" {
		t.Error("/proc/timer_list is masked in a privileged container")
	}
	for _, p := range append(slices.Clone(maskedPaths), readonlyPaths...) {
		if slices.Contains(strings.Fields(got["mountpoints"]), p) {
			t.Errorf("%s is masked or read-only in a privileged container", p)
		}
	}
	host, err := hostDevices("/dev")
	if err != nil {
		t.Fatal(err)
	}
	devs := strings.Fields(got["devices"])
	for _, d := range host {
		if rel := strings.TrimPrefix(d.Path, "/dev/"); !strings.Contains(rel, "/") && !slices.Contains(devs, rel) {
			t.Errorf("host device %s missing from the privileged container: %s", d.Path, got["devices"])
		}
	}
}

// capBoundingMask returns this process's CapBnd as /proc shows it.
func capBoundingMask(t *testing.T) string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return fields(string(status))["CapBnd"]
}

func TestRuncUsers(t *testing.T) {
	rootfs := busyboxRootfs(t)
	const script = statusScript + `echo id=$(id -u):$(id -g):$(id -G | tr ' ' ,); echo home=$HOME`
	for _, tc := range []struct {
		name string
		img  ocispec.ImageConfig
		o    Options
		want map[string]string
	}{
		{"name", ocispec.ImageConfig{}, Options{User: "alice"},
			map[string]string{"id": "1000:1000:1000,2000,2001", "home": "/home/alice", "CapEff": "0000000000000000", "CapBnd": "00000000000005fb"}},
		{"uid:gid", ocispec.ImageConfig{}, Options{User: "1000:2001"}, map[string]string{"id": "1000:2001:2001", "home": "/home/alice"}},
		{"uid without entry", ocispec.ImageConfig{}, Options{User: "4242"}, map[string]string{"id": "4242:0:0", "home": "/"}},
		{"image user", ocispec.ImageConfig{User: "alice:devs"}, Options{}, map[string]string{"id": "1000:2000:2000"}},
		{"flag overrides image user", ocispec.ImageConfig{User: "alice"}, Options{User: "0"}, map[string]string{"id": "0:0:0", "home": "/root", "CapEff": "00000000000005fb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, fields(run(t, rootfs, tc.img, tc.o, script)), tc.want)
		})
	}
}

func TestRuncMounts(t *testing.T) {
	rootfs := busyboxRootfs(t)
	ro, rw := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "hello"), []byte("from the host"), 0644); err != nil {
		t.Fatal(err)
	}
	vro, err := ParseVolume(ro + ":/ro:ro")
	if err != nil {
		t.Fatal(err)
	}
	vrw, err := ParseVolume(rw + ":/rw")
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := ParseTmpfs("/scratch:size=1m,mode=700")
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, rootfs, ocispec.ImageConfig{}, Options{ReadOnly: true, Mounts: []Mount{vro, vrw, tmp}}, `
		touch /x 2>/dev/null && echo root=writable || echo root=readonly
		echo hello=$(cat /ro/hello)
		touch /ro/x 2>/dev/null && echo ro=writable || echo ro=readonly
		echo written > /rw/out && echo rw=writable
		touch /scratch/x && echo scratch=writable
		grep ' /scratch ' /proc/mounts | while read src dst typ opts rest; do echo "scratch-mount=$typ $opts"; done
		grep ' /ro ' /proc/mounts | while read src dst typ opts rest; do echo "ro-mount=${opts%%,*}"; done
	`)
	expect(t, fields(out), map[string]string{
		"root": "readonly", "hello": "from the host", "ro": "readonly", "rw": "writable", "scratch": "writable",
		"scratch-mount": "tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=700", "ro-mount": "ro",
	})
	if data, err := os.ReadFile(filepath.Join(rw, "out")); err != nil || string(data) != "written\n" {
		t.Errorf("file written to the rw bind mount: %q, %v", data, err)
	}
}

func TestRuncDeviceCgroup(t *testing.T) {
	rootfs := busyboxRootfs(t)
	dev, err := ParseTmpfs("/devtest:dev")
	if err != nil {
		t.Fatal(err)
	}
	// With CAP_MKNOD the container can make any node, and the device
	// cgroup decides which it may open.
	out := run(t, rootfs, ocispec.ImageConfig{}, Options{CapAdd: []string{"MKNOD"}, Mounts: []Mount{dev}}, `
		mknod /devtest/null c 1 3 && mknod /devtest/mem c 1 1 && mknod /devtest/sda b 8 0 || exit 1
		echo x > /devtest/null 2>/dev/null && echo null=ok || echo null=denied
		head -c 1 /devtest/mem > /dev/null 2>&1 && echo mem=ok || echo mem=denied
		head -c 1 /devtest/sda > /dev/null 2>&1 && echo sda=ok || echo sda=denied
	`)
	expect(t, fields(out), map[string]string{"null": "ok", "mem": "denied", "sda": "denied"})
}

func TestRuncResources(t *testing.T) {
	rootfs := busyboxRootfs(t)
	o := Options{Resources: Resources{MemoryBytes: 64 << 20, PidsLimit: 8, CPUs: 0.5, CPUShares: 512}}
	unified := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		unified = true
	}
	script := `
		echo memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
		echo pids=$(cat /sys/fs/cgroup/pids/pids.max)
		echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)/$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
		echo shares=$(cat /sys/fs/cgroup/cpu/cpu.shares)
	`
	want := map[string]string{"memory": "67108864", "pids": "8", "quota": "50000/100000", "shares": "512"}
	if unified {
		script = `
			echo memory=$(cat /sys/fs/cgroup/memory.max)
			echo pids=$(cat /sys/fs/cgroup/pids.max)
			echo quota=$(cat /sys/fs/cgroup/cpu.max | tr ' ' /)
		`
		delete(want, "shares")
	}
	// The pids limit is enforced: a subshell starting 12 sleeps fails to
	// fork before the last.
	script += `
		echo forkfailed=$( (for i in $(seq 12); do sleep 1 & done; wait) 2>&1 | grep -c "can't fork")
	`
	want["forkfailed"] = "1"
	expect(t, fields(run(t, rootfs, ocispec.ImageConfig{}, o, script)), want)
}
