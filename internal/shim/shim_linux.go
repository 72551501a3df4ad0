package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
	"github.com/berth-dev/berth/internal/log"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds how long the shim waits, after a process exited, for
// its output to end before it tells waiters: a process that escaped the
// container's pid namespace may hold the pipes open forever.
const drainTimeout = 2 * time.Second

// Config is what berth-shim is started with (its flags).
type Config struct {
	ID          string // container ID, as the runtime knows it
	Bundle      string // task directory: config.json, the shim's files; its working directory
	Runtime     string // OCI runtime binary (runc or crun)
	RuntimeRoot string // the runtime's --root
	// RuntimeFD, when not negative, is an inherited descriptor of a sealed
	// copy of Runtime, which is executed instead (see docs/shim-protocol.md).
	RuntimeFD   int
	LogPath     string // container log (CRI format); empty for none
	LogMaxSize  int64  // rotate the log when it would exceed this many bytes; 0 never
	LogMaxFiles int    // files kept, the live one included
	Terminal    bool   // give the init a terminal
	Stdin       bool   // keep the init's stdin open for attachers
	Start       bool   // create and start in one runtime invocation (runtime run --detach)
	Version     string // build version reported by the version method
}

// validExecID reports whether id may name an exec process: it becomes part
// of file names in the bundle.
func validExecID(id string) bool {
	if id == "" || len(id) > 64 || id[0] == '.' || id[0] == '-' || id[0] == '_' {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// process is the init or an exec process.
type process struct {
	id       string // "" for the init
	terminal bool
	stdin    bool
	io       *stdio
	// exited is closed once exit is set and the output has ended (or
	// drainTimeout passed): waiters are told then.
	exited chan struct{}
	// op serializes the runtime calls that change the process's status.
	op sync.Mutex

	// Guarded by service.mu.
	status   shimapi.Status
	pid      int
	pidfd    int // exec processes, to signal them safely; -1 when closed
	exit     *shimapi.Exit
	oomFile  string // init: the cgroup file counting OOM kills
	oomBase  uint64 // init: the OOM kill count when it was created
	rtGone   bool   // init: the runtime no longer knows the container
	execSeq  int    // init: counter for exec console socket names
	specPath string // exec: the process.json handed to the runtime
}

// service is a running shim.
type service struct {
	cfg    Config
	log    *slog.Logger
	rt     *ociRuntime
	reaper *reaper

	wg       sync.WaitGroup // every goroutine but Run's
	deleted  chan struct{}  // closed once the init's delete was answered: shut down
	stopOnce sync.Once

	mu    sync.Mutex
	procs map[string]*process // "" is the init
	conns map[net.Conn]struct{}
}

// Run creates the container, reports on ready, and serves the API on
// Bundle/shim.sock until the init is deleted or ctx ends. ready receives one
// JSON line: a shimapi.Response with Pid (the init's pid) on success, or with
// Error (holding the runtime's own message) on failure. Run logs to the
// logger in ctx. It must be the only thing the process does: it makes the
// process a child subreaper, changes its working directory and reaps every
// child.
func Run(ctx context.Context, cfg Config, ready io.Writer) error {
	err := run(ctx, cfg, ready)
	if err != nil && ready != nil {
		reportReady(ready, &shimapi.Response{Error: shimapi.ToError(err)})
	}
	return err
}

func run(ctx context.Context, cfg Config, ready io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := os.Chdir(cfg.Bundle); err != nil {
		return fmt.Errorf("enter bundle: %w", err)
	}
	r, err := newReaper()
	if err != nil {
		return err
	}
	defer r.close()
	s := &service{
		cfg:     cfg,
		log:     log.G(ctx),
		reaper:  r,
		deleted: make(chan struct{}),
		procs:   make(map[string]*process),
		conns:   make(map[net.Conn]struct{}),
	}
	if s.rt, err = newOCIRuntime(cfg.Runtime, cfg.RuntimeRoot, cfg.Bundle, r.start); err != nil {
		return err
	}
	if cfg.RuntimeFD >= 0 {
		if s.rt.exe, err = linkRuntimeCopy(cfg.Runtime, cfg.RuntimeFD); err != nil {
			return err
		}
	}
	defer s.rt.close()

	// The socket is bound relative to the bundle, so that the length of the
	// bundle's path never matters, with umask 0177 so that it is born 0600.
	os.Remove(shimapi.SocketFile)
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: shimapi.SocketFile, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", shimapi.SocketFile, err)
	}
	defer l.Close()
	if err := os.WriteFile(shimapi.PidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}

	p, err := s.createInit()
	if err != nil {
		return err
	}
	s.log.Info("container created", "pid", p.pid, "started", cfg.Start)
	if ready != nil {
		reportReady(ready, &shimapi.Response{Pid: p.pid})
	}

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(l)
	}()
	select {
	case <-s.deleted:
	case <-ctx.Done():
	}
	s.shutdown(l)
	return nil
}

