package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/namespaces"
)

func (n *namespacesService) Create(ctx context.Context, req *namespacesapi.CreateNamespaceRequest) (*namespacesapi.CreateNamespaceResponse, error) {
	ns, err := n.s.db.CreateNamespace(ctx, metadata.Namespace{Name: req.GetNamespace().GetName(), Labels: req.GetNamespace().GetLabels()})
	if err != nil {
		return nil, err
	}
	n.s.events.Publish(namespaces.WithNamespace(ctx, ns.Name), "/namespaces/create", &eventsapi.NamespaceCreate{Name: ns.Name, Labels: ns.Labels})
	return &namespacesapi.CreateNamespaceResponse{Namespace: namespaceToProto(ns)}, nil
}
