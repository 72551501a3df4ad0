package server

import (
	"context"

	leasesapi "github.com/berth-dev/berth/api/leases/v1"
)

func (l *leasesService) ListResources(ctx context.Context, req *leasesapi.ListResourcesRequest) (*leasesapi.ListResourcesResponse, error) {
	rs, err := l.s.db.ListResources(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	resp := &leasesapi.ListResourcesResponse{}
	for _, r := range rs {
		resp.Resources = append(resp.Resources, &leasesapi.Resource{Id: r.ID, Type: r.Type})
	}
	return resp, nil
}
