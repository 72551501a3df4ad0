package server

import (
	"context"
	"os"
	"runtime"
	"sort"

	introspectionapi "github.com/berth-dev/berth/api/introspection/v1"
	"github.com/berth-dev/berth/internal/version"
)

type introspectionService struct {
	introspectionapi.UnimplementedIntrospectionServer
	s        *Server
	services func() []string
}

func (i *introspectionService) Server(ctx context.Context, _ *introspectionapi.ServerRequest) (*introspectionapi.ServerResponse, error) {
	nss, err := i.s.db.ListNamespaces(ctx)
	if err != nil {
		return nil, err
	}
	services := i.services()
	sort.Strings(services)
	info := i.s.info
	return &introspectionapi.ServerResponse{
		Version:        version.Version,
		Revision:       version.Revision,
		GoVersion:      runtime.Version(),
		Pid:            int64(os.Getpid()),
		Root:           info.Root,
		State:          info.State,
		Address:        info.Address,
		StartedAt:      timestamp(info.StartedAt),
		Services:       services,
		Features:       info.Features,
		MetricsAddress: info.MetricsAddress,
		Namespaces:     int64(len(nss)),
	}, nil
}
