package server

import (
	"context"

	contentapi "github.com/berth-dev/berth/api/content/v1"
)

func (c *contentService) Status(ctx context.Context, req *contentapi.StatusRequest) (*contentapi.StatusResponse, error) {
	st, err := c.s.content.Status(ctx, req.GetRef())
	if err != nil {
		return nil, err
	}
	return &contentapi.StatusResponse{Status: statusToProto(st)}, nil
}
