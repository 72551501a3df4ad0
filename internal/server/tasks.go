package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"syscall"

	tasksapi "github.com/berth-dev/berth/api/tasks/v1"
	"github.com/berth-dev/berth/internal/containers"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/oci"
	berthruntime "github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	grpcmd "google.golang.org/grpc/metadata"
)

type tasksService struct {
	tasksapi.UnimplementedTasksServer
	s *Server
}

func processToProto(p berthruntime.Process) *tasksapi.Process {
	out := &tasksapi.Process{ContainerId: p.ContainerID, ExecId: p.ExecID, Pid: p.Pid, Status: string(p.Status)}
	if p.Status == berthruntime.StatusStopped {
		out.ExitStatus, out.ExitedAt, out.ExitReason = p.Exit.Status, timestamp(p.Exit.ExitedAt), p.Exit.Reason
	}
	return out
}

// container resolves a container reference (id, name or id prefix).
func (ts *tasksService) container(ctx context.Context, ref string) (metadata.Container, error) {
	return ts.s.db.GetContainer(ctx, ref)
}

func (ts *tasksService) Create(ctx context.Context, req *tasksapi.CreateTaskRequest) (*tasksapi.CreateTaskResponse, error) {
	p, err := ts.s.containers.StartTask(ctx, req.GetContainerId(), req.GetStart())
	if err != nil {
		return nil, err
	}
	return &tasksapi.CreateTaskResponse{Process: processToProto(p)}, nil
}

func (ts *tasksService) Start(ctx context.Context, req *tasksapi.StartRequest) (*tasksapi.StartResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	p, err := ts.s.runtime.Start(ctx, c.ID, req.GetExecId())
	if err != nil {
		return nil, err
	}
	return &tasksapi.StartResponse{Process: processToProto(p)}, nil
}

func (ts *tasksService) Delete(ctx context.Context, req *tasksapi.DeleteTaskRequest) (*tasksapi.DeleteTaskResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	p, err := ts.s.runtime.Delete(ctx, c.ID, req.GetExecId(), req.GetForce())
	if errdefs.IsNotFound(err) && req.GetExecId() == "" && !c.ExitedAt.IsZero() {
		// Already cleaned up at exit: report the recorded exit.
		p = berthruntime.Process{ContainerID: c.ID, Status: berthruntime.StatusStopped,
			Exit: berthruntime.Exit{Status: c.ExitStatus, ExitedAt: c.ExitedAt, Reason: c.ExitReason}}
	} else if err != nil {
		return nil, err
	}
	return &tasksapi.DeleteTaskResponse{Process: processToProto(p)}, nil
}

func (ts *tasksService) Kill(ctx context.Context, req *tasksapi.KillRequest) (*tasksapi.KillResponse, error) {
	sig := syscall.Signal(req.GetSignal())
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if err := ts.s.containers.Kill(ctx, req.GetContainerId(), req.GetExecId(), sig, req.GetAll()); err != nil {
		return nil, err
	}
	return &tasksapi.KillResponse{}, nil
}

func (ts *tasksService) Wait(ctx context.Context, req *tasksapi.WaitRequest) (*tasksapi.WaitResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	p, err := ts.s.runtime.Wait(ctx, c.ID, req.GetExecId())
	if errdefs.IsNotFound(err) && req.GetExecId() == "" && !c.ExitedAt.IsZero() {
		p = berthruntime.Process{ContainerID: c.ID, Status: berthruntime.StatusStopped,
			Exit: berthruntime.Exit{Status: c.ExitStatus, ExitedAt: c.ExitedAt, Reason: c.ExitReason}}
	} else if err != nil {
		return nil, err
	}
	return &tasksapi.WaitResponse{Process: processToProto(p)}, nil
}

func (ts *tasksService) Get(ctx context.Context, req *tasksapi.GetTaskRequest) (*tasksapi.GetTaskResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	p, err := ts.s.runtime.Get(ctx, c.ID, req.GetExecId())
	if err != nil {
		return nil, err
	}
	return &tasksapi.GetTaskResponse{Process: processToProto(p)}, nil
}

func (ts *tasksService) List(ctx context.Context, _ *tasksapi.ListTasksRequest) (*tasksapi.ListTasksResponse, error) {
	ps, err := ts.s.runtime.List(ctx)
	if err != nil {
		return nil, err
	}
	out := &tasksapi.ListTasksResponse{}
	for _, p := range ps {
		out.Processes = append(out.Processes, processToProto(p))
	}
	return out, nil
}

func (ts *tasksService) Pause(ctx context.Context, req *tasksapi.PauseRequest) (*tasksapi.PauseResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &tasksapi.PauseResponse{}, ts.s.runtime.Pause(ctx, c.ID)
}

