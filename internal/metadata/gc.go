package metadata

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/gc"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/log"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// GCStats reports what one collection removed.
type GCStats struct {
	BlobsRemoved   int64
	BytesFreed     int64
	LeasesExpired  int64
	IngestsRemoved int64
	Duration       time.Duration
}

// GarbageCollect runs one full collection over every namespace:
//
//  1. One write transaction removes expired leases, marks from the roots
//     (gc.Mark) and deletes the records of unmarked blobs and ingests. It
//     touches only the database.
//  2. Outside any transaction, ingests no record names are aborted, and each
//     blob on disk that no namespace records is deleted while holding that
//     digest's lock, after checking again that it is still unrecorded.
//
// Only one collection runs at a time.
func (m *DB) GarbageCollect(ctx context.Context) (GCStats, error) {
	m.gc.running.Lock()
	defer m.gc.running.Unlock()
	start := m.now()
	var stats GCStats
	if err := m.db.Update(func(tx *bolt.Tx) error {
		return m.sweepRecords(tx, start, &stats)
	}); err != nil {
		return stats, err
	}
	if err := m.sweepIngests(ctx, &stats); err != nil {
		return stats, err
	}
	if err := m.sweepBlobs(ctx, &stats); err != nil {
		return stats, err
	}
	stats.Duration = m.now().Sub(start)
	if m.opts.OnCollect != nil {
		m.opts.OnCollect(ctx, stats)
	}
	return stats, nil
}

