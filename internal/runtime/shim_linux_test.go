package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// busyboxApplets get a symlink to /bin/busybox in the test root filesystem.
var busyboxApplets = []string{"sh", "echo", "cat", "sleep", "true", "false", "id", "ls", "stty", "head", "tr", "printf", "seq", "tty"}

// testTask is one container's task directory and the options to start its
// shim with.
type testTask struct {
	opts StartOptions
	spec *specs.Spec
}

// cgroupParent holds the test containers' cgroups.
const cgroupParent = "/berth-test"

// newTestTask prepares a task directory: a busybox root filesystem and a
// config.json running args, with the namespaces, mounts and cgroup a real
// container has. The runtime state, log and cgroup are test-unique and
// removed with the test.
func newTestTask(t *testing.T, runtimeName string, args ...string) *testTask {
	t.Helper()
	testutil.RequirePrivileged(t)
	rtPath := testutil.RequireBinary(t, runtimeName)
	if shimBinary == "" {
		t.Fatal("berth-shim was not built")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	id := "shimtest-" + hex.EncodeToString(rnd[:])
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	makeRootfs(t, filepath.Join(dir, "rootfs"))
	tt := &testTask{
		opts: StartOptions{
			ShimPath:    shimBinary,
			ID:          id,
			Bundle:      dir,
			Runtime:     rtPath,
			RuntimeRoot: t.TempDir(),
			LogPath:     filepath.Join(t.TempDir(), "container.log"),
		},
		spec: testSpec(id, args),
	}
	t.Cleanup(func() {
		// Whatever the test left: the runtime's container (and so its
		// processes and cgroup) and the shim.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ForceDelete(ctx, DeleteOptions{ShimPath: shimBinary, Runtime: rtPath, RuntimeRoot: tt.opts.RuntimeRoot, ID: id}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, shimapi.PidFile)); err == nil {
			if pid, err := strconv.Atoi(string(b)); err == nil && processAlive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return tt
}

func makeRootfs(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("test needs busybox-static: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
}

func testSpec(id string, args []string) *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"}
	return &specs.Spec{
		// crun 1.8 knows versions up to 1.1.
		Version: "1.0.2",
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin", "TERM=xterm"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "berth-test",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupParent + "/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// start writes config.json and starts the shim.
func (tt *testTask) start(t *testing.T) *Shim {
	t.Helper()
	s, err := tt.tryStart(t)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (tt *testTask) tryStart(t *testing.T) (*Shim, error) {
	t.Helper()
	tt.spec.Process.Terminal = tt.opts.TTY
	b, err := json.Marshal(tt.spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tt.opts.Bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return StartShim(testContext(t), tt.opts)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deleteTask deletes the stopped init and checks that the shim exits and
// leaves neither its socket nor the runtime's state behind.
func deleteTask(t *testing.T, tt *testTask, s *Shim) shimapi.Exit {
	t.Helper()
	e, err := s.Client().Delete(testContext(t), "")
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	waitDone(t, s)
	if _, err := os.Stat("/proc/" + strconv.Itoa(s.Pid())); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("shim process after it exited: %v, want it reaped", err)
	}
	if _, err := os.Stat(filepath.Join(tt.opts.Bundle, shimapi.SocketFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after delete: %v, want it gone", err)
	}
	if _, err := os.Stat(filepath.Join(tt.opts.RuntimeRoot, tt.opts.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("runtime state after delete: %v, want it gone", err)
	}
	return e
}

func waitDone(t *testing.T, s *Shim) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("shim did not exit")
	}
}

func wait(t *testing.T, s *Shim, id string) shimapi.Exit {
	t.Helper()
	e, err := s.Client().Wait(testContext(t), id)
	if err != nil {
		t.Fatalf("wait %q: %v", id, err)
	}
	return e
}

func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// A zombie is dead for our purposes: state Z after the command.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cgroupProcs returns the pids in the container's memory cgroup, and false
// when the cgroup does not exist.
func cgroupProcs(t *testing.T, id string) ([]int, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", cgroupParent, id, "cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	return pids, true
}

func TestShimExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		start bool // --start rather than create, then start
		kill  syscall.Signal
		want  int
	}{
		{name: "zero", args: []string{"true"}, start: true, want: 0},
		{name: "three", args: []string{"sh", "-c", "exit 3"}, want: 3},
		{name: "sigkill", args: []string{"sleep", "100"}, start: true, kill: syscall.SIGKILL, want: 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := newTestTask(t, "runc", tc.args...)
			tt.opts.Start = tc.start
			s := tt.start(t)
			ctx := testContext(t)
			if s.InitPid() <= 0 {
				t.Fatalf("init pid %d", s.InitPid())
			}
			if !tc.start {
				st, err := s.Client().State(ctx, "")
				if err != nil || st.Status != shimapi.StatusCreated {
					t.Fatalf("state before start = %+v, %v; want created", st, err)
				}
				if _, err := s.Client().Start(ctx, ""); err != nil {
					t.Fatal(err)
				}
			}
			if tc.kill != 0 {
				if err := s.Client().Kill(ctx, "", tc.kill); err != nil {
					t.Fatal(err)
				}
			}
			e := wait(t, s, "")
			if e.Status != tc.want || e.Pid != s.InitPid() || e.ExitedAt.IsZero() || e.Reason != "" {
				t.Errorf("exit = %+v, want status %d of pid %d", e, tc.want, s.InitPid())
			}
			st, err := s.Client().State(ctx, "")
			if err != nil || st.Status != shimapi.StatusStopped || st.Exit == nil || st.Exit.Status != tc.want {
				t.Errorf("state after exit = %+v, %v", st, err)
			}
			if got := deleteTask(t, tt, s); got != e {
				t.Errorf("delete returned %+v, want %+v", got, e)
			}
		})
	}
}

func TestShimKillAllReachesEveryProcess(t *testing.T) {
	tt := newTestTask(t, "runc", "sh", "-c", "sleep 1000 & sleep 1000 & wait")
	tt.opts.Start = true
	s := tt.start(t)
	var pids []int
	eventually(t, "three processes in the cgroup", func() bool {
		pids, _ = cgroupProcs(t, tt.opts.ID)
		return len(pids) == 3
	})
	if err := s.Client().KillAll(testContext(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, s, ""); e.Status != 137 {
		t.Errorf("exit status %d, want 137", e.Status)
	}
	for _, pid := range pids {
		eventually(t, fmt.Sprintf("pid %d gone", pid), func() bool { return !processAlive(pid) })
	}
	// Killing what has exited is "not found", in both vocabularies.
	err := s.Client().Kill(testContext(t), "", syscall.SIGTERM)
	if !errors.Is(err, shimapi.ErrNotFound) || !errors.Is(fromShim(err), errdefs.ErrNotFound) {
		t.Errorf("kill after exit: %v, want not found", err)
	}
	deleteTask(t, tt, s)
	if _, ok := cgroupProcs(t, tt.opts.ID); ok {
		t.Error("cgroup still exists after delete")
	}
}

// logLine is one entry of a CRI log.
var logLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$`)

type logEntry struct {
	stream, tag, text string
}

func readLog(t *testing.T, path string) []logEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []logEntry
	for line := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		m := logLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("log line not in CRI format: %q", line)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("log timestamp %q: %v", m[1], err)
		}
		entries = append(entries, logEntry{m[2], m[3], m[4]})
	}
	return entries
}

func TestShimWritesCRILog(t *testing.T) {
	tt := newTestTask(t, "runc", "sh", "-c",
		`echo out1; echo err1 >&2; head -c 20000 /dev/zero | tr '\0' a; echo; echo " two  spaces "; printf 'no newline'`)
	tt.opts.Start = true
	s := tt.start(t)
	if e := wait(t, s, ""); e.Status != 0 {
		t.Fatalf("exit %+v", e)
	}
	long := strings.Repeat("a", 20000)
	want := map[string][]logEntry{
		"stdout": {
			{"stdout", "F", "out1"},
			{"stdout", "P", long[:16384]},
			{"stdout", "F", long[16384:]},
			{"stdout", "F", " two  spaces "},
			{"stdout", "F", "no newline"},
		},
		"stderr": {{"stderr", "F", "err1"}},
	}
	got := map[string][]logEntry{}
	for _, e := range readLog(t, tt.opts.LogPath) {
		got[e.stream] = append(got[e.stream], e)
	}
	for stream, w := range want {
		if !slices.Equal(got[stream], w) {
			t.Errorf("%s entries:\n got %.200q\nwant %.200q", stream, got[stream], w)
		}
	}
	deleteTask(t, tt, s)
}

func TestShimRotatesCRILog(t *testing.T) {
	const maxSize, maxFiles, lines = 4096, 3, 400
	tt := newTestTask(t, "runc", "sh", "-c", fmt.Sprintf("seq 1 %d", lines))
	tt.opts.Start = true
	tt.opts.LogMaxSize, tt.opts.LogMaxFiles = maxSize, maxFiles
	s := tt.start(t)
	if e := wait(t, s, ""); e.Status != 0 {
		t.Fatalf("exit %+v", e)
	}
	var texts []string
	for i := maxFiles - 1; i >= 0; i-- {
		path := tt.opts.LogPath
		if i > 0 {
			path += "." + strconv.Itoa(i)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("log file %d: %v", i, err)
		}
		if fi.Size() > maxSize {
			t.Errorf("%s is %d bytes, over %d", path, fi.Size(), maxSize)
		}
		for _, e := range readLog(t, path) {
			texts = append(texts, e.text)
		}
	}
	if _, err := os.Stat(tt.opts.LogPath + "." + strconv.Itoa(maxFiles)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("log file %d exists (%v), want at most %d files", maxFiles, err, maxFiles)
	}
	// The files hold the last lines, in order, without a gap.
	first, _ := strconv.Atoi(texts[0])
	if first <= 1 {
		t.Errorf("first kept line is %d: nothing was rotated away", first)
	}
	for i, text := range texts {
		if text != strconv.Itoa(first+i) {
			t.Fatalf("line %d is %q, want %d", i, text, first+i)
		}
	}
	if texts[len(texts)-1] != strconv.Itoa(lines) {
		t.Errorf("last line %q, want %d", texts[len(texts)-1], lines)
	}
	// reopen-log starts a new file after someone renamed the log away.
	if err := os.Rename(tt.opts.LogPath, tt.opts.LogPath+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().ReopenLog(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tt.opts.LogPath); err != nil {
		t.Errorf("log after reopen: %v", err)
	}
	deleteTask(t, tt, s)
}

// collected is the output of an attach stream, copied in the background.
type collected struct {
	stdout, stderr testutil.Buffer
	err            error
	done           chan struct{}
}

func collect(a *shimapi.Attach) *collected {
	c := &collected{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = a.Output(&c.stdout, &c.stderr)
	}()
	return c
}

// wait waits for the output to end.
func (c *collected) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("attach output did not end")
	}
	if c.err != nil {
		t.Fatalf("attach output: %v", c.err)
	}
}

// waitFor waits until stdout holds s.
func (c *collected) waitFor(t *testing.T, s string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%q on stdout", s), func() bool { return strings.Contains(c.stdout.String(), s) })
}

func TestShimAttachCarriesStdio(t *testing.T) {
	tt := newTestTask(t, "runc", "sh", "-c", `read x; echo "got $x"; echo oops >&2; read y; echo "then $y"`)
	tt.opts.Stdin = true
	s := tt.start(t)
	ctx := testContext(t)
	// Two attachers, both before start: both see everything, and both
	// can write.
	a1, err := s.Client().Attach(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	a2, err := s.Client().Attach(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	c1, c2 := collect(a1), collect(a2)
	if _, err := s.Client().Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a1.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	c2.waitFor(t, "got hello")
	if _, err := a2.Write([]byte("world\n")); err != nil {
		t.Fatal(err)
	}
	c1.wait(t)
	c2.wait(t)
	for i, c := range []*collected{c1, c2} {
		if c.stdout.String() != "got hello\nthen world\n" || c.stderr.String() != "oops\n" {
			t.Errorf("attacher %d: stdout %q stderr %q", i+1, c.stdout.String(), c.stderr.String())
		}
	}
	if e := wait(t, s, ""); e.Status != 0 {
		t.Errorf("exit %+v", e)
	}
	deleteTask(t, tt, s)
}

func TestShimCloseStdinEndsInput(t *testing.T) {
	tt := newTestTask(t, "runc", "sh", "-c", "cat; echo eof")
	tt.opts.Stdin, tt.opts.Start = true, true
	s := tt.start(t)
	ctx := testContext(t)
	a, err := s.Client().Attach(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := collect(a)
	if _, err := a.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "line\n")
	if err := s.Client().CloseStdin(ctx, ""); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	if c.stdout.String() != "line\neof\n" {
		t.Errorf("stdout %q", c.stdout.String())
	}
	wait(t, s, "")
	deleteTask(t, tt, s)
}

func TestShimTerminalResize(t *testing.T) {
	tt := newTestTask(t, "runc", "sh", "-c", "read x; stty size; read y; stty size; tty")
	tt.opts.TTY, tt.opts.Stdin, tt.opts.Start = true, true, true
	s := tt.start(t)
	a, err := s.Client().Attach(testContext(t), "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := collect(a)
	// By a call, then by a frame on the stream.
	if err := s.Client().Resize(testContext(t), "", 101, 41); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("a\n")); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "41 101\r\n")
	if err := a.Resize(100, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("b\n")); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	out := c.stdout.String()
	if !strings.Contains(out, "40 100\r\n/dev/pts/") {
		t.Errorf("terminal output %q, want the size 40 100 and a pts", out)
	}
	if c.stderr.String() != "" {
		t.Errorf("stderr on a terminal: %q", c.stderr.String())
	}
	wait(t, s, "")
	// The terminal's output is in the log, as stdout.
	var logged string
	for _, e := range readLog(t, tt.opts.LogPath) {
		if e.stream != "stdout" {
			t.Errorf("terminal log entry on %s", e.stream)
		}
		logged += e.text + "\n"
	}
	if !strings.Contains(logged, "41 101") || !strings.Contains(logged, "40 100") {
		t.Errorf("log %q lacks the sizes", logged)
	}
	deleteTask(t, tt, s)
}

func TestShimExec(t *testing.T) {
	tt := newTestTask(t, "runc", "sleep", "1000")
	tt.opts.Start = true
	s := tt.start(t)
	ctx := testContext(t)
	c := s.Client()
	proc := func(args ...string) *specs.Process {
		p := *tt.spec.Process
		p.Args = args
		return &p
	}

	// Output and exit code.
	if err := c.Exec(ctx, shimapi.ExecOptions{ID: "e1", Process: proc("sh", "-c", "echo exec-out; echo exec-err >&2; exit 5")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, shimapi.ExecOptions{ID: "e1", Process: proc("true")}); !errors.Is(err, shimapi.ErrAlreadyExists) {
		t.Errorf("exec with a used id: %v, want already exists", err)
	}
	a, err := c.Attach(ctx, "e1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	out := collect(a)
	pid, err := c.Start(ctx, "e1")
	if err != nil || pid <= 0 {
		t.Fatalf("start exec: %d, %v", pid, err)
	}
	out.wait(t)
	if out.stdout.String() != "exec-out\n" || out.stderr.String() != "exec-err\n" {
		t.Errorf("exec output: stdout %q stderr %q", out.stdout.String(), out.stderr.String())
	}
	if e := wait(t, s, "e1"); e.Status != 5 || e.Pid != pid {
		t.Errorf("exec exit %+v, want 5 of pid %d", e, pid)
	}
	// Exec output stays out of the container log.
	for _, e := range readLog(t, tt.opts.LogPath) {
		t.Errorf("container log has %+v", e)
	}
	if e, err := c.Delete(ctx, "e1"); err != nil || e.Status != 5 {
		t.Errorf("delete exec: %+v, %v", e, err)
	}
	if _, err := c.State(ctx, "e1"); !errors.Is(err, shimapi.ErrNotFound) {
		t.Errorf("state of deleted exec: %v, want not found", err)
	}

	// Killed by a signal.
	if err := c.Exec(ctx, shimapi.ExecOptions{ID: "e2", Process: proc("sleep", "1000")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "e2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "e2"); !errors.Is(err, shimapi.ErrFailedPrecondition) {
		t.Errorf("delete of a running exec: %v, want failed precondition", err)
	}
	if err := c.Kill(ctx, "e2", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, s, "e2"); e.Status != 128+int(syscall.SIGTERM) {
		t.Errorf("exec exit %+v, want 143", e)
	}
	if err := c.Kill(ctx, "e2", syscall.SIGTERM); !errors.Is(err, shimapi.ErrNotFound) {
		t.Errorf("kill of an exited exec: %v, want not found", err)
	}

	// A missing binary fails start with the runtime's message.
	if err := c.Exec(ctx, shimapi.ExecOptions{ID: "e3", Process: proc("nope")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "e3"); err == nil || !strings.Contains(err.Error(), `exec: "nope": executable file not found`) {
		t.Errorf("start of a missing binary: %v", err)
	}
	if e := wait(t, s, "e3"); e.Status != 255 {
		t.Errorf("exit of a failed exec %+v, want 255", e)
	}

	// With a terminal.
	tp := proc("sh", "-c", "tty; echo ok")
	tp.Terminal = true
	if err := c.Exec(ctx, shimapi.ExecOptions{ID: "e4", Process: tp}); err != nil {
		t.Fatal(err)
	}
	a4, err := c.Attach(ctx, "e4")
	if err != nil {
		t.Fatal(err)
	}
	defer a4.Close()
	out4 := collect(a4)
	if _, err := c.Start(ctx, "e4"); err != nil {
		t.Fatal(err)
	}
	out4.wait(t)
	if !strings.Contains(out4.stdout.String(), "ok\r\n") {
		t.Errorf("terminal exec output %q", out4.stdout.String())
	}
	wait(t, s, "e4")

	if err := c.KillAll(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, s, "")
	deleteTask(t, tt, s)
}

func TestShimPauseResume(t *testing.T) {
	tt := newTestTask(t, "runc", "sleep", "1000")
	tt.opts.Start = true
	s := tt.start(t)
	ctx := testContext(t)
	c := s.Client()
	status := func() shimapi.Status {
		st, err := c.State(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return st.Status
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != shimapi.StatusPaused {
		t.Errorf("status after pause %s", got)
	}
	if err := c.Pause(ctx); !errors.Is(err, shimapi.ErrFailedPrecondition) {
		t.Errorf("second pause: %v, want failed precondition", err)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != shimapi.StatusRunning {
		t.Errorf("status after resume %s", got)
	}
	// SIGKILL reaches a paused container.
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx, "", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, s, ""); e.Status != 137 {
		t.Errorf("exit %+v", e)
	}
	if err := c.Resume(ctx); !errors.Is(err, shimapi.ErrFailedPrecondition) {
		t.Errorf("resume after exit: %v, want failed precondition", err)
	}
	deleteTask(t, tt, s)
}

func TestShimUpdate(t *testing.T) {
	tt := newTestTask(t, "runc", "sleep", "1000")
	tt.opts.Start = true
	s := tt.start(t)
	limit := int64(64 << 20)
	if err := s.Client().Update(testContext(t), &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", cgroupParent, tt.opts.ID, "memory.limit_in_bytes"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.FormatInt(limit, 10) {
		t.Errorf("memory limit after update: %q, %v", b, err)
	}
	if err := s.Client().KillAll(testContext(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait(t, s, "")
	deleteTask(t, tt, s)
}

func TestShimExitRecordIsWrittenBeforeWaitReturns(t *testing.T) {
	tt := newTestTask(t, "runc", "sleep", "1000")
	tt.opts.Start = true
	s := tt.start(t)
	type result struct {
		e   shimapi.Exit
		err error
	}
	waited := make(chan result, 1)
	go func() {
		e, err := s.Client().Wait(context.Background(), "")
		waited <- result{e, err}
	}()
	// Let the wait reach the shim before the exit.
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(tt.opts.Bundle, shimapi.ExitFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("exit record before the exit: %v", err)
	}
	if err := s.Client().Kill(testContext(t), "", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return")
	}
	rec, err := shimapi.ReadExit(tt.opts.Bundle)
	if r.err != nil || err != nil || rec != r.e {
		t.Fatalf("wait %+v, %v; record %+v, %v", r.e, r.err, rec, err)
	}
	deleteTask(t, tt, s)
}

func TestShimWaitAfterDaemonRestart(t *testing.T) {
	tt := newTestTask(t, "runc", "sh", "-c", "exit 4")
	s := tt.start(t)
	if _, err := s.Client().Start(testContext(t), ""); err != nil {
		t.Fatal(err)
	}
	first := wait(t, s, "")

	// A new daemon reconnects and asks again.
	s2, err := ConnectShim(testContext(t), tt.opts.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Pid() != s.Pid() || s2.InitPid() != s.InitPid() {
		t.Errorf("reconnected pids %d/%d, want %d/%d", s2.Pid(), s2.InitPid(), s.Pid(), s.InitPid())
	}
	if again := wait(t, s2, ""); again != first {
		t.Errorf("wait after reconnect %+v, want %+v", again, first)
	}

	// With the shim dead, connecting fails fast and the record stays.
	if err := syscall.Kill(s.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s)
	<-s2.Done()
	if _, err := ConnectShim(testContext(t), tt.opts.Bundle); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("connect to a dead shim: %v, want unavailable", err)
	}
	rec, err := shimapi.ReadExit(tt.opts.Bundle)
	if err != nil || rec != first {
		t.Errorf("exit record %+v, %v; want %+v", rec, err, first)
	}
}

func TestShimKilledLeavesContainerForceDeletable(t *testing.T) {
	for _, rt := range []string{"runc", "crun"} {
		t.Run(rt, func(t *testing.T) { testShimKilled(t, rt) })
	}
}

func testShimKilled(t *testing.T, runtimeName string) {
	tt := newTestTask(t, runtimeName, "sh", "-c", "sleep 1000 & sleep 1000")
	tt.opts.Start = true
	s := tt.start(t)
	var pids []int
	eventually(t, "two processes in the cgroup", func() bool {
		pids, _ = cgroupProcs(t, tt.opts.ID)
		return len(pids) == 2
	})
	if err := syscall.Kill(s.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s)
	if !processAlive(s.InitPid()) {
		t.Fatal("the container died with its shim")
	}
	if _, err := ConnectShim(testContext(t), tt.opts.Bundle); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("connect to a dead shim: %v, want unavailable", err)
	}
	if _, err := shimapi.ReadExit(tt.opts.Bundle); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("exit record of a running container: %v", err)
	}
	if err := ForceDelete(testContext(t), DeleteOptions{ShimPath: shimBinary, Runtime: tt.opts.Runtime, RuntimeRoot: tt.opts.RuntimeRoot, ID: tt.opts.ID}); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		eventually(t, fmt.Sprintf("pid %d gone", pid), func() bool { return !processAlive(pid) })
	}
	if _, ok := cgroupProcs(t, tt.opts.ID); ok {
		t.Error("cgroup still exists")
	}
	if _, err := os.Stat(filepath.Join(tt.opts.RuntimeRoot, tt.opts.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("runtime state: %v, want it gone", err)
	}
	// Deleting again is fine.
	if err := ForceDelete(testContext(t), DeleteOptions{ShimPath: shimBinary, Runtime: tt.opts.Runtime, RuntimeRoot: tt.opts.RuntimeRoot, ID: tt.opts.ID}); err != nil {
		t.Errorf("second force delete: %v", err)
	}
}

// execedFDs lists the open descriptors of pid once it runs sleep: until
// then it is still the runtime's own code, setting the container up.
func execedFDs(t *testing.T, pid int) []string {
	t.Helper()
	eventually(t, "the container process to exec sleep", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return err == nil && string(b) == "sleep\n"
	})
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.SortFunc(names, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return names
}

func TestContainerGetsOnlyStdio(t *testing.T) {
	for _, rt := range []string{"runc", "crun"} {
		for _, tty := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tty=%v", rt, tty), func(t *testing.T) {
				tt := newTestTask(t, rt, "sleep", "1000")
				tt.opts.Start, tt.opts.TTY, tt.opts.Stdin = true, tty, true
				s := tt.start(t)
				want := []string{"0", "1", "2"}
				if got := execedFDs(t, s.InitPid()); !slices.Equal(got, want) {
					t.Errorf("init descriptors %v, want %v", got, want)
				}
				ctx := testContext(t)
				p := *tt.spec.Process
				p.Args, p.Terminal = []string{"sleep", "1000"}, tty
				if err := s.Client().Exec(ctx, shimapi.ExecOptions{ID: "x", Process: &p, Stdin: true}); err != nil {
					t.Fatal(err)
				}
				pid, err := s.Client().Start(ctx, "x")
				if err != nil {
					t.Fatal(err)
				}
				if got := execedFDs(t, pid); !slices.Equal(got, want) {
					t.Errorf("exec descriptors %v, want %v", got, want)
				}
				if err := s.Client().KillAll(ctx, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				wait(t, s, "")
				deleteTask(t, tt, s)
			})
		}
	}
}

func TestShimRunsCrunOnHybridCgroups(t *testing.T) {
	tt := newTestTask(t, "crun", "sh", "-c", "echo hello from crun; exit 6")
	s := tt.start(t)
	ctx := testContext(t)
	if _, err := s.Client().Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, s, ""); e.Status != 6 {
		t.Errorf("exit %+v, want 6", e)
	}
	if got := readLog(t, tt.opts.LogPath); !slices.Equal(got, []logEntry{{"stdout", "F", "hello from crun"}}) {
		t.Errorf("log %q", got)
	}
	deleteTask(t, tt, s)

	// The host keeps its cgroup v2 mount: only crun's thread lost it.
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Error("/sys/fs/cgroup/unified is no longer cgroup2 on the host")
	}

	// A running crun container: pause, exec, kill, delete.
	tt2 := newTestTask(t, "crun", "sleep", "1000")
	tt2.opts.Start = true
	s2 := tt2.start(t)
	c := s2.Client()
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	p := *tt2.spec.Process
	p.Args = []string{"sh", "-c", "exit 2"}
	if err := c.Exec(ctx, shimapi.ExecOptions{ID: "x", Process: &p}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, s2, "x"); e.Status != 2 {
		t.Errorf("crun exec exit %+v", e)
	}
	if err := c.KillAll(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, s2, ""); e.Status != 137 {
		t.Errorf("exit %+v", e)
	}
	deleteTask(t, tt2, s2)
	if _, ok := cgroupProcs(t, tt2.opts.ID); ok {
		t.Error("crun left its cgroup")
	}
}

func TestShimRecordsOOMKill(t *testing.T) {
	tt := newTestTask(t, "runc", "sh", "-c", `x=$(head -c 100000000 /dev/zero | tr '\0' a); echo survived`)
	limit := int64(8 << 20)
	tt.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	tt.opts.Start = true
	s := tt.start(t)
	e := wait(t, s, "")
	if e.Reason != shimapi.ReasonOOMKilled || e.Status != 137 {
		t.Errorf("exit %+v, want status 137 reason %s", e, shimapi.ReasonOOMKilled)
	}
	if rec, err := shimapi.ReadExit(tt.opts.Bundle); err != nil || rec.Reason != shimapi.ReasonOOMKilled {
		t.Errorf("exit record %+v, %v", rec, err)
	}
	deleteTask(t, tt, s)
}

func TestStartShimReportsRuntimeError(t *testing.T) {
	for _, tc := range []struct {
		runtime, want string
	}{
		{"runc", `exec: "nope": executable file not found`},
		{"crun", "`nope` not found"},
	} {
		t.Run(tc.runtime, func(t *testing.T) {
			tt := newTestTask(t, tc.runtime, "nope")
			_, err := tt.tryStart(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start error %v, want it to contain %q", err, tc.want)
			}
			// Nothing is left: no shim, no socket, no container.
			if _, err := os.Stat(filepath.Join(tt.opts.Bundle, shimapi.SocketFile)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket after failed start: %v", err)
			}
			if _, err := os.Stat(filepath.Join(tt.opts.RuntimeRoot, tt.opts.ID)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("runtime state after failed start: %v", err)
			}
			if _, ok := cgroupProcs(t, tt.opts.ID); ok {
				t.Error("cgroup after failed start")
			}
		})
	}
}

func TestShimSocketIsPrivate(t *testing.T) {
	tt := newTestTask(t, "runc", "sleep", "1000")
	s := tt.start(t)
	fi, err := os.Lstat(filepath.Join(tt.opts.Bundle, shimapi.SocketFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	b, err := os.ReadFile(filepath.Join(tt.opts.Bundle, shimapi.PidFile))
	if err != nil || string(b) != strconv.Itoa(s.Pid()) {
		t.Errorf("pid file %q, %v; want %d", b, err, s.Pid())
	}
	// A created container that is deleted is killed first.
	e := deleteTask(t, tt, s)
	if e.Status != 137 {
		t.Errorf("delete of a created container: exit %+v, want 137", e)
	}
}

// BenchmarkShimMemory reports the memory of idle shims, each running a
// sleeping container, as the bench script reads it: RSS, PSS and USS per
// shim, averaged over 10 shims (PSS shares the binary's pages among them).
func BenchmarkShimMemory(b *testing.B) {
	const n = 10
	var shims []*Shim
	for range n {
		s, err := StartShim(context.Background(), newBenchTask(b, "runc", "sleep", "100000"))
		if err != nil {
			b.Fatal(err)
		}
		shims = append(shims, s)
	}
	// Let each shim settle (a GC cycle, the runtime's scavenger).
	time.Sleep(2 * time.Second)
	b.ResetTimer()
	var sum Memory
	for i := 0; i < b.N; i++ {
		sum = Memory{}
		for _, s := range shims {
			m, err := s.Memory()
			if err != nil {
				b.Fatal(err)
			}
			sum.RSS += m.RSS
			sum.PSS += m.PSS
			sum.USS += m.USS
		}
	}
	b.StopTimer()
	const kib = 1024 * n
	b.ReportMetric(float64(sum.RSS)/kib, "rss-KiB/shim")
	b.ReportMetric(float64(sum.PSS)/kib, "pss-KiB/shim")
	b.ReportMetric(float64(sum.USS)/kib, "uss-KiB/shim")
}

// newBenchTask prepares a container running busybox with args for a
// benchmark, cleaned up with it.
func newBenchTask(b *testing.B, runtimeName string, args ...string) StartOptions {
	b.Helper()
	testutil.RequirePrivileged(b)
	rtPath := testutil.RequireBinary(b, runtimeName)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	id := "shimbench-" + hex.EncodeToString(rnd[:])
	dir := b.TempDir()
	root := filepath.Join(dir, "rootfs", "bin")
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "busybox"), bb, 0o755); err != nil {
		b.Fatal(err)
	}
	spec := testSpec(id, append([]string{"/bin/busybox"}, args...))
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		b.Fatal(err)
	}
	opts := StartOptions{ShimPath: shimBinary, ID: id, Bundle: dir, Runtime: rtPath, RuntimeRoot: b.TempDir(),
		LogPath: filepath.Join(dir, "container.log"), LogMaxSize: 10 << 20, LogMaxFiles: 2, Start: true}
	b.Cleanup(func() {
		_ = ForceDelete(context.Background(), DeleteOptions{ShimPath: shimBinary, Runtime: rtPath, RuntimeRoot: opts.RuntimeRoot, ID: id})
		if data, err := os.ReadFile(filepath.Join(dir, shimapi.PidFile)); err == nil {
			if pid, err := strconv.Atoi(string(data)); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return opts
}

// BenchmarkRunTrue compares one container running true through a shim
// (StartShim with Start, Wait, Delete), running the runtime from its binary
// or from a sealed copy as berthd does, with a bare "runtime run" of the
// same bundle, for runc and crun.
func BenchmarkRunTrue(b *testing.B) {
	for _, rt := range []string{"runc", "crun"} {
		for _, sealed := range []bool{false, true} {
			name := rt + "/shim"
			if sealed {
				name += "-sealed"
			}
			b.Run(name, func(b *testing.B) { benchShimRun(b, rt, sealed) })
		}
		b.Run(rt+"/bare", func(b *testing.B) {

			opts := newBenchTask(b, rt, "true")
			for i := range b.N {
				id := opts.ID + "-" + strconv.Itoa(i)
				cmd := exec.Command(opts.Runtime, "--root", opts.RuntimeRoot, "run", "--bundle", opts.Bundle, id)
				if filepath.Base(opts.Runtime) == "crun" {
					// Bare crun needs the same hybrid-cgroup workaround.
					cmd = exec.Command("unshare", "-m", "sh", "-c", `umount -l /sys/fs/cgroup/unified && exec "$@"`, "sh",
						opts.Runtime, "--root", opts.RuntimeRoot, "run", "--bundle", opts.Bundle, id)
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}

func benchShimRun(b *testing.B, rt string, sealed bool) {
	opts := newBenchTask(b, rt, "true")
	if sealed {
		f, err := sealedCopy(opts.Runtime)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		opts.RuntimeCopy = f
	}
	base := opts.ID
	for i := range b.N {
		opts.ID = base + "-" + strconv.Itoa(i)
		s, err := StartShim(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Client().Wait(context.Background(), ""); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Client().Delete(context.Background(), ""); err != nil {
			b.Fatal(err)
		}
		<-s.Done()
	}
}

func TestStartShimGivesUpWithContext(t *testing.T) {
	testutil.RequirePrivileged(t)
	if shimBinary == "" {
		t.Fatal("berth-shim was not built")
	}
	// A runtime whose create never returns (and whose delete succeeds).
	dir := t.TempDir()
	fake := filepath.Join(dir, "hang")
	pidFile := filepath.Join(dir, "hang.pid")
	script := "#!/bin/sh\nfor a; do [ \"$a\" = delete ] && exit 0; done\necho $$ > " + pidFile + "\nexec sleep 30\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	bundle := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := StartShim(ctx, StartOptions{ShimPath: shimBinary, ID: "hang", Bundle: bundle, Runtime: fake, RuntimeRoot: t.TempDir()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("start: %v, want deadline exceeded", err)
	}
	b, err := os.ReadFile(filepath.Join(bundle, shimapi.PidFile))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("shim %d still there: %v", pid, err)
	}
}

func TestStartShimReportsAShimThatDied(t *testing.T) {
	bundle := t.TempDir()
	_, err := StartShim(testContext(t), StartOptions{ShimPath: "/bin/false", ID: "x", Bundle: bundle, RuntimeRoot: t.TempDir()})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "exited before it reported") {
		t.Errorf("start with a shim that exits: %v", err)
	}
}
