package server

import (
	"context"

	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
)

func (n *namespacesService) Get(ctx context.Context, req *namespacesapi.GetNamespaceRequest) (*namespacesapi.GetNamespaceResponse, error) {
	ns, err := n.s.db.GetNamespace(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return &namespacesapi.GetNamespaceResponse{Namespace: namespaceToProto(ns)}, nil
}
