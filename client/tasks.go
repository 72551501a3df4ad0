package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	tasksapi "github.com/berth-dev/berth/api/tasks/v1"
)

// Process is the state of a container's task (its init process, ExecID
// empty) or of one exec in it.
type Process struct {
	ContainerID string    `json:"container_id"`
	ExecID      string    `json:"exec_id,omitempty"`
	PID         uint32    `json:"pid"`
	Status      Status    `json:"status"`
	ExitStatus  int32     `json:"exit_status"`
	ExitedAt    time.Time `json:"exited_at"`
	// ExitReason explains an exit the status alone does not: "OOMKilled",
	// or "unknown" when the shim died and the status was lost.
	ExitReason string `json:"exit_reason,omitempty"`
}

func processFromProto(p *tasksapi.Process) Process {
	return Process{
		ContainerID: p.GetContainerId(), ExecID: p.GetExecId(), PID: p.GetPid(), Status: Status(p.GetStatus()),
		ExitStatus: p.GetExitStatus(), ExitedAt: timeOf(p.GetExitedAt()), ExitReason: p.GetExitReason(),
	}
}

// In every task method, containerID names the container by id, unique id
// prefix or name, and execID selects one of its execs; an empty execID
// means the task's init process.

// CreateTask creates the task of a container: the daemon mounts its
// snapshot, sets up its network and starts its shim. With start, the task
// also starts.
func (c *Client) CreateTask(ctx context.Context, containerID string, start bool) (Process, error) {
	r, err := c.tasksAPI().Create(ctx, &tasksapi.CreateTaskRequest{ContainerId: containerID, Start: start})
	if err != nil {
		return Process{}, err
	}
	return processFromProto(r.GetProcess()), nil
}

// StartTask starts a created task or exec.
func (c *Client) StartTask(ctx context.Context, containerID, execID string) (Process, error) {
	r, err := c.tasksAPI().Start(ctx, &tasksapi.StartRequest{ContainerId: containerID, ExecId: execID})
	if err != nil {
		return Process{}, err
	}
	return processFromProto(r.GetProcess()), nil
}

// DeleteTask removes a stopped task or exec and returns its final state. A
// running one is refused (ErrFailedPrecondition) unless force, which kills
// it first.
func (c *Client) DeleteTask(ctx context.Context, containerID, execID string, force bool) (Process, error) {
	r, err := c.tasksAPI().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerId: containerID, ExecId: execID, Force: force})
	if err != nil {
		return Process{}, err
	}
	return processFromProto(r.GetProcess()), nil
}

// KillTask sends sig to a process, or with all to every process of the
// task.
func (c *Client) KillTask(ctx context.Context, containerID, execID string, sig syscall.Signal, all bool) error {
	_, err := c.tasksAPI().Kill(ctx, &tasksapi.KillRequest{ContainerId: containerID, ExecId: execID, Signal: uint32(sig), All: all})
	return err
}

// WaitTask blocks until a process exits, or ctx ends, and returns its
// final state; a process that has exited answers at once.
func (c *Client) WaitTask(ctx context.Context, containerID, execID string) (Process, error) {
	r, err := c.tasksAPI().Wait(ctx, &tasksapi.WaitRequest{ContainerId: containerID, ExecId: execID})
	if err != nil {
		return Process{}, err
	}
	return processFromProto(r.GetProcess()), nil
}

// GetTask returns the state of a process.
func (c *Client) GetTask(ctx context.Context, containerID, execID string) (Process, error) {
	r, err := c.tasksAPI().Get(ctx, &tasksapi.GetTaskRequest{ContainerId: containerID, ExecId: execID})
	if err != nil {
		return Process{}, err
	}
	return processFromProto(r.GetProcess()), nil
}

// ListTasks returns the tasks of the namespace.
func (c *Client) ListTasks(ctx context.Context) ([]Process, error) {
	r, err := c.tasksAPI().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]Process, 0, len(r.GetProcesses()))
	for _, p := range r.GetProcesses() {
		out = append(out, processFromProto(p))
	}
	return out, nil
}

// PauseTask freezes every process of a task.
func (c *Client) PauseTask(ctx context.Context, containerID string) error {
	_, err := c.tasksAPI().Pause(ctx, &tasksapi.PauseRequest{ContainerId: containerID})
	return err
}

// ResumeTask thaws a paused task.
func (c *Client) ResumeTask(ctx context.Context, containerID string) error {
	_, err := c.tasksAPI().Resume(ctx, &tasksapi.ResumeRequest{ContainerId: containerID})
	return err
}

