package server

import (
	"context"

	contentapi "github.com/berth-dev/berth/api/content/v1"
	"github.com/opencontainers/go-digest"
)

func (c *contentService) Info(ctx context.Context, req *contentapi.InfoRequest) (*contentapi.InfoResponse, error) {
	info, err := c.s.content.Info(ctx, digest.Digest(req.GetDigest()))
	if err != nil {
		return nil, err
	}
	return &contentapi.InfoResponse{Info: infoToProto(info)}, nil
}
