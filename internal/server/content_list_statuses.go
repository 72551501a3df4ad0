package server

import (
	"context"

	contentapi "github.com/berth-dev/berth/api/content/v1"
)

func (c *contentService) ListStatuses(ctx context.Context, req *contentapi.ListStatusesRequest) (*contentapi.ListStatusesResponse, error) {
	sts, err := c.s.content.ListStatuses(ctx, req.GetFilters()...)
	if err != nil {
		return nil, err
	}
	resp := &contentapi.ListStatusesResponse{}
	for _, st := range sts {
		resp.Statuses = append(resp.Statuses, statusToProto(st))
	}
	return resp, nil
}
