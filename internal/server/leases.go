package server

import (
	leasesapi "github.com/berth-dev/berth/api/leases/v1"
	"github.com/berth-dev/berth/internal/leases"
)

type leasesService struct {
	leasesapi.UnimplementedLeasesServer
	s *Server
}

func leaseToProto(l leases.Lease) *leasesapi.Lease {
	return &leasesapi.Lease{Id: l.ID, CreatedAt: timestamp(l.CreatedAt), Labels: l.Labels}
}

func resourceFromProto(r *leasesapi.Resource) leases.Resource {
	return leases.Resource{ID: r.GetId(), Type: r.GetType()}
}
