package cgroups

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

// testCgroup is a cgroup a test made by hand, as runc would, under a unique
// "/berth-test-<rand>" path.
type testCgroup struct {
	path string
	dirs []string // one per hierarchy the test created it in
}

// v1Mounts returns the host's cgroup v1 hierarchies; the test is skipped
// on a host without them (Unified layout).
func v1Mounts(t testing.TB) []v1Mount {
	t.Helper()
	if DetectMode() == Unified {
		t.Skip("host has no cgroup v1 hierarchies (unified layout)")
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts := parseMountinfo(string(data))
	if len(mounts) == 0 {
		t.Fatal("DetectMode says v1 but mountinfo lists no cgroup v1 hierarchy")
	}
	return mounts
}

// v2Mount returns where the host's cgroup2 hierarchy is mounted; the test
// is skipped on a Legacy host.
func v2Mount(t testing.TB) string {
	t.Helper()
	switch DetectMode() {
	case Unified:
		return mountRoot
	case Hybrid:
		return unifiedMount
	}
	t.Skip("host has no cgroup2 hierarchy (legacy layout)")
	return ""
}

func uniquePath() string {
	return "/berth-test-" + rand.Text()[:12]
}

// newTestCgroup creates a cgroup in each of the given hierarchy mount
// points and, when t ends, kills what is left in it and removes it.
func newTestCgroup(t testing.TB, mountpoints []string) *testCgroup {
	t.Helper()
	tc := &testCgroup{path: uniquePath()}
	for _, mp := range mountpoints {
		dir := filepath.Join(mp, tc.path)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		tc.dirs = append(tc.dirs, dir)
		// A v1 cpuset cgroup takes no process until given CPUs and memory
		// nodes; runc copies its parent's.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if parent, err := os.ReadFile(filepath.Join(mp, f)); err == nil {
				writeFile(t, filepath.Join(dir, f), string(parent))
			}
		}
	}
	t.Cleanup(func() {
		c, err := Load(tc.path)
		if errdefs.IsNotFound(err) {
			return
		}
		if err == nil {
			err = errors.Join(c.Kill(), c.Delete())
		}
		if err != nil {
			t.Errorf("clean up cgroup %s: %v", tc.path, err)
		}
	})
	return tc
}

// newV1Cgroup creates a test cgroup in every v1 hierarchy and, on a Hybrid
// host, in the cgroup2 hierarchy too, as runc does with the cgroupfs
// driver.
func newV1Cgroup(t testing.TB) *testCgroup {
	t.Helper()
	mps := v1Mountpoints(t)
	if DetectMode() == Hybrid {
		mps = append(mps, unifiedMount)
	}
	return newTestCgroup(t, mps)
}

// newLegacyCgroup creates a test cgroup in the v1 hierarchies only, as on
// a Legacy host.
func newLegacyCgroup(t testing.TB) *testCgroup {
	t.Helper()
	return newTestCgroup(t, v1Mountpoints(t))
}

func v1Mountpoints(t testing.TB) []string {
	var mps []string
	for _, m := range v1Mounts(t) {
		mps = append(mps, m.mountpoint)
	}
	return mps
}

// dir returns the test cgroup's directory in the v1 hierarchy of
// controller.
func (tc *testCgroup) dir(t testing.TB, controller string) string {
	t.Helper()
	for _, m := range v1Mounts(t) {
		if slices.Contains(m.options, controller) {
			return filepath.Join(m.mountpoint, tc.path)
		}
	}
	t.Fatalf("controller %s is not mounted", controller)
	return ""
}

func writeFile(t testing.TB, name, value string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(value), 0); err != nil {
		t.Fatal(err)
	}
}

// testProc is a busybox shell started outside the cgroup, moved into each
// of its directories, and only then let run its script.
type testProc struct {
	cmd     *exec.Cmd
	out     *bufio.Reader // the script's stdout
	exited  chan struct{} // closed once the shell is waited for
	waitErr error         // cmd.Wait's result, set before exited closes
}

