package client

import (
	"context"

	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Namespace is a namespace and its labels.
type Namespace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

func namespaceFromProto(n *namespacesapi.Namespace) Namespace {
	return Namespace{Name: n.GetName(), Labels: n.GetLabels()}
}

// CreateNamespace creates a namespace.
func (c *Client) CreateNamespace(ctx context.Context, name string, labels map[string]string) (Namespace, error) {
	r, err := c.namespaces.Create(ctx, &namespacesapi.CreateNamespaceRequest{Namespace: &namespacesapi.Namespace{Name: name, Labels: labels}})
	if err != nil {
		return Namespace{}, err
	}
	return namespaceFromProto(r.GetNamespace()), nil
}

// GetNamespace returns one namespace.
func (c *Client) GetNamespace(ctx context.Context, name string) (Namespace, error) {
	r, err := c.namespaces.Get(ctx, &namespacesapi.GetNamespaceRequest{Name: name})
	if err != nil {
		return Namespace{}, err
	}
	return namespaceFromProto(r.GetNamespace()), nil
}

// ListNamespaces returns the namespaces matching any of filters.
func (c *Client) ListNamespaces(ctx context.Context, filters ...string) ([]Namespace, error) {
	r, err := c.namespaces.List(ctx, &namespacesapi.ListNamespacesRequest{Filters: filters})
	if err != nil {
		return nil, err
	}
	out := make([]Namespace, 0, len(r.GetNamespaces()))
	for _, n := range r.GetNamespaces() {
		out = append(out, namespaceFromProto(n))
	}
	return out, nil
}

// SetNamespaceLabels sets (or, with an empty value, removes) the given labels.
func (c *Client) SetNamespaceLabels(ctx context.Context, name string, labels map[string]string) (Namespace, error) {
	r, err := c.namespaces.Update(ctx, &namespacesapi.UpdateNamespaceRequest{
		Namespace:  &namespacesapi.Namespace{Name: name, Labels: nonEmpty(labels)},
		UpdateMask: labelMask(labels),
	})
	if err != nil {
		return Namespace{}, err
	}
	return namespaceFromProto(r.GetNamespace()), nil
}

// DeleteNamespace deletes an empty namespace.
func (c *Client) DeleteNamespace(ctx context.Context, name string) error {
	_, err := c.namespaces.Delete(ctx, &namespacesapi.DeleteNamespaceRequest{Name: name})
	return err
}

// labelMask names each label key as a "labels.KEY" field path.
func labelMask(labels map[string]string) *fieldmaskpb.FieldMask {
	m := &fieldmaskpb.FieldMask{}
	for k := range labels {
		m.Paths = append(m.Paths, "labels."+k)
	}
	return m
}

// nonEmpty drops labels with empty values: with labelMask they are removed.
func nonEmpty(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if v != "" {
			out[k] = v
		}
	}
	return out
}
