package runtime

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/metrics"
	"github.com/berth-dev/berth/internal/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Get returns the state of a task's init (execID empty) or of an exec.
func (m *Manager) Get(ctx context.Context, id, execID string) (Process, error) {
	t, err := m.lookup(ctx, id)
	if err != nil {
		return Process{}, err
	}
	if execID == "" {
		return t.process(), nil
	}
	e, err := t.exec(execID)
	if err != nil {
		return Process{}, err
	}
	return t.execProcess(execID, e), nil
}

// List returns the inits of the tasks in ctx's namespace, by id.
func (m *Manager) List(ctx context.Context) ([]Process, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	var ts []*task
	for _, t := range m.tasks {
		if t.ns == ns && t.shim != nil {
			ts = append(ts, t)
		}
	}
	m.mu.Unlock()
	out := make([]Process, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.process())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID < out[j].ContainerID })
	return out, nil
}

// Start starts a created task's init, or a created exec.
func (m *Manager) Start(ctx context.Context, id, execID string) (Process, error) {
	t, err := m.running(ctx, id)
	if err != nil {
		return Process{}, err
	}
	pid, err := t.api.Start(ctx, execID)
	if err != nil {
		return Process{}, fromShim(err)
	}
	if execID == "" {
		t.mu.Lock()
		t.status, t.pid = StatusRunning, uint32(pid)
		t.mu.Unlock()
		p := t.process()
		m.event(ctx, "/tasks/start", p)
		return p, nil
	}
	e, err := t.exec(execID)
	if err != nil {
		return Process{}, err
	}
	t.mu.Lock()
	e.pid, e.status = uint32(pid), StatusRunning
	t.mu.Unlock()
	p := t.execProcess(execID, e)
	m.event(ctx, "/tasks/exec-started", p)
	m.watchExec(t, execID, e)
	return p, nil
}

// Kill signals a task's init (with all, every process of the task) or an
// exec.
func (m *Manager) Kill(ctx context.Context, id, execID string, sig syscall.Signal, all bool) error {
	t, err := m.running(ctx, id)
	if err != nil {
		return err
	}
	return t.kill(ctx, execID, sig, all)
}

// Pause freezes every process of a task.
func (m *Manager) Pause(ctx context.Context, id string) error {
	t, err := m.running(ctx, id)
	if err != nil {
		return err
	}
	if err := t.api.Pause(ctx); err != nil {
		return fromShim(err)
	}
	t.setStatus(StatusPaused)
	m.event(ctx, "/tasks/paused", t.process())
	return nil
}

// Resume thaws a paused task.
func (m *Manager) Resume(ctx context.Context, id string) error {
	t, err := m.running(ctx, id)
	if err != nil {
		return err
	}
	if err := t.api.Resume(ctx); err != nil {
		return fromShim(err)
	}
	t.setStatus(StatusRunning)
	m.event(ctx, "/tasks/resumed", t.process())
	return nil
}

func (t *task) setStatus(s Status) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != StatusStopped {
		t.status = s
	}
}

// Exec adds a process to a running task; Start starts it.
func (m *Manager) Exec(ctx context.Context, id, execID string, process *specs.Process, stdin bool) error {
	if execID == "" {
		return fmt.Errorf("exec: no exec id: %w", errdefs.ErrInvalidArgument)
	}
	t, err := m.running(ctx, id)
	if err != nil {
		return err
	}
	if st := t.currentStatus(); st != StatusRunning {
		return fmt.Errorf("container %s is %s, not running: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	t.mu.Lock()
	if _, ok := t.execs[execID]; ok {
		t.mu.Unlock()
		return fmt.Errorf("exec %s in container %s: %w", execID, id, errdefs.ErrAlreadyExists)
	}
	e := &execProcess{status: StatusCreated, done: make(chan struct{})}
	t.execs[execID] = e
	t.mu.Unlock()
	if err := t.api.Exec(ctx, shimapi.ExecOptions{ID: execID, Process: process, Stdin: stdin}); err != nil {
		t.mu.Lock()
		delete(t.execs, execID)
		t.mu.Unlock()
		return fromShim(err)
	}
	m.event(ctx, "/tasks/exec-added", t.execProcess(execID, e))
	return nil
}

// maxExitedExecs bounds how many exited execs a task remembers for Wait.
const maxExitedExecs = 256

// watchExec waits for an exec to exit, records it, and frees it in the shim.
func (m *Manager) watchExec(t *task, execID string, e *execProcess) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		exit, err := t.wait(m.ctx, execID)
		if m.ctx.Err() != nil {
			return
		}
		if err != nil {
			exit = Exit{Status: 255, ExitedAt: time.Now().UTC(), Reason: ReasonUnknown}
		}
		ctx := namespaces.WithNamespace(m.ctx, t.ns)
		_, _ = t.api.Delete(ctx, execID)
		t.mu.Lock()
		e.status, e.exit = StatusStopped, exit
		t.forgetOldExecs()
		t.mu.Unlock()
		close(e.done)
		m.event(ctx, "/tasks/exit", t.execProcess(execID, e))
	}()
}

