package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// DefaultRuntime is the OCI runtime binary used when none is configured.
const DefaultRuntime = "/usr/sbin/runc"

// connectTimeout bounds ConnectShim when ctx has no deadline: a live shim
// answers in well under a millisecond.
const connectTimeout = 2 * time.Second

// shimEnv is the whole environment of a shim and of the runtimes it runs.
var shimEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// StartOptions describes a container for StartShim. Bundle is the task
// directory (0700) that holds the OCI bundle: config.json, and the root
// filesystem already mounted where config.json's root.path says. The shim
// keeps its own files there too (see shimapi's *File constants and
// docs/shim-protocol.md).
type StartOptions struct {
	ShimPath string // the berth-shim binary
	ID       string // container ID, unique under RuntimeRoot
	Bundle   string // task directory, absolute
	Runtime  string // OCI runtime binary; DefaultRuntime when empty
	// RuntimeCopy, when set, is a sealed copy of Runtime (sealedCopy) that
	// the shim runs instead of the binary.
	RuntimeCopy *os.File
	RuntimeRoot string // the runtime's state directory (its --root)
	LogPath     string // container log in CRI format; empty for none
	LogMaxSize  int64  // rotate the log when it would exceed this; 0 never
	LogMaxFiles int    // log files kept, the live one included; 0 means 1
	TTY         bool   // give the init a terminal (its output is then all stdout)
	Stdin       bool   // keep the init's stdin open for attachers
	// Start also starts the container, in one runtime invocation
	// ("runtime run --detach"). Output written before the first attach
	// reaches only the log; attach then Start instead to miss nothing.
	Start bool
}

// Shim is a handle on a running berth-shim, from StartShim or ConnectShim.
// It is safe for concurrent use; each call of its Client opens its own
// connection, so any number of calls (say, one blocked Wait per task plus
// state and exec calls) may run at once.
//
// A Shim watches its process with one goroutine parked in Go's poller: Done
// is closed when the shim exits, normally after the init was deleted, or
// when it dies. When the daemon started the shim, that goroutine also reaps
// it, so no zombie is left; it then ends only when the shim exits (Close
// does not stop it). For a shim from ConnectShim, Close stops it.
type Shim struct {
	dir     string
	pid     int
	initPid int
	client  *shimapi.Client
	done    chan struct{}
	child   bool     // started by this process, which must reap it
	pidfd   *os.File // watched by watch; nil if the shim was gone at once
}

// StartShim launches berth-shim for the bundle in opts.Bundle and returns
// once the container is created, or running with opts.Start. The shim runs
// in its own session with /dev/null as stdio and its diagnostics in
// Bundle/shim.log; it outlives the daemon. A runtime failure is returned
// with the runtime's own message (matching the shimapi sentinel of its
// code); a shim that died without a word, with the end of its log and
// errdefs.ErrUnavailable. If ctx ends first, the shim is killed and the
// container force-deleted.
func StartShim(ctx context.Context, opts StartOptions) (*Shim, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Runtime == "" {
		opts.Runtime = DefaultRuntime
	}
	logf, err := os.OpenFile(filepath.Join(opts.Bundle, shimapi.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start shim for %q: %w", opts.ID, err)
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start shim for %q: %w", opts.ID, err)
	}
	defer readyR.Close()

	cmd := exec.Command(opts.ShimPath, opts.args()...)
	cmd.Dir = opts.Bundle
	cmd.Env = shimEnv
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{readyW} // fd 3
	if opts.RuntimeCopy != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, opts.RuntimeCopy) // fd 4
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start shim for %q: %w", opts.ID, err)
	}
	s := &Shim{
		dir:    opts.Bundle,
		pid:    cmd.Process.Pid,
		client: shimapi.NewClient(filepath.Join(opts.Bundle, shimapi.SocketFile)),
		done:   make(chan struct{}),
	}
	// Open a pidfd before letting go of the child: it cannot be reaped, so
	// its pid cannot be reused, until the watcher does it.
	pidfd, perr := unix.PidfdOpen(s.pid, unix.PIDFD_NONBLOCK)
	_ = cmd.Process.Release()
	if perr != nil {
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(s.pid, &ws, 0, nil)
		return nil, fmt.Errorf("start shim for %q: pidfd_open: %w", opts.ID, perr)
	}
	s.child, s.pidfd = true, os.NewFile(uintptr(pidfd), "pidfd")
	go s.watch()

	resp, err := readReady(ctx, readyR)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		s.kill()
		<-s.done
		if derr := ForceDelete(context.WithoutCancel(ctx), DeleteOptions{ShimPath: opts.ShimPath, Runtime: opts.Runtime, RuntimeRoot: opts.RuntimeRoot, ID: opts.ID}); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("start shim for %q: %w", opts.ID, err)
	case err != nil:
		// The shim died before it reported.
		<-s.done
		return nil, fmt.Errorf("start shim for %q: %w; shim log: %s: %w", opts.ID, err, logTail(opts.Bundle), errdefs.ErrUnavailable)
	case resp.Error != nil:
		<-s.done // the shim cleaned up and exits
		return nil, fmt.Errorf("start shim for %q: %w", opts.ID, fromShim(resp.Error))
	}
	s.initPid = resp.Pid
	return s, nil
}