func (ts *tasksService) Resume(ctx context.Context, req *tasksapi.ResumeRequest) (*tasksapi.ResumeResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &tasksapi.ResumeResponse{}, ts.s.runtime.Resume(ctx, c.ID)
}

func (ts *tasksService) Exec(ctx context.Context, req *tasksapi.ExecRequest) (*tasksapi.ExecResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(req.GetArgs()) == 0 {
		return nil, fmt.Errorf("exec in %s: no command: %w", req.GetContainerId(), errdefs.ErrInvalidArgument)
	}
	if _, err := ts.s.runtime.Get(ctx, c.ID, ""); err != nil {
		return nil, fmt.Errorf("container %s is not running: %w", req.GetContainerId(), errdefs.ErrFailedPrecondition)
	}
	var spec specs.Spec
	if err := json.Unmarshal(c.Spec, &spec); err != nil {
		return nil, err
	}
	rootfs := ts.s.runtime.Rootfs(ctx, c.ID)
	proc, err := oci.ExecProcess(&spec, rootfs, oci.ExecOptions{
		Args: req.GetArgs(), Env: req.GetEnv(), User: req.GetUser(), WorkingDir: req.GetWorkingDir(), TTY: req.GetTty(),
	})
	if err != nil {
		return nil, err
	}
	if proc.Terminal && req.GetWidth() > 0 && req.GetHeight() > 0 {
		proc.ConsoleSize = &specs.Box{Width: uint(req.GetWidth()), Height: uint(req.GetHeight())}
	}
	if err := ts.s.runtime.Exec(ctx, c.ID, req.GetExecId(), proc, req.GetStdin()); err != nil {
		return nil, err
	}
	return &tasksapi.ExecResponse{}, nil
}

func (ts *tasksService) ResizePty(ctx context.Context, req *tasksapi.ResizePtyRequest) (*tasksapi.ResizePtyResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &tasksapi.ResizePtyResponse{}, ts.s.runtime.ResizePty(ctx, c.ID, req.GetExecId(), req.GetWidth(), req.GetHeight())
}

func (ts *tasksService) CloseIO(ctx context.Context, req *tasksapi.CloseIORequest) (*tasksapi.CloseIOResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &tasksapi.CloseIOResponse{}, ts.s.runtime.CloseIO(ctx, c.ID, req.GetExecId())
}

func (ts *tasksService) Update(ctx context.Context, req *tasksapi.UpdateTaskRequest) (*tasksapi.UpdateTaskResponse, error) {
	r := resourcesFromProto(req.GetResources())
	if _, err := ts.s.containers.Update(ctx, req.GetContainerId(), containers.Update{Resources: &r}); err != nil {
		return nil, err
	}
	return &tasksapi.UpdateTaskResponse{}, nil
}

func (ts *tasksService) Stats(ctx context.Context, req *tasksapi.StatsRequest) (*tasksapi.StatsResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st, err := ts.s.runtime.Stats(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	return &tasksapi.StatsResponse{Stats: statsToProto(st)}, nil
}

func (ts *tasksService) Top(ctx context.Context, req *tasksapi.TopRequest) (*tasksapi.TopResponse, error) {
	c, err := ts.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	pids, err := ts.s.runtime.Pids(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	out := &tasksapi.TopResponse{}
	for _, pid := range pids {
		if p, err := readProc(pid); err == nil {
			out.Processes = append(out.Processes, p)
		}
	}
	return out, nil
}

func (ts *tasksService) Attach(stream tasksapi.Tasks_AttachServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	c, err := ts.container(ctx, first.GetContainerId())
	if err != nil {
		return err
	}
	a, err := ts.s.runtime.Attach(ctx, c.ID, first.GetExecId())
	if err != nil {
		return err
	}
	defer a.Close()
	// The headers tell the client the attach is in place: it may start the
	// process now without missing output.
	if err := stream.SendHeader(grpcmd.MD{}); err != nil {
		return err
	}
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				return
			}
			switch {
			case len(req.GetData()) > 0:
				if _, err := a.Write(req.GetData()); err != nil {
					return
				}
			case req.GetCloseStdin():
				_ = a.CloseStdin()
			case req.GetWidth() > 0 && req.GetHeight() > 0:
				_ = a.Resize(uint16(req.GetWidth()), uint16(req.GetHeight()))
			}
		}
	}()
	err = a.Output(streamWriter{stream, "stdout"}, streamWriter{stream, "stderr"})
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// streamWriter sends what is written as attach output of one stream.
type streamWriter struct {
	stream tasksapi.Tasks_AttachServer
	name   string
}

func (w streamWriter) Write(p []byte) (int, error) {
	if err := w.stream.Send(&tasksapi.AttachResponse{Stream: w.name, Data: append([]byte(nil), p...)}); err != nil {
		return 0, err
	}
	return len(p), nil
}