// linkRuntimeCopy returns what to execute to run the sealed copy of the
// runtime inherited as fd: a symlink in the bundle (the working directory)
// named like the runtime, say "runc", to /proc/self/fd/FD, which resolves in
// the process that executes it. The process is then called "runc" (its
// comm, which top and ps -o comm show), not "4". A name the bundle uses
// for something else falls back to the bare /proc path.
func linkRuntimeCopy(runtime string, fd int) (string, error) {
	target := "/proc/self/fd/" + strconv.Itoa(fd)
	name := filepath.Base(runtime)
	switch name {
	case "config.json", "rootfs", shimapi.SocketFile, shimapi.PidFile, shimapi.LogFile, shimapi.InitPidFile, shimapi.ExitFile:
		return target, nil
	}
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "runtime-") || strings.HasSuffix(name, ".json") {
		return target, nil
	}
	os.Remove(name)
	if err := os.Symlink(target, name); err != nil {
		return "", fmt.Errorf("link the runtime's sealed copy: %w", err)
	}
	return "./" + name, nil
}

func (cfg *Config) validate() error {
	switch {
	case cfg.ID == "":
		return fmt.Errorf("shim config: no container id: %w", shimapi.ErrInvalidArgument)
	case !filepath.IsAbs(cfg.Bundle):
		return fmt.Errorf("shim config: bundle %q is not an absolute path: %w", cfg.Bundle, shimapi.ErrInvalidArgument)
	case cfg.Runtime == "" || cfg.RuntimeRoot == "":
		return fmt.Errorf("shim config: runtime and runtime root are required: %w", shimapi.ErrInvalidArgument)
	case cfg.LogMaxSize < 0:
		return fmt.Errorf("shim config: negative log size: %w", shimapi.ErrInvalidArgument)
	}
	return nil
}

func reportReady(w io.Writer, resp *shimapi.Response) {
	b, _ := json.Marshal(resp)
	_, _ = w.Write(append(b, '\n'))
}

// createInit creates (or with cfg.Start runs) the container.
func (s *service) createInit() (*process, error) {
	cfg := s.cfg
	var logf *logFile
	if cfg.LogPath != "" {
		var err error
		if logf, err = openLogFile(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles, s.log); err != nil {
			return nil, err
		}
	}
	sio, err := newStdio(cfg.Terminal, cfg.Stdin, logf, s.log)
	if err != nil {
		return nil, err
	}
	p := &process{terminal: cfg.Terminal, stdin: cfg.Stdin, io: sio, exited: make(chan struct{}), pidfd: -1, status: shimapi.StatusCreated}
	op := "create"
	if cfg.Start {
		op = "run"
	}
	pidFile := filepath.Join(cfg.Bundle, shimapi.InitPidFile)
	err = s.runtimeCreate(sio, "console.sock", func() error {
		return s.rt.create(op, cfg.ID, cfg.Bundle, pidFile, &sio.child)
	})
	if err == nil {
		p.pid, err = readPid(pidFile)
	}
	if err != nil {
		// Leave nothing behind in the runtime (a half-made cgroup).
		if derr := s.rt.forceDelete(cfg.ID); derr != nil {
			s.log.Warn("clean up after failed create", "error", derr)
		}
		sio.close()
		if logf != nil {
			logf.close()
		}
		return nil, err
	}
	if cfg.Start {
		p.status = shimapi.StatusRunning
	}
	p.oomFile = oomKillsFile(p.pid)
	if !cfg.Start && p.oomFile != "" {
		// runtime run gives a new cgroup whose count starts at zero;
		// reading it now could already include the process's own kill.
		p.oomBase, _ = readOOMKills(p.oomFile)
	}
	s.mu.Lock()
	s.procs[""] = p
	s.mu.Unlock()
	sio.startPumps(&s.wg)
	s.watch(p, p.pid)
	return p, nil
}

