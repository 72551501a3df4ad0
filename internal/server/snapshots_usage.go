package server

import (
	"context"

	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
)

func (ss *snapshotsService) Usage(ctx context.Context, req *snapshotsapi.UsageRequest) (*snapshotsapi.UsageResponse, error) {
	sn, _, err := ss.s.snapshotter(req.GetSnapshotter())
	if err != nil {
		return nil, err
	}
	u, err := sn.Usage(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	return &snapshotsapi.UsageResponse{Size: u.Size, Inodes: u.Inodes}, nil
}
