package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
	"github.com/berth-dev/berth/internal/namespaces"
)

func (n *namespacesService) Delete(ctx context.Context, req *namespacesapi.DeleteNamespaceRequest) (*namespacesapi.DeleteNamespaceResponse, error) {
	if err := n.s.db.DeleteNamespace(ctx, req.GetName()); err != nil {
		return nil, err
	}
	n.s.events.Publish(namespaces.WithNamespace(ctx, req.GetName()), "/namespaces/delete", &eventsapi.NamespaceDelete{Name: req.GetName()})
	return &namespacesapi.DeleteNamespaceResponse{}, nil
}
