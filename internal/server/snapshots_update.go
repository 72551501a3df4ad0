package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
	"github.com/berth-dev/berth/internal/snapshots"
)

func (ss *snapshotsService) Update(ctx context.Context, req *snapshotsapi.UpdateSnapshotRequest) (*snapshotsapi.UpdateSnapshotResponse, error) {
	sn, name, err := ss.s.snapshotter(req.GetSnapshotter())
	if err != nil {
		return nil, err
	}
	in := snapshots.Info{Name: req.GetInfo().GetName(), Labels: req.GetInfo().GetLabels()}
	info, err := sn.Update(ctx, in, req.GetUpdateMask().GetPaths()...)
	if err != nil {
		return nil, err
	}
	ss.s.events.Publish(ctx, "/snapshots/update", &eventsapi.SnapshotUpdate{Snapshotter: name, Name: info.Name, Labels: info.Labels})
	return &snapshotsapi.UpdateSnapshotResponse{Info: snapshotInfoToProto(info)}, nil
}