// start runs script under /bin/busybox sh in the test cgroup: the shell
// waits on its stdin until its pid is in every directory's cgroup.procs.
// When t ends the process is killed if still there and waited for.
func (tc *testCgroup) start(t testing.TB, script string) *testProc {
	t.Helper()
	bb := testutil.RequireBinary(t, "busybox")
	cmd := exec.Command(bb, "sh", "-c", "read go; "+script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Not StdoutPipe: Wait, which runs in the background, would close it
	// before a script that exits at once has been read.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdout.Close() })
	cmd.Stdout = w
	p := startProc(t, cmd)
	w.Close()
	p.out = bufio.NewReader(stdout)
	for _, dir := range tc.dirs {
		writeFile(t, filepath.Join(dir, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid))
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	return p
}

// startProc starts cmd and waits for it in the background; when t ends the
// process is killed if still there and waited for.
func startProc(t testing.TB, cmd *exec.Cmd) *testProc {
	t.Helper()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &testProc{cmd: cmd, exited: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p
}

// line reads one line the script printed.
func (p *testProc) line(t testing.TB) string {
	t.Helper()
	l, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("read script output: %v", err)
	}
	return strings.TrimSpace(l)
}

// wait waits for the shell to exit and returns cmd.Wait's error.
func (p *testProc) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(30 * time.Second):
		t.Fatal("script did not exit within 30s")
		return nil
	}
}

func TestLoadMissingIsNotFound(t *testing.T) {
	testutil.RequirePrivileged(t)
	path := uniquePath()
	if _, err := Load(path); !errdefs.IsNotFound(err) {
		t.Errorf("Load(%s) = %v, want not found", path, err)
	}
	if _, err := OOMKills(path); !errdefs.IsNotFound(err) {
		t.Errorf("OOMKills(%s) = %v, want not found", path, err)
	}
}

func TestDetectModeMatchesMountinfo(t *testing.T) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	fsType := map[string]string{}
	for line := range strings.Lines(string(data)) {
		pre, post, _ := strings.Cut(line, " - ")
		if f, g := strings.Fields(pre), strings.Fields(post); len(f) > 4 && len(g) > 0 {
			fsType[f[4]] = g[0]
		}
	}
	want := Legacy
	switch {
	case fsType[mountRoot] == "cgroup2":
		want = Unified
	case fsType[unifiedMount] == "cgroup2":
		want = Hybrid
	}
	if got := DetectMode(); got != want {
		t.Errorf("DetectMode() = %v, mountinfo says %v", got, want)
	}
}

func TestStatsV1(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newV1Cgroup(t)
	const memLimit, pidsLimit = 64 << 20, 50
	writeFile(t, filepath.Join(tc.dir(t, "memory"), "memory.limit_in_bytes"), strconv.Itoa(memLimit))
	writeFile(t, filepath.Join(tc.dir(t, "pids"), "pids.max"), strconv.Itoa(pidsLimit))
	writeFile(t, filepath.Join(tc.dir(t, "cpu"), "cpu.cfs_period_us"), "100000")
	writeFile(t, filepath.Join(tc.dir(t, "cpu"), "cpu.cfs_quota_us"), "20000")

	// Charge some anonymous memory once placed, then say so and spin.
	p := tc.start(t, `x=$(head -c 4000000 /dev/zero | tr "\0" a); echo ready; while :; do :; done`)
	if got := p.line(t); got != "ready" {
		t.Fatalf("script said %q", got)
	}
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	m := s1.Memory
	if m.Usage == 0 || m.Limit != memLimit || m.RSS == 0 || m.MaxUsage < m.Usage || m.WorkingSet > m.Usage || m.OOMKills != 0 {
		t.Errorf("memory stats %+v, want usage, rss > 0, limit %d, max usage >= usage >= working set, no oom kills", m, memLimit)
	}
	if s1.Pids.Current < 1 || s1.Pids.Limit != pidsLimit {
		t.Errorf("pids stats %+v, want current >= 1, limit %d", s1.Pids, pidsLimit)
	}

	// The busy loop is held to 20% of a CPU: usage grows and it is
	// throttled.
	var s2 *Stats
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if s2, err = c.Stats(); err != nil {
			t.Fatal(err)
		}
		if s2.CPU.UsageNanos > s1.CPU.UsageNanos+50e6 && s2.CPU.ThrottledPeriods > 0 {
			break
		}
	}
	cpu := s2.CPU
	if cpu.UsageNanos < s1.CPU.UsageNanos+50e6 || cpu.ThrottledPeriods == 0 || cpu.ThrottledNanos == 0 || cpu.Periods < cpu.ThrottledPeriods {
		t.Errorf("cpu stats %+v after %+v, want usage up by >= 50ms and throttling", cpu, s1.CPU)
	}
	// User and system time are sampled at ticks (10ms), usage is exact.
	if cpu.UserNanos == 0 || cpu.UserNanos+cpu.SystemNanos > cpu.UsageNanos+50e6 {
		t.Errorf("cpu stats %+v, want user > 0 and user+system about usage", cpu)
	}
}

