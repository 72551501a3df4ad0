package server

import (
	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
	"github.com/berth-dev/berth/internal/metadata"
)

type namespacesService struct {
	namespacesapi.UnimplementedNamespacesServer
	s *Server
}

func namespaceToProto(ns metadata.Namespace) *namespacesapi.Namespace {
	return &namespacesapi.Namespace{Name: ns.Name, Labels: ns.Labels}
}
