// Package leases defines the Lease type, the resources a lease can hold, and
// the context accessor for the lease of a request. Storage and expiry live in
// package metadata; the rules are in docs/gc-and-leases.md.
package leases

import (
	"context"
	"time"
)

// GRPCHeader is the gRPC metadata key that carries a request's lease ID.
const GRPCHeader = "berth-lease"

// LabelExpire is the label holding a lease's expiry time (RFC 3339). An
// expired lease no longer protects its resources and is removed by the next
// garbage collection.
const LabelExpire = "berth.io/gc.expire"

// Lease protects resources from garbage collection while it exists.
type Lease struct {
	ID        string
	CreatedAt time.Time
	Labels    map[string]string
}

// Resource is something held by a lease. Type is "content" (ID is a digest),
// "ingest" (ID is an ingest ref) or "snapshots/<snapshotter>" (ID is a
// snapshot key or name).
type Resource struct {
	ID   string
	Type string
}

// Resource types a lease may hold. A snapshot's type is
// ResourceSnapshotPrefix followed by its snapshotter's name
// ("snapshots/overlayfs"); its ID is the snapshot's key or name.
const (
	ResourceContent        = "content"
	ResourceIngest         = "ingest"
	ResourceSnapshotPrefix = "snapshots/"
)

type leaseKey struct{}

// WithLease returns a copy of ctx whose writes are attached to lease id.
func WithLease(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, leaseKey{}, id)
}

// FromContext returns the lease ID carried by ctx and whether there is one.
func FromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(leaseKey{}).(string)
	return id, ok && id != ""
}
