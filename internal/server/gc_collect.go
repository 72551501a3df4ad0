package server

import (
	"context"

	gcapi "github.com/berth-dev/berth/api/gc/v1"
)

type gcService struct {
	gcapi.UnimplementedGCServer
	s *Server
}

// Collect runs a collection; its event is published by the collector's hook
// (daemon), which sees automatic runs too.
func (g *gcService) Collect(ctx context.Context, _ *gcapi.CollectRequest) (*gcapi.CollectResponse, error) {
	stats, err := g.s.db.GarbageCollect(ctx)
	if err != nil {
		return nil, err
	}
	return &gcapi.CollectResponse{
		BlobsRemoved:   stats.BlobsRemoved,
		BytesFreed:     stats.BytesFreed,
		LeasesExpired:  stats.LeasesExpired,
		IngestsRemoved: stats.IngestsRemoved,
		DurationNs:     stats.Duration.Nanoseconds(),
	}, nil
}
