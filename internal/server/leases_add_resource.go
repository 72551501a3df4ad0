package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	leasesapi "github.com/berth-dev/berth/api/leases/v1"
)

func (l *leasesService) AddResource(ctx context.Context, req *leasesapi.AddResourceRequest) (*leasesapi.AddResourceResponse, error) {
	r := resourceFromProto(req.GetResource())
	if err := l.s.db.AddResource(ctx, req.GetId(), r); err != nil {
		return nil, err
	}
	l.s.events.Publish(ctx, "/leases/resource/add", &eventsapi.LeaseResourceAdd{Id: req.GetId(), ResourceType: r.Type, ResourceId: r.ID})
	return &leasesapi.AddResourceResponse{}, nil
}
