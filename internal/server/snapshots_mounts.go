package server

import (
	"context"

	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
)

func (ss *snapshotsService) Mounts(ctx context.Context, req *snapshotsapi.MountsRequest) (*snapshotsapi.MountsResponse, error) {
	sn, _, err := ss.s.snapshotter(req.GetSnapshotter())
	if err != nil {
		return nil, err
	}
	mounts, err := sn.Mounts(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	return &snapshotsapi.MountsResponse{Mounts: mountsToProto(mounts)}, nil
}
