// Package server exposes berth's internal packages as the gRPC services of
// api/: each handler decodes its request, calls one internal package and
// encodes the answer. Errors are returned as plain Go errors of the
// errdefs kinds; the interceptor in this package is the only place that
// turns them into gRPC status codes. Handlers publish one event per
// mutation they perform.
package server

import (
	"time"

	containersapi "github.com/berth-dev/berth/api/containers/v1"
	contentapi "github.com/berth-dev/berth/api/content/v1"
	diskusageapi "github.com/berth-dev/berth/api/diskusage/v1"
	eventsapi "github.com/berth-dev/berth/api/events/v1"
	gcapi "github.com/berth-dev/berth/api/gc/v1"
	imagesapi "github.com/berth-dev/berth/api/images/v1"
	introspectionapi "github.com/berth-dev/berth/api/introspection/v1"
	leasesapi "github.com/berth-dev/berth/api/leases/v1"
	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
	tasksapi "github.com/berth-dev/berth/api/tasks/v1"
	"github.com/berth-dev/berth/internal/containers"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/metadata"
	berthruntime "github.com/berth-dev/berth/internal/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Info describes the daemon for the introspection service.
type Info struct {
	Root, State, Address, MetricsAddress string
	StartedAt                            time.Time
	Features                             []string
	Snapshotter                          string // the daemon's snapshotter, used when a request names none
}

// Server holds what the services need.
type Server struct {
	db      *metadata.DB
	content content.Store
	events  *events.Exchange
	puller  *images.Puller
	pusher  *images.Pusher
	info    Info
	// containers and runtime serve the containers and tasks services; both
	// are nil in a daemon that runs no containers.
	containers *containers.Service
	runtime    *berthruntime.Manager
}

// WithContainers makes the server answer the containers and tasks services
// with c and r.
func (s *Server) WithContainers(c *containers.Service, r *berthruntime.Manager) *Server {
	s.containers, s.runtime = c, r
	return s
}

// New returns a Server over db (and its namespaced content store) publishing
// to ex, pulling and creating images with puller and pushing them with
// pusher.
func New(db *metadata.DB, ex *events.Exchange, puller *images.Puller, pusher *images.Pusher, info Info) *Server {
	return &Server{db: db, content: db.ContentStore(), events: ex, puller: puller, pusher: pusher, info: info}
}

// Register adds every berth service to g.
func (s *Server) Register(g *grpc.Server) {
	namespacesapi.RegisterNamespacesServer(g, &namespacesService{s: s})
	contentapi.RegisterContentServer(g, &contentService{s: s})
	leasesapi.RegisterLeasesServer(g, &leasesService{s: s})
	eventsapi.RegisterEventsServer(g, &eventsService{s: s})
	introspectionapi.RegisterIntrospectionServer(g, &introspectionService{s: s, services: serviceNames(g)})
	gcapi.RegisterGCServer(g, &gcService{s: s})
	imagesapi.RegisterImagesServer(g, &imagesService{s: s})
	if s.containers != nil {
		containersapi.RegisterContainersServer(g, &containersService{s: s})
		tasksapi.RegisterTasksServer(g, &tasksService{s: s})
	}
	snapshotsapi.RegisterSnapshotsServer(g, &snapshotsService{s: s})
	diskusageapi.RegisterDiskUsageServer(g, &diskUsageService{s: s})
}

func serviceNames(g *grpc.Server) func() []string {
	return func() []string {
		var names []string
		for name := range g.GetServiceInfo() {
			names = append(names, name)
		}
		return names
	}
}

// timestamp converts t, leaving the zero time unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