// sweepRecords is phase 1 of GarbageCollect.
func (m *DB) sweepRecords(tx *bolt.Tx, now time.Time, stats *GCStats) error {
	var roots []gc.Node
	err := namespacesBucket(tx).ForEachBucket(func(nsName []byte) error {
		ns := string(nsName)
		nsb := nsBucket(tx, ns)
		if ls := nsb.Bucket(bucketLeases); ls != nil {
			var expired [][]byte
			_ = ls.ForEachBucket(func(id []byte) error {
				exp, ok, err := leaseExpiry(readLabels(ls.Bucket(id)))
				if err == nil && ok && !now.Before(exp) {
					expired = append(expired, id)
				} else {
					roots = append(roots, gc.Node{Type: gc.ResourceLease, Namespace: ns, Key: string(id)})
				}
				return nil
			})
			for _, id := range expired {
				if err := ls.DeleteBucket(id); err != nil {
					return err
				}
				stats.LeasesExpired++
			}
		}
		if blobs := bucketPath(nsb, bucketContent, bucketBlob); blobs != nil {
			_ = blobs.ForEachBucket(func(k []byte) error {
				if lb := blobs.Bucket(k).Bucket(bucketLabels); lb != nil && lb.Get([]byte(gc.LabelRoot)) != nil {
					roots = append(roots, gc.Node{Type: gc.ResourceContent, Namespace: ns, Key: string(k)})
				}
				return nil
			})
		}
		if ingests := bucketPath(nsb, bucketContent, bucketIngest); ingests != nil {
			_ = ingests.ForEachBucket(func(k []byte) error {
				if exp := getTime(ingests.Bucket(k), keyExpireAt); !exp.IsZero() && now.Before(exp) {
					roots = append(roots, gc.Node{Type: gc.ResourceIngest, Namespace: ns, Key: string(k)})
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	marked, err := gc.Mark(roots, func(n gc.Node, fn func(gc.Node)) error {
		return references(tx, n, fn)
	})
	if err != nil {
		return err
	}
	return namespacesBucket(tx).ForEachBucket(func(nsName []byte) error {
		ns := string(nsName)
		nsb := nsBucket(tx, ns)
		for _, s := range []struct {
			typ     gc.ResourceType
			bucket  *bolt.Bucket
			counter *int64
		}{
			{gc.ResourceContent, bucketPath(nsb, bucketContent, bucketBlob), nil},
			{gc.ResourceIngest, bucketPath(nsb, bucketContent, bucketIngest), &stats.IngestsRemoved},
		} {
			if s.bucket == nil {
				continue
			}
			var dead [][]byte
			_ = s.bucket.ForEachBucket(func(k []byte) error {
				if _, ok := marked[gc.Node{Type: s.typ, Namespace: ns, Key: string(k)}]; !ok {
					dead = append(dead, k)
				}
				return nil
			})
			for _, k := range dead {
				if err := s.bucket.DeleteBucket(k); err != nil {
					return err
				}
				if s.counter != nil {
					*s.counter++
				}
			}
		}
		return nil
	})
}

// references lists what node n references: a lease its resources, a blob the
// blobs named by its berth.io/gc.ref.content.* labels.
func references(tx *bolt.Tx, n gc.Node, fn func(gc.Node)) error {
	nsb := nsBucket(tx, n.Namespace)
	switch n.Type {
	case gc.ResourceLease:
		lb := bucketPath(nsb, bucketLeases, []byte(n.Key))
		for _, r := range []struct {
			name string
			typ  gc.ResourceType
		}{{leases.ResourceContent, gc.ResourceContent}, {leases.ResourceIngest, gc.ResourceIngest}} {
			if rb := bucketPath(lb, []byte(r.name)); rb != nil {
				_ = rb.ForEach(func(k, _ []byte) error {
					fn(gc.Node{Type: r.typ, Namespace: n.Namespace, Key: string(k)})
					return nil
				})
			}
		}
	case gc.ResourceContent:
		lb := bucketPath(nsb, bucketContent, bucketBlob, []byte(n.Key), bucketLabels)
		if lb == nil {
			return nil
		}
		c := lb.Cursor()
		for k, v := c.Seek([]byte(gc.LabelRefContentPrefix)); k != nil && strings.HasPrefix(string(k), gc.LabelRefContentPrefix); k, v = c.Next() {
			fn(gc.Node{Type: gc.ResourceContent, Namespace: n.Namespace, Key: string(v)})
		}
	}
	return nil
}

// sweepIngests aborts ingests in the store that no namespace records.
func (m *DB) sweepIngests(ctx context.Context, stats *GCStats) error {
	statuses, err := m.backend.ListStatuses(ctx)
	if err != nil {
		return err
	}
	for _, st := range statuses {
		ns, ref, ok := strings.Cut(st.Ref, "/")
		if !ok {
			continue
		}
		var recorded bool
		_ = m.db.View(func(tx *bolt.Tx) error {
			recorded = bucketPath(nsBucket(tx, ns), bucketContent, bucketIngest, []byte(ref)) != nil
			return nil
		})
		if recorded {
			continue
		}
		if err := m.backend.Abort(ctx, st.Ref); err != nil && !errdefs.IsNotFound(err) {
			// Locked by a live writer: it is not garbage after all.
			log.G(ctx).Debug("gc: keep ingest", "ref", st.Ref, "error", err)
		}
	}
	return nil
}

// sweepBlobs deletes blobs on disk that no namespace records.
func (m *DB) sweepBlobs(ctx context.Context, stats *GCStats) error {
	var candidates []content.Info
	if err := m.backend.Walk(ctx, func(info content.Info) error {
		candidates = append(candidates, info)
		return nil
	}); err != nil {
		return err
	}
	for _, info := range candidates {
		removed, err := m.removeIfUnrecorded(ctx, info.Digest)
		if err != nil {
			return err
		}
		if removed {
			stats.BlobsRemoved++
			stats.BytesFreed += info.Size
			m.blobs.Add(-1)
			m.blobBytes.Add(-info.Size)
		}
	}
	return nil
}

func (m *DB) removeIfUnrecorded(ctx context.Context, dgst digest.Digest) (bool, error) {
	m.locks.lock(string(dgst))
	defer m.locks.unlock(string(dgst))
	recorded := false
	if err := m.db.View(func(tx *bolt.Tx) error {
		return namespacesBucket(tx).ForEachBucket(func(ns []byte) error {
			if blobBucket(tx, string(ns), dgst) != nil {
				recorded = true
			}
			return nil
		})
	}); err != nil || recorded {
		return false, err
	}
	if err := m.backend.Delete(ctx, dgst); err != nil {
		if errdefs.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// scheduler runs a collection shortly after deletes.
type scheduler struct {
	m       *DB
	running sync.Mutex // held while a collection runs
	trigger chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func newScheduler(m *DB) *scheduler {
	s := &scheduler{m: m, trigger: make(chan struct{}, 1), done: make(chan struct{})}
	if m.opts.GCDelay < 0 {
		close(s.done)
		return s
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.loop(ctx)
	return s
}

// schedule asks for a collection soon; it never blocks.
func (s *scheduler) schedule() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

func (s *scheduler) loop(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.trigger:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.m.opts.GCDelay):
		}
		if _, err := s.m.GarbageCollect(ctx); err != nil && ctx.Err() == nil {
			log.G(ctx).Error("garbage collection", "error", err)
		}
	}
}

func (s *scheduler) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	<-s.done
}
