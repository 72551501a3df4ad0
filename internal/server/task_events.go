package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	"github.com/berth-dev/berth/internal/containers"
	"github.com/berth-dev/berth/internal/events"
	berthruntime "github.com/berth-dev/berth/internal/runtime"
	"google.golang.org/protobuf/proto"
)

// TaskEvents returns the runtime's event sink: it publishes each task
// lifecycle change on ex as its typed event.
func TaskEvents(ex *events.Exchange) func(context.Context, berthruntime.Event) {
	return func(ctx context.Context, e berthruntime.Event) {
		p := e.Process
		var ev proto.Message
		switch e.Topic {
		case "/tasks/create":
			ev = &eventsapi.TaskCreate{ContainerId: p.ContainerID, Pid: p.Pid}
		case "/tasks/start":
			ev = &eventsapi.TaskStart{ContainerId: p.ContainerID, Pid: p.Pid}
		case "/tasks/exit":
			ev = &eventsapi.TaskExit{ContainerId: p.ContainerID, ExecId: p.ExecID, Pid: p.Pid, ExitStatus: p.Exit.Status, ExitedAt: timestamp(p.Exit.ExitedAt), Reason: p.Exit.Reason}
		case "/tasks/oom":
			ev = &eventsapi.TaskOOM{ContainerId: p.ContainerID}
		case "/tasks/paused":
			ev = &eventsapi.TaskPaused{ContainerId: p.ContainerID}
		case "/tasks/resumed":
			ev = &eventsapi.TaskResumed{ContainerId: p.ContainerID}
		case "/tasks/exec-added":
			ev = &eventsapi.TaskExecAdded{ContainerId: p.ContainerID, ExecId: p.ExecID}
		case "/tasks/exec-started":
			ev = &eventsapi.TaskExecStarted{ContainerId: p.ContainerID, ExecId: p.ExecID, Pid: p.Pid}
		case "/tasks/delete":
			ev = &eventsapi.TaskDelete{ContainerId: p.ContainerID, ExecId: p.ExecID, Pid: p.Pid, ExitStatus: p.Exit.Status, ExitedAt: timestamp(p.Exit.ExitedAt)}
		default:
			return
		}
		ex.Publish(ctx, e.Topic, ev)
	}
}

// ContainerEvents returns the containers service's event sink.
func ContainerEvents(ex *events.Exchange) func(context.Context, containers.Event) {
	return func(ctx context.Context, e containers.Event) {
		c := e.Container
		var ev proto.Message
		switch e.Topic {
		case "/containers/create":
			ev = &eventsapi.ContainerCreate{Id: c.ID, Name: c.Name, Image: c.Image, Runtime: c.Runtime}
		case "/containers/update":
			ev = &eventsapi.ContainerUpdate{Id: c.ID, Labels: c.Labels}
		case "/containers/delete":
			ev = &eventsapi.ContainerDelete{Id: c.ID}
		default:
			return
		}
		ex.Publish(ctx, e.Topic, ev)
	}
}
