package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
	"github.com/berth-dev/berth/internal/snapshots"
)

func (ss *snapshotsService) View(ctx context.Context, req *snapshotsapi.ViewSnapshotRequest) (*snapshotsapi.MountsResponse, error) {
	sn, name, err := ss.s.snapshotter(req.GetSnapshotter())
	if err != nil {
		return nil, err
	}
	mounts, err := sn.View(ctx, req.GetKey(), req.GetParent(), snapshots.WithLabels(req.GetLabels()))
	if err != nil {
		return nil, err
	}
	ss.s.events.Publish(ctx, "/snapshots/create", &eventsapi.SnapshotCreate{Snapshotter: name, Key: req.GetKey(), Parent: req.GetParent(), Kind: snapshots.KindView.String()})
	return &snapshotsapi.MountsResponse{Mounts: mountsToProto(mounts)}, nil
}