// ExecConfig is a process to add to a running task.
type ExecConfig struct {
	// ID names the exec in its task; a random one is chosen when empty.
	ID         string
	Args       []string
	Env        []string // KEY=VALUE, added to the container's environment
	User       string
	WorkingDir string
	TTY        bool
	Stdin      bool
	// Width and Height size the terminal from the start (with TTY).
	Width, Height uint32
}

// Exec adds a process to a running task and returns its exec id. The
// process is created, not started: Attach to it if its stdio is wanted,
// then StartTask with the exec id.
func (c *Client) Exec(ctx context.Context, containerID string, cfg ExecConfig) (string, error) {
	id := cfg.ID
	if id == "" {
		b := make([]byte, 6)
		rand.Read(b)
		id = "exec-" + hex.EncodeToString(b)
	}
	_, err := c.tasksAPI().Exec(ctx, &tasksapi.ExecRequest{
		ContainerId: containerID, ExecId: id, Args: cfg.Args, Env: cfg.Env,
		User: cfg.User, WorkingDir: cfg.WorkingDir, Tty: cfg.TTY, Stdin: cfg.Stdin,
		Width: cfg.Width, Height: cfg.Height,
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// ResizePty sets the terminal size of a process that has a TTY.
func (c *Client) ResizePty(ctx context.Context, containerID, execID string, width, height uint32) error {
	_, err := c.tasksAPI().ResizePty(ctx, &tasksapi.ResizePtyRequest{ContainerId: containerID, ExecId: execID, Width: width, Height: height})
	return err
}

// CloseIO closes the stdin of a process.
func (c *Client) CloseIO(ctx context.Context, containerID, execID string) error {
	_, err := c.tasksAPI().CloseIO(ctx, &tasksapi.CloseIORequest{ContainerId: containerID, ExecId: execID})
	return err
}

// UpdateTask changes the resources of a running task; zero fields keep
// their value.
func (c *Client) UpdateTask(ctx context.Context, containerID string, r Resources) error {
	_, err := c.tasksAPI().Update(ctx, &tasksapi.UpdateTaskRequest{ContainerId: containerID, Resources: resourcesToProto(r)})
	return err
}

// Stats is one sample of a task's resource usage (its cgroup's counters).
type Stats struct {
	Time                time.Time     `json:"time"`
	CPUUsage            time.Duration `json:"cpu_usage_ns"`
	CPUUser             time.Duration `json:"cpu_user_ns"`
	CPUSystem           time.Duration `json:"cpu_system_ns"`
	CPUThrottledPeriods uint64        `json:"cpu_throttled_periods"`
	MemoryUsage         uint64        `json:"memory_usage_bytes"`
	MemoryLimit         uint64        `json:"memory_limit_bytes"`
	MemoryWorkingSet    uint64        `json:"memory_working_set_bytes"`
	MemoryRSS           uint64        `json:"memory_rss_bytes"`
	MemoryCache         uint64        `json:"memory_cache_bytes"`
	OOMKills            uint64        `json:"oom_kills"`
	PidsCurrent         uint64        `json:"pids_current"`
	PidsLimit           uint64        `json:"pids_limit"`
	IOReadBytes         uint64        `json:"io_read_bytes"`
	IOWriteBytes        uint64        `json:"io_write_bytes"`
}

// TaskStats samples the resource usage of a task.
func (c *Client) TaskStats(ctx context.Context, containerID string) (Stats, error) {
	r, err := c.tasksAPI().Stats(ctx, &tasksapi.StatsRequest{ContainerId: containerID})
	if err != nil {
		return Stats{}, err
	}
	s := r.GetStats()
	return Stats{
		Time:     timeOf(s.GetTime()),
		CPUUsage: time.Duration(s.GetCpuUsageNs()), CPUUser: time.Duration(s.GetCpuUserNs()), CPUSystem: time.Duration(s.GetCpuSystemNs()),
		CPUThrottledPeriods: s.GetCpuThrottledPeriods(),
		MemoryUsage:         s.GetMemoryUsageBytes(), MemoryLimit: s.GetMemoryLimitBytes(), MemoryWorkingSet: s.GetMemoryWorkingSetBytes(),
		MemoryRSS: s.GetMemoryRssBytes(), MemoryCache: s.GetMemoryCacheBytes(), OOMKills: s.GetOomKills(),
		PidsCurrent: s.GetPidsCurrent(), PidsLimit: s.GetPidsLimit(), IOReadBytes: s.GetIoReadBytes(), IOWriteBytes: s.GetIoWriteBytes(),
	}, nil
}

// TopProcess is one process of a task, as the host sees it.
type TopProcess struct {
	PID     uint32        `json:"pid"`
	PPID    uint32        `json:"ppid"`
	UID     uint32        `json:"uid"`
	State   string        `json:"state"`
	CPUTime time.Duration `json:"cpu_time_ns"`
	RSS     uint64        `json:"rss_bytes"`
	Command string        `json:"command"`
}

// TaskTop lists the processes of a task.
func (c *Client) TaskTop(ctx context.Context, containerID string) ([]TopProcess, error) {
	r, err := c.tasksAPI().Top(ctx, &tasksapi.TopRequest{ContainerId: containerID})
	if err != nil {
		return nil, err
	}
	out := make([]TopProcess, 0, len(r.GetProcesses()))
	for _, p := range r.GetProcesses() {
		out = append(out, TopProcess{PID: p.GetPid(), PPID: p.GetPpid(), UID: p.GetUid(), State: p.GetState(),
			CPUTime: time.Duration(p.GetCpuTimeNs()), RSS: p.GetRssBytes(), Command: p.GetCommand()})
	}
	return out, nil
}

// AttachOpts choose the stdio an Attachment carries.
type AttachOpts struct {
	// Stdin makes the Attachment's Write and CloseStdin feed the process's
	// stdin.
	Stdin bool
	// Stdout and Stderr receive the process's output; nil discards it.
	// With a TTY all output is stdout.
	Stdout, Stderr io.Writer
}

// Attachment is a connection to the stdio of one process. Write,
// CloseStdin and Resize may be called from any goroutine; the output is
// written to the AttachOpts writers by a goroutine Attachment owns, until
// Wait or Close returns.
type Attachment struct {
	stream tasksapi.Tasks_AttachClient
	cancel context.CancelFunc

	sendMu sync.Mutex
	done   chan struct{}
	err    error // set before done closes
}

// attachChunk bounds the stdin data of one message.
const attachChunk = 32 << 10

// Attach connects to the stdio of a process. It returns once the daemon
// has attached, so a process started afterwards loses no output.
func (c *Client) Attach(ctx context.Context, containerID, execID string, opts AttachOpts) (*Attachment, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.tasksAPI().Attach(ctx)
	if err == nil {
		err = stream.Send(&tasksapi.AttachRequest{ContainerId: containerID, ExecId: execID, Stdin: opts.Stdin})
	}
	if err == nil {
		// The daemon sends the headers once it has attached; a failed
		// attach ends the stream without them and Recv tells why.
		if md, _ := stream.Header(); md == nil {
			if _, err = stream.Recv(); err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("attach to %s: the daemon ended the stream", processName(containerID, execID))
			}
		}
	}
	if err != nil {
		cancel()
		return nil, err
	}
	a := &Attachment{stream: stream, cancel: cancel, done: make(chan struct{})}
	go a.receive(opts.Stdout, opts.Stderr)
	return a, nil
}

func processName(containerID, execID string) string {
	if execID == "" {
		return fmt.Sprintf("container %q", containerID)
	}
	return fmt.Sprintf("exec %q of container %q", execID, containerID)
}

func (a *Attachment) receive(stdout, stderr io.Writer) {
	defer close(a.done)
	for {
		r, err := a.stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			a.err = err
			return
		}
		w := stdout
		if r.GetStream() == "stderr" {
			w = stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(r.GetData()); err != nil {
			a.err = fmt.Errorf("write %s: %w", r.GetStream(), err)
			a.cancel()
			return
		}
	}
}

func (a *Attachment) send(req *tasksapi.AttachRequest) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	return a.stream.Send(req)
}

// Write sends p to the process's stdin.
func (a *Attachment) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), attachChunk)]
		if err := a.send(&tasksapi.AttachRequest{Data: chunk}); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// CloseStdin closes the process's stdin: it reads end of file.
func (a *Attachment) CloseStdin() error {
	return a.send(&tasksapi.AttachRequest{CloseStdin: true})
}

// Resize sets the size of the process's terminal.
func (a *Attachment) Resize(width, height uint32) error {
	return a.send(&tasksapi.AttachRequest{Width: width, Height: height})
}

// Wait returns when the process's output has ended and been written, with
// the error that ended it early, if any.
func (a *Attachment) Wait() error {
	<-a.done
	a.cancel()
	return a.err
}

// Close detaches at once, leaving the process running, and waits for the
// output goroutine to end.
func (a *Attachment) Close() error {
	a.cancel()
	<-a.done
	if errors.Is(a.err, context.Canceled) {
		return nil
	}
	return a.err
}

func (c *Client) tasksAPI() tasksapi.TasksClient { return tasksapi.NewTasksClient(c.conn) }