// forgetOldExecs drops the oldest exited execs beyond maxExitedExecs. t.mu
// is held.
func (t *task) forgetOldExecs() {
	var exited []string
	for id, e := range t.execs {
		if e.status == StatusStopped {
			exited = append(exited, id)
		}
	}
	if len(exited) <= maxExitedExecs {
		return
	}
	sort.Slice(exited, func(i, j int) bool { return t.execs[exited[i]].exit.ExitedAt.Before(t.execs[exited[j]].exit.ExitedAt) })
	for _, id := range exited[:len(exited)-maxExitedExecs] {
		delete(t.execs, id)
	}
}

func (t *task) exec(execID string) (*execProcess, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.execs[execID]
	if !ok {
		return nil, fmt.Errorf("exec %s in container %s: %w", execID, t.id, errdefs.ErrNotFound)
	}
	return e, nil
}

func (t *task) execProcess(execID string, e *execProcess) Process {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Process{Namespace: t.ns, ContainerID: t.id, ExecID: execID, Pid: e.pid, Status: e.status, Exit: e.exit}
}

// Wait blocks until the init (or the exec) has exited and returns how.
func (m *Manager) Wait(ctx context.Context, id, execID string) (Process, error) {
	t, err := m.lookup(ctx, id)
	if err != nil {
		return Process{}, err
	}
	done := t.exitCh
	if execID != "" {
		e, err := t.exec(execID)
		if err != nil {
			return Process{}, err
		}
		done = e.done
	}
	select {
	case <-done:
	case <-ctx.Done():
		return Process{}, ctx.Err()
	}
	return m.Get(ctx, id, execID)
}

// Exited returns a channel closed once the task's init has exited and all
// its output is in the log; it is closed already when there is no task.
func (m *Manager) Exited(ctx context.Context, id string) <-chan struct{} {
	t, err := m.lookup(ctx, id)
	if err != nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return t.exitCh
}

// Delete forgets a stopped task (or exec) and returns its exit. A running
// one is refused unless force, which kills it and waits for the exit. It
// returns once the task's rootfs is unmounted and its published ports
// released; the runtime's own cleanup and the rest of the network's may
// still run, and a new task of the same id waits for them.
func (m *Manager) Delete(ctx context.Context, id, execID string, force bool) (Process, error) {
	t, err := m.lookup(ctx, id)
	if err != nil {
		return Process{}, err
	}
	if execID != "" {
		e, err := t.exec(execID)
		if err != nil {
			return Process{}, err
		}
		p := t.execProcess(execID, e)
		if p.Status != StatusStopped {
			return Process{}, fmt.Errorf("exec %s is %s: %w", execID, p.Status, errdefs.ErrFailedPrecondition)
		}
		t.mu.Lock()
		delete(t.execs, execID)
		t.mu.Unlock()
		return p, nil
	}
	if st := t.currentStatus(); st != StatusStopped {
		if !force {
			return Process{}, fmt.Errorf("container %s is %s: stop it first: %w", id, st, errdefs.ErrFailedPrecondition)
		}
		if st == StatusPaused {
			_ = t.api.Resume(ctx)
		}
		// A shim that is exiting or gone may not answer: its watcher reports
		// the exit either way, which is what is waited for below.
		if err := t.kill(ctx, "", syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) &&
			!errors.Is(err, errdefs.ErrUnavailable) && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return Process{}, err
		}
	}
	select { // the exit is known; wait for the rootfs and ports
	case <-t.released:
	case <-ctx.Done():
		return Process{}, ctx.Err()
	}
	m.mu.Lock()
	if k := key(t.ns, t.id); m.tasks[k] == t {
		delete(m.tasks, k)
		select {
		case <-t.done:
		default:
			m.retiring[k] = t // until the runtime's cleanup ends
		}
	}
	m.mu.Unlock()
	p := t.process()
	m.event(ctx, "/tasks/delete", p)
	return p, nil
}