// runtimeCreate runs create, an invocation that makes a process with sio as
// its stdio, then drops the shim's copies of the process's ends and, for a
// terminal, receives the master over the console socket named console. On
// failure the caller releases sio.
func (s *service) runtimeCreate(sio *stdio, console string, create func() error) error {
	var receive func(bool) (*os.File, error)
	if sio.terminal {
		var err error
		if receive, err = receiveConsole(console); err != nil {
			return err
		}
		sio.child.consoleSocket = console
		defer os.Remove(console)
	}
	err := create()
	sio.closeChildEnds()
	if receive != nil {
		master, rerr := receive(err != nil)
		if err == nil && rerr != nil {
			err = rerr
		}
		if err == nil {
			sio.setTerminal(master)
		}
	}
	return err
}

// watch waits, in a goroutine, for the reap loop to report pid's exit.
func (s *service) watch(p *process, pid int) {
	ch := s.reaper.watch(pid)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.exited(p, <-ch)
	}()
}

// exited records how p ended. For the init the exit record is made durable
// first, then the output is drained, then waiters are told, then the runtime
// forgets the container so that a later delete is quick.
func (s *service) exited(p *process, ws unix.WaitStatus) {
	e := &shimapi.Exit{Status: exitCode(ws), ExitedAt: time.Now().UTC(), Pid: p.pid}
	s.mu.Lock()
	oomFile, oomBase := p.oomFile, p.oomBase
	s.mu.Unlock()
	if p.id == "" {
		if oomFile != "" {
			if n, err := readOOMKills(oomFile); err == nil && n > oomBase {
				e.Reason = shimapi.ReasonOOMKilled
			}
		}
		if err := writeExitRecord(s.cfg.Bundle, e); err != nil {
			s.log.Error("write exit record", "error", err)
		}
	}
	s.mu.Lock()
	p.status, p.exit = shimapi.StatusStopped, e
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
	s.mu.Unlock()
	s.log.Info("process exited", "exec_id", p.id, "pid", e.Pid, "status", e.Status, "reason", e.Reason)

	select {
	case <-p.io.done:
	case <-time.After(drainTimeout):
		s.log.Warn("process output still open after exit", "exec_id", p.id)
	}
	close(p.exited)

	if p.id == "" {
		p.op.Lock()
		defer p.op.Unlock()
		s.deleteFromRuntime(p)
	}
}

// deleteFromRuntime removes the stopped container from the runtime, once;
// p.op is held.
func (s *service) deleteFromRuntime(p *process) {
	s.mu.Lock()
	gone := p.rtGone
	s.mu.Unlock()
	if gone {
		return
	}
	if err := s.rt.forceDelete(s.cfg.ID); err != nil {
		s.log.Warn("delete container from runtime", "error", err)
		return
	}
	s.mu.Lock()
	p.rtGone = true
	s.mu.Unlock()
}

// writeExitRecord writes e to dir/exit durably: a temporary file, fsync,
// rename, fsync of the directory.
func writeExitRecord(dir string, e *shimapi.Exit) error {
	path := filepath.Join(dir, shimapi.ExitFile)
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write exit record: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write exit record: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write exit record: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write exit record: sync directory: %w", err)
	}
	return nil
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("read pid file %s: bad pid %q", path, b)
	}
	return pid, nil
}

// lookup returns the init (id "") or exec process id.
func (s *service) lookup(id string) (*process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[id]
	if !ok {
		return nil, fmt.Errorf("exec process %q: %w", id, shimapi.ErrNotFound)
	}
	return p, nil
}

func (s *service) state(p *process) *shimapi.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &shimapi.State{ID: p.id, Status: p.status, Pid: p.pid, Terminal: p.terminal, Stdin: p.stdin, Exit: p.exit}
}

// check reports whether o may be performed on p now.
func (s *service) check(p *process, o op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allowed(p, o)
}

