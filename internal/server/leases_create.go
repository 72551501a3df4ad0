package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	leasesapi "github.com/berth-dev/berth/api/leases/v1"
	"github.com/berth-dev/berth/internal/leases"
)

func (l *leasesService) Create(ctx context.Context, req *leasesapi.CreateRequest) (*leasesapi.CreateResponse, error) {
	lease, err := l.s.db.CreateLease(ctx, leases.Lease{ID: req.GetId(), Labels: req.GetLabels()})
	if err != nil {
		return nil, err
	}
	l.s.events.Publish(ctx, "/leases/create", &eventsapi.LeaseCreate{Id: lease.ID, Labels: lease.Labels})
	return &leasesapi.CreateResponse{Lease: leaseToProto(lease)}, nil
}
