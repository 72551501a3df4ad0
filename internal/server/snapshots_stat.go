package server

import (
	"context"

	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
)

func (ss *snapshotsService) Stat(ctx context.Context, req *snapshotsapi.StatSnapshotRequest) (*snapshotsapi.StatSnapshotResponse, error) {
	sn, _, err := ss.s.snapshotter(req.GetSnapshotter())
	if err != nil {
		return nil, err
	}
	info, err := sn.Stat(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	return &snapshotsapi.StatSnapshotResponse{Info: snapshotInfoToProto(info)}, nil
}
