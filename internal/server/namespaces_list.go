package server

import (
	"context"

	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
)

func (n *namespacesService) List(ctx context.Context, req *namespacesapi.ListNamespacesRequest) (*namespacesapi.ListNamespacesResponse, error) {
	list, err := n.s.db.ListNamespaces(ctx, req.GetFilters()...)
	if err != nil {
		return nil, err
	}
	resp := &namespacesapi.ListNamespacesResponse{}
	for _, ns := range list {
		resp.Namespaces = append(resp.Namespaces, namespaceToProto(ns))
	}
	return resp, nil
}
