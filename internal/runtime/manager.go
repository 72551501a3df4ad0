package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status is a process's state.
type Status string

// The statuses of a process.
const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusStopped Status = "stopped"
)

// ReasonUnknown is the exit reason of a task whose shim died before it could
// record the exit: the status is then 255.
const ReasonUnknown = "unknown"

// Exit is how a process ended.
type Exit struct {
	Status   int32
	ExitedAt time.Time
	Reason   string // "OOMKilled", ReasonUnknown or empty
}

// Process is the state of a task's init (ExecID empty) or of an exec.
type Process struct {
	Namespace, ContainerID, ExecID string
	Pid                            uint32
	Status                         Status
	Exit                           Exit // set when Status is stopped
	IP                             string
}

// Config configures a Manager.
type Config struct {
	// State is the daemon's state directory; tasks live in
	// State/tasks/<namespace>/<id>.
	State string
	// ShimPath is the berth-shim binary; when empty, ShimErr says why and
	// no task can be created.
	ShimPath string
	ShimErr  error
	// Runtimes maps runtime names (runc, crun) to their binaries.
	Runtimes map[string]string
	// Network sets up container networks; when nil, NetworkErr says why
	// and containers can only use the host's network.
	Network    *network.Manager
	NetworkErr error
	// LogMaxSize and LogMaxFiles bound each container's log.
	LogMaxSize  int64
	LogMaxFiles int
	// Events are told of task lifecycle changes (topic, event); may be nil.
	Events func(ctx context.Context, e Event)
	// OnExit is called when a task's init has exited, before its waiters
	// are told and its resources released, with a context carrying its
	// namespace.
	OnExit func(ctx context.Context, id string, exit Exit)
}

// Event is a task lifecycle change for the API layer to publish.
type Event struct {
	Topic   string // "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/oom", ...
	Process Process
}

// Manager runs tasks through shims. It is safe for concurrent use.
type Manager struct {
	cfg   Config
	mu    sync.Mutex
	tasks map[string]*task // by namespace/id
	// retiring holds deleted tasks whose runtime state, cgroup and task
	// directory are still being cleaned: a new task of the same id waits.
	retiring map[string]*task
	sealed   sealedRuntimes  // copies of the runtime binaries the shims run
	wg       sync.WaitGroup  // exit watchers
	ctx      context.Context // ends at Close
	stop     context.CancelFunc
}

// task is a running (or just stopped) container task.
type task struct {
	ns, id string
	dir    string
	meta   taskMeta
	shim   *Shim           // nil when the shim is gone
	api    *shimapi.Client // the shim's API
	exitCh chan struct{}   // closed when the init's exit is known (its output is in the log)
	// released is closed when, after that, the rootfs is unmounted and
	// published ports are released: the container's snapshot may go.
	released chan struct{}
	done     chan struct{} // closed when, after that, everything is released
	// shimExit is set when the shim reported the init's exit: the
	// container's pid namespace, and every process in it, is gone.
	shimExit bool
	mu       sync.Mutex
	status   Status // last known; the shim is asked when it matters
	pid      uint32
	exit     Exit
	execs    map[string]*execProcess
}

type execProcess struct {
	pid    uint32
	status Status
	exit   Exit
	done   chan struct{}
}

// taskMeta is what the daemon needs to clean a task up after a restart:
// task.json in the task directory.
type taskMeta struct {
	Runtime     string                `json:"runtime"`
	RuntimePath string                `json:"runtime_path"`
	Network     network.Mode          `json:"network"`
	NetNSPath   string                `json:"netns_path,omitempty"`
	Ports       []network.PortMapping `json:"ports,omitempty"`
	CgroupsPath string                `json:"cgroups_path,omitempty"`
	IP          string                `json:"ip,omitempty"`
}

const taskMetaFile = "task.json"

// New returns a Manager. Call Restore before serving to reconnect to the
// tasks of a previous daemon.
func New(cfg Config) *Manager {
	ctx, stop := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, tasks: map[string]*task{}, retiring: map[string]*task{}, ctx: ctx, stop: stop}
}

// Close stops watching tasks; they keep running (a new daemon reconnects).
func (m *Manager) Close() {
	m.stop()
	m.wg.Wait()
}

