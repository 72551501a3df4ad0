package client

import (
	"context"
	"time"

	leasesapi "github.com/berth-dev/berth/api/leases/v1"
	"github.com/berth-dev/berth/internal/gc"
	"github.com/berth-dev/berth/internal/leases"
)

// LabelLeaseExpire is the lease label holding its expiry (RFC 3339).
const LabelLeaseExpire = leases.LabelExpire

// LabelGCRoot on a blob keeps it (and what it references through
// berth.io/gc.ref.content.* labels) from garbage collection.
const LabelGCRoot = gc.LabelRoot

// Lease protects resources from garbage collection.
type Lease struct {
	ID        string            `json:"id"`
	CreatedAt time.Time         `json:"created_at"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// LeaseResource is something a lease holds: Type "content" (ID a digest) or
// "ingest" (ID an ingest ref).
type LeaseResource struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

func leaseFromProto(l *leasesapi.Lease) Lease {
	return Lease{ID: l.GetId(), CreatedAt: timeOf(l.GetCreatedAt()), Labels: l.GetLabels()}
}

// CreateLease creates a lease; an empty id gets a random one, and a positive
// expire sets its expiry that far from now.
func (c *Client) CreateLease(ctx context.Context, id string, expire time.Duration, labels map[string]string) (Lease, error) {
	if expire > 0 {
		l := map[string]string{}
		for k, v := range labels {
			l[k] = v
		}
		l[LabelLeaseExpire] = time.Now().Add(expire).UTC().Format(time.RFC3339)
		labels = l
	}
	r, err := c.leases.Create(ctx, &leasesapi.CreateRequest{Id: id, Labels: labels})
	if err != nil {
		return Lease{}, err
	}
	return leaseFromProto(r.GetLease()), nil
}

// ListLeases returns the leases matching any of filters.
func (c *Client) ListLeases(ctx context.Context, filters ...string) ([]Lease, error) {
	r, err := c.leases.List(ctx, &leasesapi.ListRequest{Filters: filters})
	if err != nil {
		return nil, err
	}
	out := make([]Lease, 0, len(r.GetLeases()))
	for _, l := range r.GetLeases() {
		out = append(out, leaseFromProto(l))
	}
	return out, nil
}

// DeleteLease deletes a lease; with sync, what only it held is collected
// before the call returns.
func (c *Client) DeleteLease(ctx context.Context, id string, sync bool) error {
	_, err := c.leases.Delete(ctx, &leasesapi.DeleteRequest{Id: id, Sync: sync})
	return err
}

// AddLeaseResource attaches r to lease id.
func (c *Client) AddLeaseResource(ctx context.Context, id string, r LeaseResource) error {
	_, err := c.leases.AddResource(ctx, &leasesapi.AddResourceRequest{Id: id, Resource: &leasesapi.Resource{Id: r.ID, Type: r.Type}})
	return err
}

// DeleteLeaseResource detaches r from lease id.
func (c *Client) DeleteLeaseResource(ctx context.Context, id string, r LeaseResource) error {
	_, err := c.leases.DeleteResource(ctx, &leasesapi.DeleteResourceRequest{Id: id, Resource: &leasesapi.Resource{Id: r.ID, Type: r.Type}})
	return err
}

// ListLeaseResources returns what lease id holds.
func (c *Client) ListLeaseResources(ctx context.Context, id string) ([]LeaseResource, error) {
	r, err := c.leases.ListResources(ctx, &leasesapi.ListResourcesRequest{Id: id})
	if err != nil {
		return nil, err
	}
	out := make([]LeaseResource, 0, len(r.GetResources()))
	for _, res := range r.GetResources() {
		out = append(out, LeaseResource{ID: res.GetId(), Type: res.GetType()})
	}
	return out, nil
}
