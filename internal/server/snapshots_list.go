package server

import (
	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
	"github.com/berth-dev/berth/internal/snapshots"
)

func (ss *snapshotsService) List(req *snapshotsapi.ListSnapshotsRequest, stream snapshotsapi.Snapshots_ListServer) error {
	sn, _, err := ss.s.snapshotter(req.GetSnapshotter())
	if err != nil {
		return err
	}
	var batch []*snapshotsapi.Info
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := stream.Send(&snapshotsapi.ListSnapshotsResponse{Info: batch})
		batch = nil
		return err
	}
	err = sn.Walk(stream.Context(), func(info snapshots.Info) error {
		batch = append(batch, snapshotInfoToProto(info))
		if len(batch) == listBatch {
			return flush()
		}
		return nil
	}, req.GetFilters()...)
	if err != nil {
		return err
	}
	return flush()
}
