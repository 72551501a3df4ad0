package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// exitLog collects what a Manager reports through OnExit.
type exitLog struct {
	mu    sync.Mutex
	exits map[string]Exit
}

func (l *exitLog) record(_ context.Context, id string, e Exit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exits[id] = e
}

func (l *exitLog) get(id string) (Exit, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.exits[id]
	return e, ok
}

// managerEnv is a state directory and an image root filesystem that tasks
// bind-mount, on the host network (no CNI needed).
type managerEnv struct {
	state, rootfs string
	exits         *exitLog
}

func newManagerEnv(t *testing.T) *managerEnv {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireBinary(t, "runc")
	env := &managerEnv{state: t.TempDir(), rootfs: filepath.Join(t.TempDir(), "rootfs"), exits: &exitLog{exits: map[string]Exit{}}}
	makeRootfs(t, env.rootfs)
	return env
}

func (env *managerEnv) manager() *Manager {
	return New(Config{
		State: env.state, ShimPath: shimBinary, Runtimes: map[string]string{"runc": "/usr/sbin/runc"},
		LogMaxSize: 1 << 20, LogMaxFiles: 2, OnExit: env.exits.record,
	})
}

func (env *managerEnv) create(t *testing.T, m *Manager, id string, args ...string) Process {
	t.Helper()
	spec := testSpec(id, args)
	var nss []specs.LinuxNamespace
	for _, n := range spec.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace {
			nss = append(nss, n)
		}
	}
	spec.Linux.Namespaces = nss
	p, err := m.Create(nsContext(t), CreateOptions{
		ID: id, Spec: spec, Runtime: "runc", Start: true,
		Rootfs:  []mount.Mount{{Type: "bind", Source: env.rootfs, Options: []string{"rbind", "ro"}}},
		LogPath: filepath.Join(env.state, id+".log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = ForceDelete(ctx, DeleteOptions{ShimPath: shimBinary, Runtime: "/usr/sbin/runc", RuntimeRoot: filepath.Join(env.state, "runtime", "test"), ID: id})
	})
	return p
}

func nsContext(t *testing.T) context.Context {
	return namespaces.WithNamespace(testContext(t), "test")
}

func TestManagerRecordsExitThenReleasesEverything(t *testing.T) {
	env := newManagerEnv(t)
	m := env.manager()
	defer m.Close()
	ctx := nsContext(t)
	env.create(t, m, "exits5", "sh", "-c", "echo hi; exit 5")
	p, err := m.Wait(ctx, "exits5", "")
	if err != nil || p.Status != StatusStopped || p.Exit.Status != 5 {
		t.Fatalf("wait: %+v, %v", p, err)
	}
	if e, ok := env.exits.get("exits5"); !ok || e.Status != 5 {
		t.Errorf("OnExit had not recorded the exit when Wait returned: %+v %v", e, ok)
	}
	if _, err := m.Delete(ctx, "exits5", "", false); err != nil {
		t.Fatal(err)
	}
	dir := m.taskDir("test", "exits5")
	if mounted, _ := mountedUnder(dir); mounted {
		t.Error("rootfs still mounted after delete")
	}
	// The runtime's cleanup ends after Delete returned.
	eventually(t, "the task directory to go", func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) })
	if _, err := m.Get(ctx, "exits5", ""); err == nil {
		t.Error("deleted task still known")
	}
	log, _ := os.ReadFile(filepath.Join(env.state, "exits5.log"))
	if !strings.Contains(string(log), " stdout F hi\n") {
		t.Errorf("container log: %q", log)
	}
}

// TestRecreateAfterDeleteWaitsForTheCleanup creates a task again right
// after deleting it, while the runtime may still be forgetting the first:
// the second must run, and its task directory survive the first's cleanup.
func TestRecreateAfterDeleteWaitsForTheCleanup(t *testing.T) {
	env := newManagerEnv(t)
	m := env.manager()
	defer m.Close()
	ctx := nsContext(t)
	for i := range 3 {
		env.create(t, m, "again", "true")
		if p, err := m.Wait(ctx, "again", ""); err != nil || p.Exit.Status != 0 {
			t.Fatalf("run %d: %+v, %v", i, p, err)
		}
		if _, err := m.Delete(ctx, "again", "", false); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
	env.create(t, m, "again", "sleep", "30")
	time.Sleep(50 * time.Millisecond) // a stray cleanup would strike now
	if _, err := os.Stat(filepath.Join(m.taskDir("test", "again"), "config.json")); err != nil {
		t.Errorf("the running task's directory: %v", err)
	}
	if p, err := m.Get(ctx, "again", ""); err != nil || p.Status != StatusRunning {
		t.Errorf("the last task: %+v, %v", p, err)
	}
	if _, err := m.Delete(ctx, "again", "", true); err != nil {
		t.Fatal(err)
	}
}

func mountedUnder(dir string) (bool, error) {
	info, err := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(info), " "+dir+"/"), err
}

// TestRestoreReconnectsLiveShimsAndReportsDeadOnes plays a daemon restart:
// a second Manager on the same state directory finds one task running and
// one whose shim was killed meanwhile.
func TestRestoreReconnectsLiveShimsAndReportsDeadOnes(t *testing.T) {
	env := newManagerEnv(t)
	ctx := nsContext(t)
	first := env.manager()
	live := env.create(t, first, "live", "sleep", "300")
	env.create(t, first, "orphan", "sleep", "300")
	first.Close() // berthd goes away; its tasks keep running
	pidData, err := os.ReadFile(filepath.Join(first.taskDir("test", "orphan"), shimapi.PidFile))
	if err != nil {
		t.Fatal(err)
	}
	shimPid, _ := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err := syscall.Kill(shimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	second := env.manager()
	defer second.Close()
	start := time.Now()
	if err := second.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restore of 2 tasks took %v", time.Since(start))
	p, err := second.Get(ctx, "live", "")
	if err != nil || p.Status != StatusRunning || p.Pid != live.Pid {
		t.Fatalf("live task after restore: %+v, %v (pid was %d)", p, err, live.Pid)
	}
	if e, ok := env.exits.get("orphan"); !ok || e.Status != 255 || e.Reason != ReasonUnknown {
		t.Errorf("task of the killed shim: %+v %v, want 255 unknown", e, ok)
	}
	if err := second.Kill(ctx, "live", "", syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if p, err := second.Wait(ctx, "live", ""); err != nil || p.Exit.Status != 137 {
		t.Errorf("wait after restore: %+v, %v", p, err)
	}
	for _, id := range []string{"live", "orphan"} {
		if _, err := second.Delete(ctx, id, "", false); err != nil {
			t.Errorf("delete %s: %v", id, err)
		}
		eventually(t, "the task directory of "+id+" to go", func() bool {
			_, err := os.Stat(second.taskDir("test", id))
			return os.IsNotExist(err)
		})
	}
}
