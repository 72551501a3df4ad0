package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/namespaces"
)

func (n *namespacesService) Update(ctx context.Context, req *namespacesapi.UpdateNamespaceRequest) (*namespacesapi.UpdateNamespaceResponse, error) {
	ns, err := n.s.db.UpdateNamespace(ctx, metadata.Namespace{Name: req.GetNamespace().GetName(), Labels: req.GetNamespace().GetLabels()},
		req.GetUpdateMask().GetPaths()...)
	if err != nil {
		return nil, err
	}
	n.s.events.Publish(namespaces.WithNamespace(ctx, ns.Name), "/namespaces/update", &eventsapi.NamespaceUpdate{Name: ns.Name, Labels: ns.Labels})
	return &namespacesapi.UpdateNamespaceResponse{Namespace: namespaceToProto(ns)}, nil
}