// RuntimePath returns the binary of the runtime called name.
func (m *Manager) RuntimePath(name string) (string, error) {
	p, ok := m.cfg.Runtimes[name]
	if !ok {
		known := make([]string, 0, len(m.cfg.Runtimes))
		for k := range m.cfg.Runtimes {
			known = append(known, k)
		}
		return "", fmt.Errorf("unknown runtime %q (this daemon has %v): %w", name, known, errdefs.ErrInvalidArgument)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("runtime %s: %s not found: install it (apt-get install %s): %w", name, p, name, errdefs.ErrFailedPrecondition)
	}
	return p, nil
}

func key(ns, id string) string { return ns + "/" + id }

func (m *Manager) taskDir(ns, id string) string { return filepath.Join(m.cfg.State, "tasks", ns, id) }

// CreateOptions describe a task to create.
type CreateOptions struct {
	ID      string
	Spec    *specs.Spec
	Rootfs  []mount.Mount
	Runtime string
	LogPath string
	Network network.Mode
	Ports   []network.PortMapping
	// Start starts the task too (one runtime exec instead of two).
	Start bool
}

// Create sets up and creates a task in the namespace of ctx: the rootfs
// mounted at DIR/rootfs, a network namespace unless the spec uses the
// host's, the bundle's config.json, and a shim. On failure everything set up
// is released.
func (m *Manager) Create(ctx context.Context, opts CreateOptions) (_ Process, retErr error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return Process{}, err
	}
	runtimePath, err := m.RuntimePath(opts.Runtime)
	if err != nil {
		return Process{}, err
	}
	if m.cfg.ShimPath == "" {
		return Process{}, fmt.Errorf("containers cannot run: %w", m.cfg.ShimErr)
	}
	k := key(ns, opts.ID)
	m.mu.Lock()
	if t, ok := m.tasks[k]; ok && t.currentStatus() != StatusStopped {
		m.mu.Unlock()
		return Process{}, fmt.Errorf("task %s exists (%s): %w", opts.ID, t.currentStatus(), errdefs.ErrAlreadyExists)
	}
	old := m.tasks[k]
	if old == nil {
		old = m.retiring[k]
	}
	t := newTask(ns, opts.ID, m.taskDir(ns, opts.ID), StatusCreated)
	m.tasks[k] = t // reserve the id; a replaced stopped task is forgotten
	m.mu.Unlock()
	if old != nil {
		<-old.done // its cleanup shares the task directory
	}
	defer func() {
		if retErr != nil {
			m.mu.Lock()
			if m.tasks[k] == t {
				delete(m.tasks, k)
			}
			m.mu.Unlock()
		}
	}()
	t.meta = taskMeta{Runtime: opts.Runtime, RuntimePath: runtimePath, Network: opts.Network, Ports: opts.Ports}
	if opts.Spec.Linux != nil {
		t.meta.CgroupsPath = opts.Spec.Linux.CgroupsPath
	}
	if err := os.RemoveAll(t.dir); err != nil {
		return Process{}, err
	}
	if err := os.MkdirAll(filepath.Join(t.dir, "rootfs"), 0o700); err != nil {
		return Process{}, err
	}
	defer func() {
		if retErr != nil {
			m.release(context.WithoutCancel(ctx), t)
		}
	}()
	if err := mount.All(opts.Rootfs, filepath.Join(t.dir, "rootfs")); err != nil {
		return Process{}, fmt.Errorf("mount rootfs of %s: %w", opts.ID, err)
	}
	if err := m.setupNetwork(ctx, t, opts.Spec); err != nil {
		return Process{}, err
	}
	if err := writeJSON(filepath.Join(t.dir, "config.json"), opts.Spec); err != nil {
		return Process{}, err
	}
	if err := writeJSON(filepath.Join(t.dir, taskMetaFile), t.meta); err != nil {
		return Process{}, err
	}
	runtimeCopy, err := m.sealed.get(runtimePath)
	if err != nil {
		log.G(ctx).Warn("runtime runs from its binary, not a sealed copy", "runtime", runtimePath, "error", err)
	}
	terminal := opts.Spec.Process != nil && opts.Spec.Process.Terminal
	stdin := terminal || (opts.Spec.Process != nil && opts.Spec.Annotations[AnnotationStdin] == "true")
	s, err := StartShim(ctx, StartOptions{
		ShimPath:    m.cfg.ShimPath,
		ID:          opts.ID,
		Bundle:      t.dir,
		Runtime:     runtimePath,
		RuntimeCopy: runtimeCopy,
		RuntimeRoot: filepath.Join(m.cfg.State, "runtime", ns),
		LogPath:     opts.LogPath,
		LogMaxSize:  m.cfg.LogMaxSize,
		LogMaxFiles: m.cfg.LogMaxFiles,
		TTY:         terminal,
		Stdin:       stdin,
		Start:       opts.Start,
	})
	if err != nil {
		return Process{}, err
	}
	t.shim, t.api = s, s.Client()
	t.pid = uint32(s.InitPid())
	if opts.Start {
		t.status = StatusRunning
	}
	m.watch(t)
	p := t.process()
	m.event(ctx, "/tasks/create", p)
	if opts.Start {
		m.event(ctx, "/tasks/start", p)
	}
	return p, nil
}

