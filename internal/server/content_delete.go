package server

import (
	"context"

	contentapi "github.com/berth-dev/berth/api/content/v1"
	eventsapi "github.com/berth-dev/berth/api/events/v1"
	"github.com/opencontainers/go-digest"
)

func (c *contentService) Delete(ctx context.Context, req *contentapi.DeleteContentRequest) (*contentapi.DeleteContentResponse, error) {
	if err := c.s.content.Delete(ctx, digest.Digest(req.GetDigest())); err != nil {
		return nil, err
	}
	c.s.events.Publish(ctx, "/content/delete", &eventsapi.ContentDelete{Digest: req.GetDigest()})
	return &contentapi.DeleteContentResponse{}, nil
}