func (o *StartOptions) validate() error {
	switch {
	case o.ShimPath == "":
		return fmt.Errorf("start shim: no shim binary: %w", errdefs.ErrInvalidArgument)
	case o.ID == "":
		return fmt.Errorf("start shim: no container id: %w", errdefs.ErrInvalidArgument)
	case !filepath.IsAbs(o.Bundle):
		return fmt.Errorf("start shim for %q: task directory %q is not absolute: %w", o.ID, o.Bundle, errdefs.ErrInvalidArgument)
	case o.RuntimeRoot == "":
		return fmt.Errorf("start shim for %q: no runtime root: %w", o.ID, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (o *StartOptions) args() []string {
	args := []string{
		"--id", o.ID, "--bundle", o.Bundle, "--runtime", o.Runtime, "--runtime-root", o.RuntimeRoot, "--ready-fd", "3",
	}
	if o.RuntimeCopy != nil {
		args = append(args, "--runtime-fd", "4")
	}
	if o.LogPath != "" {
		args = append(args, "--log-path", o.LogPath,
			"--log-max-size", strconv.FormatInt(o.LogMaxSize, 10), "--log-max-files", strconv.Itoa(max(o.LogMaxFiles, 1)))
	}
	for _, f := range []struct {
		on   bool
		flag string
	}{{o.TTY, "--tty"}, {o.Stdin, "--stdin"}, {o.Start, "--start"}} {
		if f.on {
			args = append(args, f.flag)
		}
	}
	return args
}

// readReady reads the shim's readiness line.
func readReady(ctx context.Context, r *os.File) (*shimapi.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = r.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = r.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The pipe's deadline may fire before ctx's timer.
			return nil, context.DeadlineExceeded
		}
		if errors.Is(err, io.EOF) {
			return nil, errors.New("shim exited before it reported")
		}
		return nil, err
	}
	var resp shimapi.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("decode readiness line %q: %w", line, err)
	}
	return &resp, nil
}

// logTail returns the end of the shim's log in dir, for errors.
func logTail(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, shimapi.LogFile))
	if err != nil {
		return err.Error()
	}
	b = bytes.TrimSpace(b)
	if len(b) > 1024 {
		b = b[len(b)-1024:]
	}
	return string(b)
}

