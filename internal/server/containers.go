package server

import (
	"context"

	containersapi "github.com/berth-dev/berth/api/containers/v1"
	eventsapi "github.com/berth-dev/berth/api/events/v1"
	"github.com/berth-dev/berth/internal/containers"
	"github.com/berth-dev/berth/internal/logs"
	"github.com/berth-dev/berth/internal/metadata"
	berthruntime "github.com/berth-dev/berth/internal/runtime"
)

type containersService struct {
	containersapi.UnimplementedContainersServer
	s *Server
}

func configFromProto(c *containersapi.ContainerConfig) containers.Config {
	cfg := containers.Config{
		Image: c.GetImage(), Platform: c.GetPlatform(), Entrypoint: c.GetEntrypoint(), EntrypointSet: c.GetEntrypointSet(),
		Args: c.GetArgs(), Env: c.GetEnv(), WorkingDir: c.GetWorkingDir(), User: c.GetUser(), Hostname: c.GetHostname(),
		ReadOnly: c.GetReadOnly(), Privileged: c.GetPrivileged(), CapAdd: c.GetCapAdd(), CapDrop: c.GetCapDrop(),
		SecurityOpt: c.GetSecurityOpt(), TTY: c.GetTty(), Stdin: c.GetStdin(), Runtime: c.GetRuntime(),
		Network: c.GetNetwork(), Restart: c.GetRestart(), AutoRemove: c.GetAutoRemove(), Labels: c.GetLabels(),
		Resources: resourcesFromProto(c.GetResources()),
	}
	for _, m := range c.GetMounts() {
		cfg.Mounts = append(cfg.Mounts, containers.Mount{Type: m.GetType(), Source: m.GetSource(), Destination: m.GetDestination(), Options: m.GetOptions()})
	}
	for _, p := range c.GetPorts() {
		cfg.Ports = append(cfg.Ports, containers.PortMapping{HostIP: p.GetHostIp(), HostPort: uint16(p.GetHostPort()), ContainerPort: uint16(p.GetContainerPort()), Protocol: p.GetProtocol()})
	}
	return cfg
}

func resourcesFromProto(r *containersapi.Resources) containers.Resources {
	return containers.Resources{
		MemoryBytes: r.GetMemoryBytes(), CPUs: r.GetCpus(), CPUShares: r.GetCpuShares(),
		CpusetCPUs: r.GetCpusetCpus(), PidsLimit: r.GetPidsLimit(),
	}
}

func configToProto(cfg containers.Config) *containersapi.ContainerConfig {
	out := &containersapi.ContainerConfig{
		Image: cfg.Image, Platform: cfg.Platform, Entrypoint: cfg.Entrypoint, EntrypointSet: cfg.EntrypointSet,
		Args: cfg.Args, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User, Hostname: cfg.Hostname,
		ReadOnly: cfg.ReadOnly, Privileged: cfg.Privileged, CapAdd: cfg.CapAdd, CapDrop: cfg.CapDrop,
		SecurityOpt: cfg.SecurityOpt, Tty: cfg.TTY, Stdin: cfg.Stdin, Runtime: cfg.Runtime,
		Network: cfg.Network, Restart: cfg.Restart, AutoRemove: cfg.AutoRemove, Labels: cfg.Labels,
		Resources: &containersapi.Resources{
			MemoryBytes: cfg.Resources.MemoryBytes, Cpus: cfg.Resources.CPUs, CpuShares: cfg.Resources.CPUShares,
			CpusetCpus: cfg.Resources.CpusetCPUs, PidsLimit: cfg.Resources.PidsLimit,
		},
	}
	for _, m := range cfg.Mounts {
		out.Mounts = append(out.Mounts, &containersapi.Mount{Type: m.Type, Source: m.Source, Destination: m.Destination, Options: m.Options})
	}
	for _, p := range cfg.Ports {
		out.Ports = append(out.Ports, &containersapi.PortMapping{HostIp: p.HostIP, HostPort: uint32(p.HostPort), ContainerPort: uint32(p.ContainerPort), Protocol: p.Protocol})
	}
	return out
}

