package client

import (
	"context"
	"time"

	gcapi "github.com/berth-dev/berth/api/gc/v1"
)

// GCStats reports what a garbage collection freed.
type GCStats struct {
	BlobsRemoved   int64         `json:"blobs_removed"`
	BytesFreed     int64         `json:"bytes_freed"`
	LeasesExpired  int64         `json:"leases_expired"`
	IngestsRemoved int64         `json:"ingests_removed"`
	Duration       time.Duration `json:"duration_ns"`
}

// GarbageCollect runs a full collection now (berth system prune).
func (c *Client) GarbageCollect(ctx context.Context) (GCStats, error) {
	r, err := c.gc.Collect(ctx, &gcapi.CollectRequest{})
	if err != nil {
		return GCStats{}, err
	}
	return GCStats{BlobsRemoved: r.GetBlobsRemoved(), BytesFreed: r.GetBytesFreed(), LeasesExpired: r.GetLeasesExpired(),
		IngestsRemoved: r.GetIngestsRemoved(), Duration: time.Duration(r.GetDurationNs())}, nil
}