// TestStatsV1CountsBlockIO does 1 MiB of direct (uncached) I/O each way on
// the disk under the test's temporary directory. Since Linux 6.9 the v1
// blkio.throttle counters count only on a disk with a throttling rule, so
// the test sets one far above any real rate, as a container with a
// blkio limit has.
func TestStatsV1CountsBlockIO(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newV1Cgroup(t)
	tmp := t.TempDir()
	disk := diskOf(t, tmp)
	writeFile(t, filepath.Join(tc.dir(t, "blkio"), "blkio.throttle.read_bps_device"), disk+" 1099511627776")
	f := filepath.Join(tmp, "io")
	p := tc.start(t, `dd if=/dev/zero of=`+f+` bs=65536 count=16 oflag=direct 2>/dev/null &&
		dd if=`+f+` of=/dev/null bs=65536 count=16 iflag=direct 2>/dev/null && echo ready`)
	if got := p.line(t); got != "ready" {
		t.Fatalf("script said %q", got)
	}
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if io := s.IO; io.ReadBytes < 1<<20 || io.WriteBytes < 1<<20 || io.ReadOps < 16 || io.WriteOps < 16 {
		t.Errorf("io stats %+v, want >= 1 MiB and >= 16 ops each way", io)
	}
}

// diskOf returns "major:minor" of the whole disk that holds path, skipping
// the test if path is not on a block device.
func diskOf(t testing.TB, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	sys := filepath.Join("/sys/dev/block", dev)
	if _, err := os.Stat(sys); err != nil {
		t.Skipf("%s is not on a block device (%s): no block I/O to count", path, dev)
	}
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		data, err := os.ReadFile(filepath.Join(sys, "..", "dev"))
		if err != nil {
			t.Fatal(err)
		}
		dev = strings.TrimSpace(string(data))
	}
	return dev
}

func TestProcsListsSubtree(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newV1Cgroup(t)
	// A grandchild in a child cgroup of the freezer hierarchy only.
	sub := filepath.Join(tc.dir(t, "freezer"), "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	p := tc.start(t, `sleep 1000 & echo $!; read x`)
	grandchild, err := strconv.Atoi(p.line(t))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sub, "cgroup.procs"), strconv.Itoa(grandchild))
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Procs()
	if err != nil {
		t.Fatal(err)
	}
	want := []int{p.cmd.Process.Pid, grandchild}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Procs() = %v, want %v", got, want)
	}
}