// allowed is check with s.mu held.
func (s *service) allowed(p *process, o op) error {
	if err := allowed(p.status, o); err != nil {
		return fmt.Errorf("%s %s: %w", o, s.name(p), err)
	}
	return nil
}

// name names p in errors.
func (s *service) name(p *process) string {
	if p.id == "" {
		return strconv.Quote(s.cfg.ID)
	}
	return "exec process " + strconv.Quote(p.id)
}

// advance moves p to its status after o succeeded.
func (s *service) advance(p *process, o op) {
	s.mu.Lock()
	p.status = after(p.status, o)
	s.mu.Unlock()
}

func (s *service) start(p *process) (int, error) {
	p.op.Lock()
	defer p.op.Unlock()
	if err := s.check(p, opStart); err != nil {
		return 0, err
	}
	if p.id != "" {
		return s.startExec(p)
	}
	if err := s.rt.start(s.cfg.ID); err != nil {
		return 0, err
	}
	s.advance(p, opStart)
	return p.pid, nil
}

func (s *service) kill(p *process, sig int, all bool) error {
	if sig <= 0 || sig > 64 {
		return fmt.Errorf("kill: bad signal %d: %w", sig, shimapi.ErrInvalidArgument)
	}
	if p.id != "" {
		if all {
			return fmt.Errorf("kill: all applies to the init only: %w", shimapi.ErrInvalidArgument)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.allowed(p, opKill); err != nil {
			return err
		}
		if p.pidfd < 0 {
			return fmt.Errorf("kill exec process %q: not started: %w", p.id, shimapi.ErrFailedPrecondition)
		}
		if err := unix.PidfdSendSignal(p.pidfd, unix.Signal(sig), nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill exec process %q: %w", p.id, err)
		}
		return nil
	}
	// Not under p.op: a kill must get through while a pause or start hangs.
	if err := s.check(p, opKill); err != nil {
		return err
	}
	kill := s.rt.kill
	if all {
		kill = s.rt.killAll
	}
	if err := kill(s.cfg.ID, sig); err != nil {
		if cerr := s.check(p, opKill); cerr != nil {
			return cerr // it exited meanwhile
		}
		return err
	}
	// A frozen process dies only once thawed.
	s.mu.Lock()
	paused := p.status == shimapi.StatusPaused
	s.mu.Unlock()
	if paused && sig == int(unix.SIGKILL) {
		p.op.Lock()
		defer p.op.Unlock()
		if err := s.rt.resume(s.cfg.ID); err != nil {
			s.log.Warn("resume after kill", "error", err)
		}
		s.advance(p, opResume)
	}
	return nil
}

func (s *service) pauseOrResume(p *process, o op) error {
	p.op.Lock()
	defer p.op.Unlock()
	if err := s.check(p, o); err != nil {
		return err
	}
	f := s.rt.pause
	if o == opResume {
		f = s.rt.resume
	}
	if err := f(s.cfg.ID); err != nil {
		return err
	}
	s.advance(p, o)
	return nil
}

func (s *service) update(p *process, resources json.RawMessage) error {
	if len(resources) == 0 {
		return fmt.Errorf("update: no resources: %w", shimapi.ErrInvalidArgument)
	}
	p.op.Lock()
	defer p.op.Unlock()
	if err := s.check(p, opUpdate); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.cfg.Bundle, "resources-*.json")
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(resources)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return s.rt.update(s.cfg.ID, f.Name())
}