// ResizePty resizes the terminal of the init or an exec.
func (m *Manager) ResizePty(ctx context.Context, id, execID string, width, height uint32) error {
	t, err := m.running(ctx, id)
	if err != nil {
		return err
	}
	return fromShim(t.api.Resize(ctx, execID, uint16(width), uint16(height)))
}

// CloseIO closes the stdin of the init or an exec.
func (m *Manager) CloseIO(ctx context.Context, id, execID string) error {
	t, err := m.running(ctx, id)
	if err != nil {
		return err
	}
	return fromShim(t.api.CloseStdin(ctx, execID))
}

// Update applies new resource limits to a running task.
func (m *Manager) Update(ctx context.Context, id string, r *specs.LinuxResources) error {
	t, err := m.running(ctx, id)
	if err != nil {
		return err
	}
	return fromShim(t.api.Update(ctx, r))
}

// Stats reads a running task's cgroup.
func (m *Manager) Stats(ctx context.Context, id string) (*cgroups.Stats, error) {
	t, err := m.running(ctx, id)
	if err != nil {
		return nil, err
	}
	cg, err := cgroups.Load(t.meta.CgroupsPath)
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// Pids lists the processes of a running task.
func (m *Manager) Pids(ctx context.Context, id string) ([]int, error) {
	t, err := m.running(ctx, id)
	if err != nil {
		return nil, err
	}
	cg, err := cgroups.Load(t.meta.CgroupsPath)
	if err != nil {
		return nil, err
	}
	return cg.Procs()
}

// Attach connects to the stdio of the init or an exec of a running task.
func (m *Manager) Attach(ctx context.Context, id, execID string) (*shimapi.Attach, error) {
	t, err := m.running(ctx, id)
	if err != nil {
		return nil, err
	}
	a, err := t.api.Attach(ctx, execID)
	return a, fromShim(err)
}

// Rootfs is where a task's root filesystem is mounted.
func (m *Manager) Rootfs(ctx context.Context, id string) string {
	ns, _ := namespaces.NamespaceRequired(ctx)
	return filepath.Join(m.taskDir(ns, id), "rootfs")
}

// ContainerSamples reads the cgroup of every task that has not exited, for
// the metrics endpoint.
func (m *Manager) ContainerSamples() []metrics.ContainerSample {
	m.mu.Lock()
	var ts []*task
	for _, t := range m.tasks {
		ts = append(ts, t)
	}
	m.mu.Unlock()
	var out []metrics.ContainerSample
	for _, t := range ts {
		st := t.currentStatus()
		if st == StatusStopped || t.meta.CgroupsPath == "" {
			continue
		}
		s := metrics.ContainerSample{Namespace: t.ns, ID: t.id, Status: string(st)}
		if cg, err := cgroups.Load(t.meta.CgroupsPath); err == nil {
			if stats, err := cg.Stats(); err == nil {
				s.CPUSeconds = float64(stats.CPU.UsageNanos) / 1e9
				s.MemoryBytes, s.MemoryWorkingSet, s.OOMKills, s.Pids = stats.Memory.Usage, stats.Memory.WorkingSet, stats.Memory.OOMKills, stats.Pids.Current
				if stats.Memory.Limit != cgroups.Unlimited {
					s.MemoryLimitBytes = stats.Memory.Limit
				}
			}
		}
		out = append(out, s)
	}
	return out
}