func TestOOMKillsCountsKillAtMemoryLimit(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newV1Cgroup(t)
	writeFile(t, filepath.Join(tc.dir(t, "memory"), "memory.limit_in_bytes"), strconv.Itoa(16<<20))
	if n, err := OOMKills(tc.path); err != nil || n != 0 {
		t.Fatalf("OOMKills before = %d, %v; want 0", n, err)
	}
	p := tc.start(t, `x=$(head -c 200000000 /dev/zero | tr "\0" a)`)
	var exit *exec.ExitError
	if err := p.wait(t); !errors.As(err, &exit) {
		t.Fatalf("script exited with %v, want it killed", err)
	}
	n, err := OOMKills(tc.path)
	if err != nil || n < 1 {
		t.Errorf("OOMKills after = %d, %v; want >= 1", n, err)
	}
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.OOMKills != n || s.Memory.MaxUsage < 15<<20 {
		t.Errorf("memory stats %+v, want %d oom kills and max usage near the 16 MiB limit", s.Memory, n)
	}
}

// TestKillLegacyFreezesAndKillsAll kills a cgroup without a cgroup2
// directory, so without cgroup.kill: Kill must freeze with the v1 freezer.
func TestKillLegacyFreezesAndKillsAll(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newLegacyCgroup(t)
	// A shell that keeps forking, and a grandchild in a child cgroup.
	sub := filepath.Join(tc.dir(t, "pids"), "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	p := tc.start(t, `sleep 1000 & echo $!; while :; do sleep 1000 & sleep 0.01; done`)
	grandchild := p.line(t)
	writeFile(t, filepath.Join(sub, "cgroup.procs"), grandchild)
	time.Sleep(100 * time.Millisecond)
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	if pids, err := c.Procs(); err != nil || len(pids) < 3 {
		t.Fatalf("Procs() before Kill = %v, %v; want >= 3 processes", pids, err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if pids, err := c.Procs(); err != nil || len(pids) != 0 {
		t.Errorf("Procs() after Kill = %v, %v; want none", pids, err)
	}
	if err := p.wait(t); !killed(err) {
		t.Errorf("shell exited with %v, want SIGKILL", err)
	}
	state, err := os.ReadFile(filepath.Join(tc.dir(t, "freezer"), "freezer.state"))
	if err != nil || strings.TrimSpace(string(state)) != "THAWED" {
		t.Errorf("freezer.state after Kill = %q, %v; want THAWED", state, err)
	}
}

func killed(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func TestDeleteRemovesAllDirs(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newV1Cgroup(t)
	for _, dir := range tc.dirs {
		if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := tc.start(t, `echo ready; read x`)
	p.line(t)
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.dirs(); !slices.Equal(got, tc.dirs) {
		t.Fatalf("Load found dirs %v, want %v", got, tc.dirs)
	}
	if err := c.Delete(); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Delete with a process in it = %v, want failed precondition", err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range tc.dirs {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Delete: %v, want not exist", dir, err)
		}
	}
	if c.Exists() {
		t.Error("Exists() after Delete = true")
	}
	if err := c.Delete(); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	if err := c.Kill(); err != nil {
		t.Errorf("Kill after Delete = %v, want nil", err)
	}
	if _, err := c.Stats(); !errdefs.IsNotFound(err) {
		t.Errorf("Stats after Delete = %v, want not found", err)
	}
}

// newV2Cgroup creates a test cgroup in the cgroup2 hierarchy only (on this
// hybrid host, /sys/fs/cgroup/unified), so that Load treats it as v2.
func newV2Cgroup(t testing.TB) *testCgroup {
	t.Helper()
	return newTestCgroup(t, []string{v2Mount(t)})
}

// startInto starts script in the cgroup2 directory dir with
// CLONE_INTO_CGROUP, as runc can on v2.
func startInto(t testing.TB, dir, script string) *testProc {
	t.Helper()
	bb := testutil.RequireBinary(t, "busybox")
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command(bb, "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	return startProc(t, cmd)
}

func TestStatsV2(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newV2Cgroup(t)
	p := startInto(t, tc.dirs[0], `while :; do :; done`)
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	if !c.isV2() {
		t.Fatalf("cgroup %s with only a cgroup2 directory is not read as v2", tc.path)
	}
	pids, err := c.Procs()
	if err != nil || !slices.Equal(pids, []int{p.cmd.Process.Pid}) {
		t.Fatalf("Procs() = %v, %v; want [%d]", pids, err, p.cmd.Process.Pid)
	}
	s1, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	s2, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s2.CPU.UsageNanos < s1.CPU.UsageNanos+10e6 || s2.CPU.UserNanos == 0 {
		t.Errorf("cpu stats %+v after %+v, want usage up by >= 10ms", s2.CPU, s1.CPU)
	}
	controllers, err := os.ReadFile(filepath.Join(tc.dirs[0], "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgroup2 controllers available: %q", strings.TrimSpace(string(controllers)))
	if slices.Contains(strings.Fields(string(controllers)), "memory") && s2.Memory.Usage == 0 {
		t.Errorf("memory controller present but memory stats %+v", s2.Memory)
	}
	if slices.Contains(strings.Fields(string(controllers)), "pids") && s2.Pids.Current == 0 {
		t.Errorf("pids controller present but pids stats %+v", s2.Pids)
	}
}

func TestFreezeV2(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newV2Cgroup(t)
	startInto(t, tc.dirs[0], `while :; do :; done`)
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	frozen := func() uint64 {
		data, err := os.ReadFile(filepath.Join(tc.dirs[0], "cgroup.events"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := keyedValue("cgroup.events", string(data), "frozen")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	thaw, err := c.freeze()
	if err != nil {
		t.Fatal(err)
	}
	if got := frozen(); got != 1 {
		t.Errorf("cgroup.events frozen = %d after freeze, want 1", got)
	}
	if err := thaw(); err != nil {
		t.Fatal(err)
	}
	if got := frozen(); got != 0 {
		t.Errorf("cgroup.events frozen = %d after thaw, want 0", got)
	}
}

func TestKillV2(t *testing.T) {
	testutil.RequirePrivileged(t)
	tc := newV2Cgroup(t)
	if _, err := os.Stat(filepath.Join(tc.dirs[0], "cgroup.kill")); err != nil {
		t.Logf("no cgroup.kill (%v): Kill freezes and signals", err)
	}
	p := startInto(t, tc.dirs[0], `while :; do sleep 1000 & sleep 0.01; done`)
	time.Sleep(100 * time.Millisecond)
	c, err := Load(tc.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if pids, err := c.Procs(); err != nil || len(pids) != 0 {
		t.Errorf("Procs() after Kill = %v, %v; want none", pids, err)
	}
	if err := p.wait(t); !killed(err) {
		t.Errorf("shell exited with %v, want SIGKILL", err)
	}
	if err := c.Delete(); err != nil {
		t.Fatal(err)
	}
	if c.Exists() {
		t.Error("Exists() after Delete = true")
	}
}

// BenchmarkStats reads the statistics of a cgroup with a process in it,
// as the daemon does for each container on `berth stats` and on each
// Prometheus scrape.
func BenchmarkStats(b *testing.B) {
	testutil.RequirePrivileged(b)
	var tc *testCgroup
	if DetectMode() == Unified {
		tc = newTestCgroup(b, []string{mountRoot})
	} else {
		tc = newV1Cgroup(b)
	}
	p := tc.start(b, `echo ready; read x`)
	p.line(b)
	c, err := Load(tc.path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Stats(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad finds a cgroup's directories, as OOMKills does per call.
func BenchmarkLoad(b *testing.B) {
	testutil.RequirePrivileged(b)
	tc := newTestCgroup(b, []string{v2Mount(b)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(tc.path); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRuntimeContainerCgroup runs a real container with runc and with crun
// and reads, kills and removes the cgroup the runtime made from the spec.
func TestRuntimeContainerCgroup(t *testing.T) {
	for _, runtime := range []string{"runc", "crun"} {
		t.Run(runtime, func(t *testing.T) {
			testutil.RequirePrivileged(t)
			bin := testutil.RequireBinary(t, runtime)
			bb := testutil.RequireBinary(t, "busybox")
			if runtime == "crun" && DetectMode() == Hybrid {
				// crun refuses a Hybrid host whose cgroup2 has controllers
				// ("cgroups in hybrid mode not supported").
				if data, _ := os.ReadFile(filepath.Join(unifiedMount, "cgroup.controllers")); len(strings.TrimSpace(string(data))) > 0 {
					t.Skipf("crun does not run on a hybrid host with cgroup2 controllers (%s)", strings.TrimSpace(string(data)))
				}
			}
			path := uniquePath()
			id := strings.TrimPrefix(path, "/")
			const memLimit, pidsLimit = 64 << 20, 50

			bundle, root := t.TempDir(), t.TempDir()
			// run runs the runtime with its output in a file, not a pipe:
			// a detached container keeps the runtime's stdio open.
			run := func(args ...string) []byte {
				t.Helper()
				out, err := os.CreateTemp(bundle, "out")
				if err != nil {
					t.Fatal(err)
				}
				defer out.Close()
				cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
				cmd.Stdout, cmd.Stderr = out, out
				err = cmd.Run()
				data, rerr := os.ReadFile(out.Name())
				if err != nil || rerr != nil {
					t.Fatalf("%s %s: %v: %s", runtime, strings.Join(args, " "), errors.Join(err, rerr), data)
				}
				return data
			}
			rootfs := filepath.Join(bundle, "rootfs")
			if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(bb)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, applet := range []string{"sh", "sleep"} {
				if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bin, "spec")
			cmd.Dir = bundle
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s spec: %v: %s", runtime, err, out)
			}
			var spec map[string]any
			specFile := filepath.Join(bundle, "config.json")
			if data, err = os.ReadFile(specFile); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &spec); err != nil {
				t.Fatal(err)
			}
			proc := spec["process"].(map[string]any)
			proc["terminal"] = false
			// The shell runs one sleep and execs the other.
			proc["args"] = []string{"sh", "-c", "sleep 1000 & sleep 1000"}
			linux := spec["linux"].(map[string]any)
			linux["cgroupsPath"] = path
			linux["resources"] = map[string]any{
				"memory": map[string]any{"limit": memLimit},
				"pids":   map[string]any{"limit": pidsLimit},
			}
			if data, err = json.Marshal(spec); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(specFile, data, 0o644); err != nil {
				t.Fatal(err)
			}

			run("run", "-d", "--bundle", bundle, id)
			t.Cleanup(func() {
				run("delete", "--force", id)
				if _, err := Load(path); err == nil {
					t.Errorf("cgroup %s left after the test", path)
				}
			})
			var state struct {
				Pid    int    `json:"pid"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal(run("state", id), &state); err != nil {
				t.Fatal(err)
			}

			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var pids []int
			for deadline := time.Now().Add(5 * time.Second); len(pids) < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if pids, err = c.Procs(); err != nil {
					t.Fatal(err)
				}
			}
			if len(pids) != 2 || !slices.Contains(pids, state.Pid) {
				t.Errorf("Procs() = %v, want the container's init %d and its child", pids, state.Pid)
			}
			s, err := c.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if s.Memory.Limit != memLimit || s.Memory.Usage == 0 || s.Pids.Limit != pidsLimit || s.Pids.Current != 2 {
				t.Errorf("stats memory %+v pids %+v, want limits %d and %d from the spec, 2 pids", s.Memory, s.Pids, memLimit, pidsLimit)
			}
			if n, err := OOMKills(path); err != nil || n != 0 {
				t.Errorf("OOMKills = %d, %v; want 0", n, err)
			}

			if err := c.Kill(); err != nil {
				t.Fatal(err)
			}
			if pids, err := c.Procs(); err != nil || len(pids) != 0 {
				t.Errorf("Procs() after Kill = %v, %v; want none", pids, err)
			}
			if err := json.Unmarshal(run("state", id), &state); err != nil || state.Status != "stopped" {
				t.Errorf("container state after Kill = %q, %v; want stopped", state.Status, err)
			}
			if err := c.Delete(); err != nil {
				t.Fatal(err)
			}
			if c.Exists() {
				t.Error("Exists() after Delete = true")
			}
		})
	}
}
