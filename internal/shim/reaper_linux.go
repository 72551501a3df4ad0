package shim

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// unclaimedTTL bounds how long the reaper keeps the status of a child that
// nobody watched yet: a container process whose pid file had not been read
// when it exited is claimed within milliseconds; an orphan never is.
const unclaimedTTL = 10 * time.Second

// reaper is the one place the shim waits for children. The shim is a child
// subreaper, so runtime invocations, the container's init once the runtime
// exits, exec processes and orphans all end up here: one loop calls
// wait4(-1) on every SIGCHLD and hands each status to whoever watches its
// pid. Nothing else in the shim may wait for a process.
type reaper struct {
	sigc chan os.Signal
	done chan struct{}

	mu        sync.Mutex
	watchers  map[int]chan unix.WaitStatus
	unclaimed map[int]reaped
}

type reaped struct {
	status unix.WaitStatus
	at     time.Time
}

// newReaper makes the calling process a child subreaper and starts the reap
// loop. It must run before the shim starts any child.
func newReaper() (*reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, os.NewSyscallError("prctl PR_SET_CHILD_SUBREAPER", err)
	}
	r := &reaper{
		sigc:      make(chan os.Signal, 1),
		done:      make(chan struct{}),
		watchers:  make(map[int]chan unix.WaitStatus),
		unclaimed: make(map[int]reaped),
	}
	signal.Notify(r.sigc, unix.SIGCHLD)
	go r.loop()
	return r, nil
}

func (r *reaper) loop() {
	defer close(r.done)
	for range r.sigc {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			r.dispatch(pid, ws)
		}
	}
}

func (r *reaper) dispatch(pid int, ws unix.WaitStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.watchers[pid]; ok {
		delete(r.watchers, pid)
		ch <- ws
		return
	}
	now := time.Now()
	for p, u := range r.unclaimed {
		if now.Sub(u.at) > unclaimedTTL {
			delete(r.unclaimed, p)
		}
	}
	r.unclaimed[pid] = reaped{status: ws, at: now}
}

// start starts cmd and returns a channel that receives its wait status. The
// caller must never call cmd.Wait.
func (r *reaper) start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.watchers[cmd.Process.Pid] = ch
	// Drop the pidfd os/exec holds; the reap loop owns the child.
	_ = cmd.Process.Release()
	return ch, nil
}

// watch returns a channel that receives the wait status of pid, a process the
// shim learned of from a pid file. If pid was already reaped its status is
// delivered at once.
func (r *reaper) watch(pid int) <-chan unix.WaitStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan unix.WaitStatus, 1)
	if u, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		ch <- u.status
		return ch
	}
	r.watchers[pid] = ch
	return ch
}

// close stops the reap loop and waits for it.
func (r *reaper) close() {
	signal.Stop(r.sigc)
	close(r.sigc)
	<-r.done
}

// exitCode turns a wait status into a shell-style exit code: the exit status,
// or 128+n for a process killed by signal n.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