// addExec registers a new exec process in status created.
func (s *service) addExec(id string, spec json.RawMessage, stdin bool) error {
	if !validExecID(id) {
		return fmt.Errorf("exec: bad exec id %q: %w", id, shimapi.ErrInvalidArgument)
	}
	var proc struct {
		Terminal bool     `json:"terminal"`
		Args     []string `json:"args"`
	}
	if err := json.Unmarshal(spec, &proc); err != nil || len(proc.Args) == 0 {
		return fmt.Errorf("exec %q: process is not an OCI process with args: %w", id, shimapi.ErrInvalidArgument)
	}
	initp, _ := s.lookup("")
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.allowed(initp, opExec); err != nil {
		return err
	}
	if _, ok := s.procs[id]; ok {
		return fmt.Errorf("exec %q: %w", id, shimapi.ErrAlreadyExists)
	}
	specPath := filepath.Join(s.cfg.Bundle, "exec-"+id+".json")
	if err := os.WriteFile(specPath, spec, 0o600); err != nil {
		return fmt.Errorf("exec %q: %w", id, err)
	}
	sio, err := newStdio(proc.Terminal, stdin, nil, s.log)
	if err != nil {
		os.Remove(specPath)
		return fmt.Errorf("exec %q: %w", id, err)
	}
	s.procs[id] = &process{id: id, terminal: proc.Terminal, stdin: stdin, io: sio, exited: make(chan struct{}),
		pidfd: -1, status: shimapi.StatusCreated, specPath: specPath}
	return nil
}

// startExec runs the created exec process p; p.op is held.
func (s *service) startExec(p *process) (int, error) {
	initp, _ := s.lookup("")
	s.mu.Lock()
	initp.execSeq++
	console := "console-" + strconv.Itoa(initp.execSeq) + ".sock"
	s.mu.Unlock()
	pidFile := strings.TrimSuffix(p.specPath, ".json") + ".pid"
	defer os.Remove(pidFile)
	err := s.runtimeCreate(p.io, console, func() error {
		return s.rt.exec(s.cfg.ID, p.specPath, pidFile, &p.io.child)
	})
	var pid int
	if err == nil {
		pid, err = readPid(pidFile)
	}
	if err != nil {
		// A process that never ran: it is stopped, and its waiters and
		// attachers are released.
		s.mu.Lock()
		p.status = shimapi.StatusStopped
		p.exit = &shimapi.Exit{Status: 255, ExitedAt: time.Now().UTC()}
		s.mu.Unlock()
		p.io.end()
		p.io.close()
		close(p.exited)
		return 0, err
	}
	pidfd, ferr := unix.PidfdOpen(pid, 0)
	s.mu.Lock()
	p.pid = pid
	if ferr == nil {
		p.pidfd = pidfd
	}
	p.status = after(p.status, opStart)
	s.mu.Unlock()
	p.io.startPumps(&s.wg)
	s.watch(p, pid)
	return pid, nil
}

// wait blocks until p exited, or gone is closed (the client left).
func (s *service) wait(p *process, gone <-chan struct{}) (*shimapi.Exit, error) {
	select {
	case <-p.exited:
	case <-gone:
		return nil, fmt.Errorf("wait: client gone: %w", shimapi.ErrUnavailable)
	case <-s.deleted:
		return nil, fmt.Errorf("wait: shim shutting down: %w", shimapi.ErrUnavailable)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.exit == nil {
		return nil, fmt.Errorf("wait %s: deleted before it started: %w", s.name(p), shimapi.ErrNotFound)
	}
	return p.exit, nil
}

// deleteProcess removes p. For the init it kills a created container, then
// removes it from the runtime; the shim then shuts down.
func (s *service) deleteProcess(p *process) (*shimapi.Exit, error) {
	p.op.Lock()
	defer p.op.Unlock()
	if err := s.check(p, opDelete); err != nil {
		return nil, err
	}
	if p.id == "" {
		s.mu.Lock()
		created := p.status == shimapi.StatusCreated
		s.mu.Unlock()
		if created {
			if err := s.rt.forceDelete(s.cfg.ID); err != nil {
				return nil, err
			}
			s.mu.Lock()
			p.rtGone = true
			s.mu.Unlock()
		}
		<-p.exited
		s.deleteFromRuntime(p)
		s.mu.Lock()
		defer s.mu.Unlock()
		if !p.rtGone {
			return nil, fmt.Errorf("delete container %q from the runtime failed, see the shim log: %w", s.cfg.ID, shimapi.ErrUnavailable)
		}
		return p.exit, nil
	}
	s.mu.Lock()
	delete(s.procs, p.id)
	e := p.exit
	s.mu.Unlock()
	if e == nil {
		// Never started: release its waiters (wait finds no exit) too.
		close(p.exited)
		e = &shimapi.Exit{}
	}
	p.io.end()
	p.io.close()
	os.Remove(p.specPath)
	return e, nil
}
