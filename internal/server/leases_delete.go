package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	leasesapi "github.com/berth-dev/berth/api/leases/v1"
)

func (l *leasesService) Delete(ctx context.Context, req *leasesapi.DeleteRequest) (*leasesapi.DeleteResponse, error) {
	if err := l.s.db.DeleteLease(ctx, req.GetId(), req.GetSync()); err != nil {
		return nil, err
	}
	l.s.events.Publish(ctx, "/leases/delete", &eventsapi.LeaseDelete{Id: req.GetId()})
	return &leasesapi.DeleteResponse{}, nil
}
