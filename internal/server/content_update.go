package server

import (
	"context"

	contentapi "github.com/berth-dev/berth/api/content/v1"
	eventsapi "github.com/berth-dev/berth/api/events/v1"
	"github.com/berth-dev/berth/internal/content"
	"github.com/opencontainers/go-digest"
)

func (c *contentService) Update(ctx context.Context, req *contentapi.UpdateRequest) (*contentapi.UpdateResponse, error) {
	in := content.Info{Digest: digest.Digest(req.GetInfo().GetDigest()), Labels: req.GetInfo().GetLabels()}
	info, err := c.s.content.Update(ctx, in, req.GetUpdateMask().GetPaths()...)
	if err != nil {
		return nil, err
	}
	c.s.events.Publish(ctx, "/content/update", &eventsapi.ContentUpdate{Digest: info.Digest.String(), Labels: info.Labels})
	return &contentapi.UpdateResponse{Info: infoToProto(info)}, nil
}
