package server

import (
	"context"

	contentapi "github.com/berth-dev/berth/api/content/v1"
	eventsapi "github.com/berth-dev/berth/api/events/v1"
)

func (c *contentService) Abort(ctx context.Context, req *contentapi.AbortRequest) (*contentapi.AbortResponse, error) {
	if err := c.s.content.Abort(ctx, req.GetRef()); err != nil {
		return nil, err
	}
	c.s.events.Publish(ctx, "/content/ingest/abort", &eventsapi.IngestAbort{Ref: req.GetRef()})
	return &contentapi.AbortResponse{}, nil
}
