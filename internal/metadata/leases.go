package metadata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

const maxLeaseIDLen = 256

func validateLeaseID(id string) error {
	if id == "" || len(id) > maxLeaseIDLen || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("lease id %q: must be 1 to %d bytes without '/': %w", id, maxLeaseIDLen, errdefs.ErrInvalidArgument)
	}
	return nil
}

// leaseExpiry returns the expiry time set by the berth.io/gc.expire label.
func leaseExpiry(lbls map[string]string) (time.Time, bool, error) {
	v, ok := lbls[leases.LabelExpire]
	if !ok {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("label %s=%q: not an RFC 3339 time: %w", leases.LabelExpire, v, errdefs.ErrInvalidArgument)
	}
	return t, true, nil
}

// CreateLease creates a lease in the namespace of ctx; an empty ID gets a
// random one.
func (m *DB) CreateLease(ctx context.Context, l leases.Lease) (leases.Lease, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return leases.Lease{}, err
	}
	if l.ID == "" {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return leases.Lease{}, err
		}
		l.ID = hex.EncodeToString(b[:])
	}
	if err := validateLeaseID(l.ID); err != nil {
		return leases.Lease{}, err
	}
	if err := labels.ValidateAll(l.Labels); err != nil {
		return leases.Lease{}, fmt.Errorf("lease %q: %w", l.ID, err)
	}
	if _, _, err := leaseExpiry(l.Labels); err != nil {
		return leases.Lease{}, fmt.Errorf("lease %q: %w", l.ID, err)
	}
	l.CreatedAt = m.now().UTC()
	err = m.db.Update(func(tx *bolt.Tx) error {
		nsb, err := m.createNSBucket(tx, ns)
		if err != nil {
			return err
		}
		ls, err := nsb.CreateBucketIfNotExists(bucketLeases)
		if err != nil {
			return err
		}
		if ls.Bucket([]byte(l.ID)) != nil {
			return fmt.Errorf("lease %q: %w", l.ID, errdefs.ErrAlreadyExists)
		}
		b, err := ls.CreateBucket([]byte(l.ID))
		if err != nil {
			return err
		}
		if err := putTime(b, keyCreatedAt, l.CreatedAt); err != nil {
			return err
		}
		return writeLabels(b, l.Labels)
	})
	return l, err
}

// DeleteLease removes a lease. With sync it then runs a collection, so what
// only the lease held is gone when it returns; otherwise one is scheduled.
func (m *DB) DeleteLease(ctx context.Context, id string, sync bool) error {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return err
	}
	err = m.db.Update(func(tx *bolt.Tx) error {
		ls := bucketPath(nsBucket(tx, ns), bucketLeases)
		if ls == nil || ls.Bucket([]byte(id)) == nil {
			return errLeaseNotFound(id)
		}
		return ls.DeleteBucket([]byte(id))
	})
	if err != nil {
		return err
	}
	if sync {
		_, err = m.GarbageCollect(ctx)
		return err
	}
	m.gc.schedule()
	return nil
}

func errLeaseNotFound(id string) error {
	return fmt.Errorf("lease %q: %w", id, errdefs.ErrNotFound)
}

// ListLeases returns the leases of the namespace of ctx matching filterStrs
// (fields: id, labels.*), sorted by creation time.
func (m *DB) ListLeases(ctx context.Context, filterStrs ...string) ([]leases.Lease, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filters.Parse(filterStrs...)
	if err != nil {
		return nil, err
	}
	var out []leases.Lease
	err = m.db.View(func(tx *bolt.Tx) error {
		nsb := nsBucket(tx, ns)
		if nsb == nil {
			return errNamespaceNotFound(ns)
		}
		ls := nsb.Bucket(bucketLeases)
		if ls == nil {
			return nil
		}
		return ls.ForEachBucket(func(k []byte) error {
			b := ls.Bucket(k)
			l := leases.Lease{ID: string(k), CreatedAt: getTime(b, keyCreatedAt), Labels: readLabels(b)}
			match := f.Match(filters.AdaptorFunc(func(fp []string) (string, bool) {
				if len(fp) == 1 && fp[0] == "id" {
					return l.ID, true
				}
				return filters.LabelsField(l.Labels, fp)
			}))
			if match {
				out = append(out, l)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

func validateResource(r leases.Resource) error {
	switch r.Type {
	case leases.ResourceContent:
		return content.ValidateDigest(digest.Digest(r.ID))
	case leases.ResourceIngest:
		if r.ID == "" {
			return fmt.Errorf("ingest resource: ref must not be empty: %w", errdefs.ErrInvalidArgument)
		}
		return nil
	default:
		if sn, ok := strings.CutPrefix(r.Type, leases.ResourceSnapshotPrefix); ok && sn != "" && r.ID != "" {
			return nil
		}
		return fmt.Errorf("resource type %q: must be %q, %q or %q<snapshotter>, with an id: %w", r.Type,
			leases.ResourceContent, leases.ResourceIngest, leases.ResourceSnapshotPrefix, errdefs.ErrInvalidArgument)
	}
}

// attachToLease records r under lease id in nsb; the lease must exist.
func attachToLease(nsb *bolt.Bucket, id string, r leases.Resource) error {
	lb := bucketPath(nsb, bucketLeases, []byte(id))
	if lb == nil {
		return errLeaseNotFound(id)
	}
	rb, err := lb.CreateBucketIfNotExists([]byte(r.Type))
	if err != nil {
		return err
	}
	return rb.Put([]byte(r.ID), nil)
}

// AddResource attaches r to lease id, protecting it from collection.
func (m *DB) AddResource(ctx context.Context, id string, r leases.Resource) error {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return err
	}
	if err := validateResource(r); err != nil {
		return err
	}
	return m.db.Update(func(tx *bolt.Tx) error {
		nsb := nsBucket(tx, ns)
		if nsb == nil {
			return errLeaseNotFound(id)
		}
		return attachToLease(nsb, id, r)
	})
}

// DeleteResource detaches r from lease id.
func (m *DB) DeleteResource(ctx context.Context, id string, r leases.Resource) error {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return err
	}
	if err := validateResource(r); err != nil {
		return err
	}
	err = m.db.Update(func(tx *bolt.Tx) error {
		lb := bucketPath(nsBucket(tx, ns), bucketLeases, []byte(id))
		if lb == nil {
			return errLeaseNotFound(id)
		}
		rb := lb.Bucket([]byte(r.Type))
		if rb == nil || rb.Get([]byte(r.ID)) == nil {
			return fmt.Errorf("lease %q: resource %s %q: %w", id, r.Type, r.ID, errdefs.ErrNotFound)
		}
		return rb.Delete([]byte(r.ID))
	})
	if err == nil {
		m.gc.schedule()
	}
	return err
}

// ListResources returns what lease id holds.
func (m *DB) ListResources(ctx context.Context, id string) ([]leases.Resource, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return nil, err
	}
	var out []leases.Resource
	err = m.db.View(func(tx *bolt.Tx) error {
		lb := bucketPath(nsBucket(tx, ns), bucketLeases, []byte(id))
		if lb == nil {
			return errLeaseNotFound(id)
		}
		return lb.ForEachBucket(func(typ []byte) error {
			if typ := string(typ); typ != string(bucketLabels) {
				_ = lb.Bucket([]byte(typ)).ForEach(func(k, _ []byte) error {
					out = append(out, leases.Resource{Type: typ, ID: string(k)})
					return nil
				})
			}
			return nil
		})
	})
	return out, err
}