// AnnotationStdin in a spec asks for the init's stdin to be kept open.
const AnnotationStdin = "io.berth.stdin"

// setupNetwork creates the task's network namespace when the spec asks for a
// new one (a network namespace without a path) on the bridge, and connects
// it. In any other mode the runtime creates the namespace, with only lo, up:
// it dies with the container, and there is nothing to set up or tear down.
func (m *Manager) setupNetwork(ctx context.Context, t *task, spec *specs.Spec) error {
	if spec.Linux == nil || t.meta.Network != network.ModeBridge {
		if len(t.meta.Ports) > 0 {
			return fmt.Errorf("publishing ports needs network mode bridge, not %q: %w", t.meta.Network, errdefs.ErrInvalidArgument)
		}
		return nil
	}
	for i, n := range spec.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace || n.Path != "" {
			continue
		}
		if m.cfg.Network == nil {
			return fmt.Errorf("container networking is unavailable (%v): use --net host or fix that: %w", m.cfg.NetworkErr, errdefs.ErrFailedPrecondition)
		}
		path, err := m.cfg.Network.NewNetNS(t.netName())
		if err != nil {
			return err
		}
		t.meta.NetNSPath = path
		spec.Linux.Namespaces[i].Path = path
		res, err := m.cfg.Network.Setup(ctx, t.netName(), path, network.ModeBridge, t.meta.Ports)
		if err != nil {
			return err
		}
		if res != nil && len(res.IPs) > 0 {
			t.meta.IP = res.IPs[0].Addr().String()
		}
		return nil
	}
	return nil
}

// netName names the task's network namespace and CNI attachment: unique
// across namespaces (a namespace and an id may both contain '-', so they
// are hashed together) yet recognisable by the id's start.
func (t *task) netName() string {
	sum := sha256.Sum256([]byte(t.ns + "/" + t.id))
	return t.id[:min(12, len(t.id))] + "-" + hex.EncodeToString(sum[:8])
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func (m *Manager) event(ctx context.Context, topic string, p Process) {
	if m.cfg.Events != nil {
		m.cfg.Events(ctx, Event{Topic: topic, Process: p})
	}
}

func newTask(ns, id, dir string, status Status) *task {
	return &task{ns: ns, id: id, dir: dir, exitCh: make(chan struct{}), released: make(chan struct{}), done: make(chan struct{}), status: status, execs: map[string]*execProcess{}}
}

func (t *task) currentStatus() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

func (t *task) process() Process {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Process{Namespace: t.ns, ContainerID: t.id, Pid: t.pid, Status: t.status, Exit: t.exit, IP: t.meta.IP}
}

// lookup finds the task of ctx's namespace called id.
func (m *Manager) lookup(ctx context.Context, id string) (*task, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[key(ns, id)]
	if !ok {
		return nil, fmt.Errorf("container %s has no task: %w", id, errdefs.ErrNotFound)
	}
	return t, nil
}

// running returns the task id if its init has not exited.
func (m *Manager) running(ctx context.Context, id string) (*task, error) {
	t, err := m.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.currentStatus() == StatusStopped || t.shim == nil {
		return nil, fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	return t, nil
}

// watch waits for the init of t to exit, then releases the task's
// resources and reports the exit.
func (m *Manager) watch(t *task) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		exit, err := t.wait(m.ctx, "")
		if m.ctx.Err() != nil {
			return // daemon shutting down: the task keeps running
		}
		if err != nil {
			exit = m.deadShimExit(t, err)
		} else {
			t.shimExit = true
		}
		m.exited(t, exit)
	}()
}

