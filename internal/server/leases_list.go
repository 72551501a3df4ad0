package server

import (
	"context"

	leasesapi "github.com/berth-dev/berth/api/leases/v1"
)

func (l *leasesService) List(ctx context.Context, req *leasesapi.ListRequest) (*leasesapi.ListResponse, error) {
	list, err := l.s.db.ListLeases(ctx, req.GetFilters()...)
	if err != nil {
		return nil, err
	}
	resp := &leasesapi.ListResponse{}
	for _, lease := range list {
		resp.Leases = append(resp.Leases, leaseToProto(lease))
	}
	return resp, nil
}
