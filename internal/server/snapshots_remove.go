package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
)

func (ss *snapshotsService) Remove(ctx context.Context, req *snapshotsapi.RemoveSnapshotRequest) (*snapshotsapi.RemoveSnapshotResponse, error) {
	sn, name, err := ss.s.snapshotter(req.GetSnapshotter())
	if err != nil {
		return nil, err
	}
	if err := sn.Remove(ctx, req.GetKey()); err != nil {
		return nil, err
	}
	ss.s.events.Publish(ctx, "/snapshots/remove", &eventsapi.SnapshotRemove{Snapshotter: name, Key: req.GetKey()})
	return &snapshotsapi.RemoveSnapshotResponse{}, nil
}
