package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	leasesapi "github.com/berth-dev/berth/api/leases/v1"
)

func (l *leasesService) DeleteResource(ctx context.Context, req *leasesapi.DeleteResourceRequest) (*leasesapi.DeleteResourceResponse, error) {
	r := resourceFromProto(req.GetResource())
	if err := l.s.db.DeleteResource(ctx, req.GetId(), r); err != nil {
		return nil, err
	}
	l.s.events.Publish(ctx, "/leases/resource/delete", &eventsapi.LeaseResourceDelete{Id: req.GetId(), ResourceType: r.Type, ResourceId: r.ID})
	return &leasesapi.DeleteResourceResponse{}, nil
}
