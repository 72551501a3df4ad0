package server

import (
	"fmt"

	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshots"
)

type snapshotsService struct {
	snapshotsapi.UnimplementedSnapshotsServer
	s *Server
}

// snapshotter returns the namespaced snapshotter called name, or the
// daemon's when name is empty, and the name it resolved to.
func (s *Server) snapshotter(name string) (snapshots.Snapshotter, string, error) {
	if name == "" {
		name = s.info.Snapshotter
	}
	sn := s.db.Snapshotter(name)
	if sn == nil {
		return nil, name, fmt.Errorf("snapshotter %q (this daemon has %q): %w", name, s.info.Snapshotter, errdefs.ErrNotFound)
	}
	return sn, name, nil
}

func kindToProto(k snapshots.Kind) snapshotsapi.Kind {
	switch k {
	case snapshots.KindView:
		return snapshotsapi.Kind_VIEW
	case snapshots.KindActive:
		return snapshotsapi.Kind_ACTIVE
	case snapshots.KindCommitted:
		return snapshotsapi.Kind_COMMITTED
	default:
		return snapshotsapi.Kind_UNKNOWN
	}
}

func snapshotInfoToProto(info snapshots.Info) *snapshotsapi.Info {
	return &snapshotsapi.Info{
		Name:      info.Name,
		Parent:    info.Parent,
		Kind:      kindToProto(info.Kind),
		Labels:    info.Labels,
		CreatedAt: timestamp(info.Created),
		UpdatedAt: timestamp(info.Updated),
	}
}

func mountsToProto(mounts []mount.Mount) []*snapshotsapi.Mount {
	out := make([]*snapshotsapi.Mount, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, &snapshotsapi.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
	}
	return out
}
