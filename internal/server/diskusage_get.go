package server

import (
	"context"

	diskusageapi "github.com/berth-dev/berth/api/diskusage/v1"
)

func (d *diskUsageService) Get(ctx context.Context, req *diskusageapi.GetDiskUsageRequest) (*diskusageapi.GetDiskUsageResponse, error) {
	in, err := d.s.gatherUsage(ctx, req.GetSnapshotter())
	if err != nil {
		return nil, err
	}
	return computeUsage(in), nil
}
