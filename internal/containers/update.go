package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update changes what a container runs with; nil or empty fields keep
// their value.
type Update struct {
	Labels    map[string]string // replaces all labels when not nil
	Restart   string
	Resources *Resources // zero fields keep their value
}

// Update applies u to the container's record and, for resources, to its
// running task.
func (s *Service) Update(ctx context.Context, ref string, u Update) (metadata.Container, error) {
	c, err := s.opts.DB.GetContainer(ctx, ref)
	if err != nil {
		return c, err
	}
	if u.Restart != "" {
		if _, err := ParseRestartPolicy(u.Restart); err != nil {
			return c, err
		}
	}
	var resources *specs.LinuxResources
	c, err = s.opts.DB.UpdateContainer(ctx, c.ID, func(c *metadata.Container) error {
		cfg, err := DecodeConfig(c.Config)
		if err != nil {
			return err
		}
		if u.Labels != nil {
			c.Labels = u.Labels
		}
		if u.Restart != "" {
			if cfg.AutoRemove && u.Restart != "no" {
				return fmt.Errorf("container %s has --rm: no restart policy: %w", ref, errdefs.ErrInvalidArgument)
			}
			cfg.Restart = u.Restart
		}
		if u.Resources != nil {
			mergeResources(&cfg.Resources, *u.Resources)
			var spec specs.Spec
			if err := json.Unmarshal(c.Spec, &spec); err != nil {
				return err
			}
			if err := oci.ApplyResources(&spec, ociResources(cfg.Resources)); err != nil {
				return err
			}
			if spec.Linux != nil {
				resources = spec.Linux.Resources
			}
			if c.Spec, err = json.Marshal(&spec); err != nil {
				return err
			}
		}
		c.Config = encodeConfig(cfg)
		return nil
	})
	if err != nil {
		return c, err
	}
	if resources != nil {
		if err := s.opts.Runtime.Update(ctx, c.ID, resources); err != nil && !errdefs.IsNotFound(err) && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return c, fmt.Errorf("update running container %s: %w", ref, err)
		}
	}
	s.event(ctx, "/containers/update", c)
	return c, nil
}

func mergeResources(dst *Resources, u Resources) {
	if u.MemoryBytes != 0 {
		dst.MemoryBytes = u.MemoryBytes
	}
	if u.CPUs != 0 {
		dst.CPUs = u.CPUs
	}
	if u.CPUShares != 0 {
		dst.CPUShares = u.CPUShares
	}
	if u.CpusetCPUs != "" {
		dst.CpusetCPUs = u.CpusetCPUs
	}
	if u.PidsLimit != 0 {
		dst.PidsLimit = u.PidsLimit
	}
}

func ociResources(r Resources) oci.Resources {
	return oci.Resources{MemoryBytes: r.MemoryBytes, CPUs: r.CPUs, CPUShares: r.CPUShares, CpusetCpus: r.CpusetCPUs, PidsLimit: r.PidsLimit}
}
