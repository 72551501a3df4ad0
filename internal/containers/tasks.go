package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/network"
	berthruntime "github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// StartTask creates the task of a container (and starts it when start is
// set): a stopped task of a previous run is forgotten first.
func (s *Service) StartTask(ctx context.Context, ref string, start bool) (berthruntime.Process, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return berthruntime.Process{}, err
	}
	c, err := s.opts.DB.GetContainer(ctx, ref)
	if err != nil {
		return berthruntime.Process{}, err
	}
	unlock := s.locks.Lock(ns + "/" + c.ID)
	defer unlock()
	if c.StoppedByUser {
		if c, err = s.opts.DB.UpdateContainer(ctx, c.ID, func(c *metadata.Container) error {
			c.StoppedByUser = false
			return nil
		}); err != nil {
			return berthruntime.Process{}, err
		}
	}
	return s.startTask(ctx, c, start)
}

// startTask creates c's task. The container's lock is held.
func (s *Service) startTask(ctx context.Context, c metadata.Container, start bool) (berthruntime.Process, error) {
	if p, err := s.opts.Runtime.Get(ctx, c.ID, ""); err == nil {
		if p.Status != berthruntime.StatusStopped {
			return p, fmt.Errorf("container %s is already %s: %w", c.ID, p.Status, errdefs.ErrFailedPrecondition)
		}
		if _, err := s.opts.Runtime.Delete(ctx, c.ID, "", false); err != nil && !errdefs.IsNotFound(err) {
			return berthruntime.Process{}, err
		}
	}
	cfg, err := DecodeConfig(c.Config)
	if err != nil {
		return berthruntime.Process{}, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(c.Spec, &spec); err != nil {
		return berthruntime.Process{}, fmt.Errorf("container %s: spec: %w", c.ID, err)
	}
	mounts, err := s.sn.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return berthruntime.Process{}, fmt.Errorf("container %s: snapshot: %w", c.ID, err)
	}
	ports := make([]network.PortMapping, 0, len(cfg.Ports))
	for _, p := range cfg.Ports {
		ports = append(ports, network.PortMapping{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
	}
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	if cfg.Stdin {
		spec.Annotations[berthruntime.AnnotationStdin] = "true"
	}
	return s.opts.Runtime.Create(ctx, berthruntime.CreateOptions{
		ID:      c.ID,
		Spec:    &spec,
		Rootfs:  mounts,
		Runtime: c.Runtime,
		LogPath: c.LogPath,
		Network: network.Mode(cfg.Network),
		Ports:   ports,
		Start:   start,
	})
}

// Stop sends the stop signal, then SIGKILL after timeout, and marks the
// container stopped by the user (restart policies leave it be).
func (s *Service) Stop(ctx context.Context, ref string, sig syscall.Signal, timeout time.Duration) error {
	c, err := s.markStopped(ctx, ref)
	if err != nil {
		return err
	}
	if err := s.opts.Runtime.Kill(ctx, c.ID, "", sig, false); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case <-s.opts.Runtime.Exited(ctx, c.ID):
		return nil
	case <-wctx.Done():
	}
	if err := s.opts.Runtime.Kill(ctx, c.ID, "", syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	select {
	case <-s.opts.Runtime.Exited(ctx, c.ID):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill signals a container's init (or all its processes) and, for a
// terminating signal, marks it stopped by the user.
func (s *Service) Kill(ctx context.Context, ref, execID string, sig syscall.Signal, all bool) error {
	c, err := s.opts.DB.GetContainer(ctx, ref)
	if err != nil {
		return err
	}
	if execID == "" && (sig == syscall.SIGKILL || sig == syscall.SIGTERM) {
		if c, err = s.markStopped(ctx, c.ID); err != nil {
			return err
		}
	}
	return s.opts.Runtime.Kill(ctx, c.ID, execID, sig, all)
}

func (s *Service) markStopped(ctx context.Context, ref string) (metadata.Container, error) {
	c, err := s.opts.DB.GetContainer(ctx, ref)
	if err != nil {
		return c, err
	}
	if c.StoppedByUser {
		return c, nil
	}
	return s.opts.DB.UpdateContainer(ctx, c.ID, func(c *metadata.Container) error {
		c.StoppedByUser = true
		return nil
	})
}

// TaskExited is the runtime's OnExit: it records the exit with the
// container, then applies the restart policy or --rm.
func (s *Service) TaskExited(ctx context.Context, id string, exit berthruntime.Exit) {
	ns, _ := namespaces.NamespaceRequired(ctx)
	c, err := s.opts.DB.UpdateContainer(ctx, id, func(c *metadata.Container) error {
		c.ExitStatus, c.ExitedAt, c.ExitReason = exit.Status, exit.ExitedAt, exit.Reason
		return nil
	})
	if errdefs.IsNotFound(err) {
		return // deleted meanwhile
	} else if err != nil {
		log.G(ctx).Error("record container exit", "namespace", ns, "container_id", id, "error", err)
		return
	}
	cfg, err := DecodeConfig(c.Config)
	if err != nil {
		log.G(ctx).Error("container config", "container_id", id, "error", err)
		return
	}
	if cfg.AutoRemove {
		s.background(func() {
			if err := s.Delete(ctx, c.ID, true); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).Warn("auto-remove container", "container_id", c.ID, "error", err)
			}
		})
		return
	}
	policy, _ := ParseRestartPolicy(cfg.Restart)
	if !policy.ShouldRestart(exit.Status, c.RestartCount, c.StoppedByUser) {
		return
	}
	delay := restartDelay(c.RestartCount)
	s.background(func() {
		select {
		case <-time.After(delay):
		case <-s.closing:
			return
		}
		s.restart(ctx, c.ID)
	})
}

// restartDelay grows from 100ms, doubling per restart, to at most 1 minute.
func restartDelay(restarts uint32) time.Duration {
	d := 100 * time.Millisecond
	for i := uint32(0); i < restarts && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

func (s *Service) restart(ctx context.Context, id string) {
	ns, _ := namespaces.NamespaceRequired(ctx)
	unlock := s.locks.Lock(ns + "/" + id)
	defer unlock()
	c, err := s.opts.DB.GetContainer(ctx, id)
	if err != nil || c.StoppedByUser {
		return
	}
	if _, err := s.startTask(ctx, c, true); err != nil {
		log.G(ctx).Warn("restart container", "container_id", id, "error", err)
		return
	}
	if _, err := s.opts.DB.UpdateContainer(ctx, id, func(c *metadata.Container) error {
		c.RestartCount++
		return nil
	}); err != nil {
		log.G(ctx).Warn("count container restart", "container_id", id, "error", err)
	}
}

// background runs fn as a goroutine Close waits for.
func (s *Service) background(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// RestartAfterBoot starts, in every namespace given, the containers whose
// restart policy asks to run again when the daemon starts (always, and
// unless-stopped when the user did not stop them) and that have no task.
func (s *Service) RestartAfterBoot(ctx context.Context, nss []string) {
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, err := s.opts.DB.ListContainers(nctx)
		if err != nil {
			continue
		}
		for _, c := range cs {
			cfg, err := DecodeConfig(c.Config)
			if err != nil {
				continue
			}
			p, _ := ParseRestartPolicy(cfg.Restart)
			if p.Name != "always" && !(p.Name == "unless-stopped" && !c.StoppedByUser) {
				continue
			}
			if _, err := s.opts.Runtime.Get(nctx, c.ID, ""); err == nil {
				continue
			}
			if p.Name == "always" && c.StoppedByUser {
				if _, err := s.opts.DB.UpdateContainer(nctx, c.ID, func(c *metadata.Container) error {
					c.StoppedByUser = false
					return nil
				}); err != nil {
					continue
				}
			}
			s.restart(nctx, c.ID)
		}
	}
}