// ConnectShim returns a handle on the shim already running in task directory
// dir, for a daemon that restarted. It fails fast with errdefs.ErrUnavailable
// when the shim is dead (its socket refuses or is gone); then shimapi.ReadExit tells
// whether the container's init exited and how, and ForceDelete clears what
// is left. Without a deadline in ctx, ConnectShim gives up after 2 s.
func ConnectShim(ctx context.Context, dir string) (*Shim, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, connectTimeout)
		defer cancel()
	}
	c := shimapi.NewClient(filepath.Join(dir, shimapi.SocketFile))
	v, err := c.Version(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to shim in %s: %w", dir, fromShim(err))
	}
	st, err := c.State(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("connect to shim in %s: %w", dir, fromShim(err))
	}
	s := &Shim{dir: dir, pid: v.Pid, initPid: st.Pid, client: c, done: make(chan struct{})}
	pidfd, err := unix.PidfdOpen(v.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		// It died since it answered.
		close(s.done)
		return s, nil
	}
	s.pidfd = os.NewFile(uintptr(pidfd), "pidfd")
	go s.watch()
	return s, nil
}

// watch closes s.done when the process behind pidfd exits, reaping it when
// it is the daemon's child. It waits in Go's poller, not on a thread, and
// ends early, leaving s.done open, when Close closes the pidfd.
func (s *Shim) watch() {
	exited := false
	rc, err := s.pidfd.SyscallConn()
	if err == nil {
		_ = rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, err := unix.Poll(fds, 0); err == nil && n == 0 {
				return false // still running: wait for readability
			}
			if s.child {
				var info unix.Siginfo
				_ = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG, nil)
			}
			exited = true
			return true
		})
	}
	if exited {
		s.pidfd.Close()
		close(s.done)
	}
}

// Close stops watching a shim the daemon did not start (one from
// ConnectShim); Done then stays open unless the shim already exited. For a
// shim from StartShim, Close does nothing: its watcher must stay to reap it,
// and ends when the shim exits. The shim itself is not affected either way.
func (s *Shim) Close() {
	if !s.child && s.pidfd != nil {
		s.pidfd.Close()
	}
}

func (s *Shim) kill() {
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
}

// Client returns the API client of the shim.
func (s *Shim) Client() *shimapi.Client { return s.client }

// Pid returns the shim's pid.
func (s *Shim) Pid() int { return s.pid }

// InitPid returns the pid of the container's init.
func (s *Shim) InitPid() int { return s.initPid }

// Dir returns the task directory.
func (s *Shim) Dir() string { return s.dir }

// Done is closed when the shim process has exited.
func (s *Shim) Done() <-chan struct{} { return s.done }

// DeleteOptions names a container for ForceDelete.
type DeleteOptions struct {
	ShimPath    string // the berth-shim binary
	Runtime     string // OCI runtime binary; DefaultRuntime when empty
	RuntimeRoot string
	ID          string
}

// ForceDelete kills every process of a container whose shim is gone and
// removes it from the runtime (runtime delete --force, through berth-shim so
// that crun gets the same treatment as under a shim). Deleting a container
// the runtime does not know succeeds.
func ForceDelete(ctx context.Context, opts DeleteOptions) error {
	if opts.Runtime == "" {
		opts.Runtime = DefaultRuntime
	}
	cmd := exec.CommandContext(ctx, opts.ShimPath, "delete", "--id", opts.ID, "--runtime", opts.Runtime, "--runtime-root", opts.RuntimeRoot)
	cmd.Env = shimEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("force delete container %q: %w: %s", opts.ID, err, bytes.TrimSpace(out))
	}
	return nil
}

// Memory is the memory a process uses, in bytes, from /proc/PID/smaps_rollup.
type Memory struct {
	RSS uint64 // resident
	PSS uint64 // resident, shared pages divided among their users
	USS uint64 // resident and private to the process
}

// Memory returns the shim process's own memory use.
func (s *Shim) Memory() (Memory, error) { return ProcessMemory(s.pid) }

// ProcessMemory reads the memory use of process pid.
func ProcessMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	var m Memory
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "Rss":
			m.RSS = kb << 10
		case "Pss":
			m.PSS = kb << 10
		case "Private_Clean", "Private_Dirty":
			m.USS += kb << 10
		}
	}
	return m, nil
}