// containerToProto describes c with the state of its task, when it has one.
func (s *Server) containerToProto(ctx context.Context, c metadata.Container) *containersapi.Container {
	out := &containersapi.Container{
		Id: c.ID, Name: c.Name, Image: c.Image, ImageDigest: c.ImageDigest.String(), Snapshotter: c.Snapshotter,
		SnapshotKey: c.SnapshotKey, Spec: c.Spec, Runtime: c.Runtime, Labels: c.Labels,
		CreatedAt: timestamp(c.CreatedAt), UpdatedAt: timestamp(c.UpdatedAt), LogPath: c.LogPath,
		ExitStatus: c.ExitStatus, ExitReason: c.ExitReason, RestartCount: c.RestartCount,
	}
	if !c.ExitedAt.IsZero() {
		out.ExitedAt = timestamp(c.ExitedAt)
		out.Status = string(berthruntime.StatusStopped)
	} else {
		out.Status = string(berthruntime.StatusCreated)
	}
	if cfg, err := containers.DecodeConfig(c.Config); err == nil {
		out.Config = configToProto(cfg)
	}
	if p, err := s.runtime.Get(ctx, c.ID, ""); err == nil {
		out.Status, out.Pid, out.Ip = string(p.Status), p.Pid, p.IP
		if p.Status == berthruntime.StatusStopped {
			out.ExitStatus, out.ExitedAt, out.ExitReason = p.Exit.Status, timestamp(p.Exit.ExitedAt), p.Exit.Reason
		}
	}
	return out
}

func (cs *containersService) Create(ctx context.Context, req *containersapi.CreateContainerRequest) (*containersapi.CreateContainerResponse, error) {
	c, err := cs.s.containers.Create(ctx, req.GetId(), req.GetName(), configFromProto(req.GetConfig()))
	if err != nil {
		return nil, err
	}
	return &containersapi.CreateContainerResponse{Container: cs.s.containerToProto(ctx, c)}, nil
}

func (cs *containersService) Get(ctx context.Context, req *containersapi.GetContainerRequest) (*containersapi.GetContainerResponse, error) {
	c, err := cs.s.db.GetContainer(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &containersapi.GetContainerResponse{Container: cs.s.containerToProto(ctx, c)}, nil
}

func (cs *containersService) List(ctx context.Context, req *containersapi.ListContainersRequest) (*containersapi.ListContainersResponse, error) {
	list, err := cs.s.db.ListContainers(ctx, req.GetFilters()...)
	if err != nil {
		return nil, err
	}
	out := &containersapi.ListContainersResponse{}
	for _, c := range list {
		out.Containers = append(out.Containers, cs.s.containerToProto(ctx, c))
	}
	return out, nil
}

func (cs *containersService) Update(ctx context.Context, req *containersapi.UpdateContainerRequest) (*containersapi.UpdateContainerResponse, error) {
	var res *containers.Resources
	if req.GetResources() != nil {
		r := resourcesFromProto(req.GetResources())
		res = &r
	}
	var lbls map[string]string
	if req.GetUpdateLabels() {
		lbls = req.GetLabels()
		if lbls == nil {
			lbls = map[string]string{}
		}
	}
	c, err := cs.s.containers.Update(ctx, req.GetId(), containers.Update{Labels: lbls, Restart: req.GetRestart(), Resources: res})
	if err != nil {
		return nil, err
	}
	return &containersapi.UpdateContainerResponse{Container: cs.s.containerToProto(ctx, c)}, nil
}

func (cs *containersService) Delete(ctx context.Context, req *containersapi.DeleteContainerRequest) (*containersapi.DeleteContainerResponse, error) {
	if err := cs.s.containers.Delete(ctx, req.GetId(), req.GetForce()); err != nil {
		return nil, err
	}
	return &containersapi.DeleteContainerResponse{}, nil
}

func (cs *containersService) Logs(req *containersapi.LogsRequest, stream containersapi.Containers_LogsServer) error {
	ctx := stream.Context()
	c, err := cs.s.db.GetContainer(ctx, req.GetId())
	if err != nil {
		return err
	}
	opts := logs.Options{Tail: req.GetTail(), Follow: req.GetFollow(), Done: cs.s.runtime.Exited(ctx, c.ID)}
	if req.GetSince() != nil {
		opts.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		opts.Until = req.GetUntil().AsTime()
	}
	return logs.Read(ctx, c.LogPath, opts, func(e logs.Entry) error {
		return stream.Send(&containersapi.LogsResponse{Time: timestamp(e.Time), Stream: e.Stream, Data: e.Data})
	})
}

func (cs *containersService) Commit(ctx context.Context, req *containersapi.CommitRequest) (*containersapi.CommitResponse, error) {
	desc, err := cs.s.containers.Commit(ctx, req.GetId(), req.GetImage(), containers.CommitOptions{
		Message: req.GetMessage(), Author: req.GetAuthor(), NoPause: req.GetNoPause(),
	})
	if err != nil {
		return nil, err
	}
	cs.s.events.Publish(ctx, "/images/create", &eventsapi.ImageCreate{Name: imageName(req.GetImage()), Digest: desc.Digest.String()})
	return &containersapi.CommitResponse{Digest: desc.Digest.String()}, nil
}