// deadShimExit is the exit of a task whose shim cannot be asked: the
// durable record when the shim wrote one, else 255 "unknown".
func (m *Manager) deadShimExit(t *task, cause error) Exit {
	if e, err := shimapi.ReadExit(t.dir); err == nil {
		return exitFromShim(e)
	}
	log.G(m.ctx).Warn("shim gone without an exit record", "namespace", t.ns, "container_id", t.id, "error", cause)
	return Exit{Status: 255, ExitedAt: time.Now().UTC(), Reason: ReasonUnknown}
}

// exited records exit, tells the listeners and waiters, then releases
// everything the task held.
//
// OnExit runs before waiters are told, so that whoever learns of the exit
// finds it recorded; what it starts in reaction (a restart) must wait for
// the cleanup, which the next Create of the task does.
func (m *Manager) exited(t *task, exit Exit) {
	// Not cancelled at Close, which waits: a cleanup that began ends.
	ctx := namespaces.WithNamespace(context.WithoutCancel(m.ctx), t.ns)
	t.mu.Lock()
	t.status, t.exit = StatusStopped, exit
	t.mu.Unlock()
	p := t.process()
	m.event(ctx, "/tasks/exit", p)
	if exit.Reason == shimapi.ReasonOOMKilled {
		m.event(ctx, "/tasks/oom", p)
	}
	if m.cfg.OnExit != nil {
		m.cfg.OnExit(ctx, t.id, exit)
	}
	close(t.exitCh)
	m.release(ctx, t)
	m.mu.Lock()
	if m.retiring[key(t.ns, t.id)] == t {
		delete(m.retiring, key(t.ns, t.id))
	}
	m.mu.Unlock()
}

// release undoes what Create set up and closes t.released, then t.done.
// The runtime forgets the container (through the shim, or by force when the
// shim is gone) first, or, when the shim reported the init's exit so that
// nothing of the container runs, while the rootfs mount (and the network,
// when the task published ports) is released: the runtime's own cleanup (a
// runc process) is then off the path of whoever waits for released to
// remove the container. The network of a task without published ports, the
// cgroup and the task directory go after released. It keeps going past
// errors, logging them.
func (m *Manager) release(ctx context.Context, t *task) {
	warn := func(what string, err error) {
		if err != nil {
			log.G(ctx).Warn("release task: "+what, "namespace", t.ns, "container_id", t.id, "error", err)
		}
	}
	forgotten := make(chan struct{})
	go func() {
		defer close(forgotten)
		m.forget(ctx, t, warn)
	}()
	if !t.shimExit {
		<-forgotten // stray processes may hold the rootfs until killed
	}
	teardown := func() {
		if t.meta.NetNSPath != "" && m.cfg.Network != nil {
			warn("tear down network", m.cfg.Network.Teardown(ctx, t.netName(), t.meta.NetNSPath))
		}
	}
	// Published ports must be free once the task is deleted. An address
	// and a namespace may go a little later, off that path: the bridge
	// plugin's DEL waits tens of milliseconds for the kernel.
	portsHeld := len(t.meta.Ports) > 0
	if portsHeld {
		teardown()
	}
	rootfs := filepath.Join(t.dir, "rootfs")
	if err := mount.UnmountAll(rootfs); err != nil && !errors.Is(err, os.ErrNotExist) {
		warn("unmount rootfs", err)
	}
	close(t.released)
	if !portsHeld {
		teardown()
	}
	<-forgotten
	if t.meta.CgroupsPath != "" {
		if cg, err := cgroups.Load(t.meta.CgroupsPath); err == nil {
			warn("kill cgroup", cg.Kill())
			warn("delete cgroup", cg.Delete())
		}
	}
	warn("remove task directory", os.RemoveAll(t.dir))
	close(t.done)
}

// forget removes the container from the runtime through its shim, which
// then exits, or by force when the shim cannot do it.
func (m *Manager) forget(ctx context.Context, t *task, warn func(string, error)) {
	shimDeleted := false
	if t.shim != nil {
		_, err := t.api.Delete(ctx, "")
		warn("delete in shim", err)
		shimDeleted = err == nil
		t.shim.Close()
	}
	if !shimDeleted && t.meta.RuntimePath != "" && m.cfg.ShimPath != "" {
		warn("force-delete in runtime", ForceDelete(ctx, DeleteOptions{
			ShimPath: m.cfg.ShimPath, Runtime: t.meta.RuntimePath, RuntimeRoot: filepath.Join(m.cfg.State, "runtime", t.ns), ID: t.id,
		}))
	}
}
