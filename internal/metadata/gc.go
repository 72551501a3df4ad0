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
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// GCStats reports what one collection removed.
type GCStats struct {
	BlobsRemoved     int64
	BytesFreed       int64
	LeasesExpired    int64
	IngestsRemoved   int64
	SnapshotsRemoved int64
	Duration         time.Duration
}

// GarbageCollect runs one full collection over every namespace:
//
//  1. One write transaction removes expired leases, marks from the roots
//     (gc.Mark) and deletes the records of unmarked blobs and ingests. It
//     touches only the database.
//  2. Outside any transaction, ingests no record names are aborted; each
//     blob on disk that no namespace records is deleted while holding that
//     digest's lock, after checking again that it is still unrecorded; and
//     each backend snapshot no record names (and none being created) is
//     removed, children before parents, then the backends clean up.
//
// Only one collection runs at a time.
func (m *DB) GarbageCollect(ctx context.Context) (GCStats, error) {
	m.gc.running.Lock()
	defer m.gc.running.Unlock()
	start := m.now()
	var stats GCStats
	m.gc.holds.Lock()
	err := m.db.Update(func(tx *bolt.Tx) error {
		return m.sweepRecords(tx, start, &stats)
	})
	m.gc.holds.Unlock()
	if err != nil {
		return stats, err
	}
	if err := m.sweepIngests(ctx, &stats); err != nil {
		return stats, err
	}
	if err := m.sweepBlobs(ctx, &stats); err != nil {
		return stats, err
	}
	if err := m.sweepSnapshots(ctx); err != nil {
		return stats, err
	}
	stats.Duration = m.now().Sub(start)
	if m.opts.OnCollect != nil {
		m.opts.OnCollect(ctx, stats)
	}
	return stats, nil
}

// HoldGC keeps collections from deleting records until release is called,
// so that what the caller records meanwhile and references only in a later
// transaction (a container's new snapshot, before the container record) is
// not collected in between: a lease without its two commits. Hold it
// briefly, and not twice in one goroutine: a waiting collection blocks new
// holds.
func (m *DB) HoldGC() (release func()) {
	m.gc.holds.RLock()
	return m.gc.holds.RUnlock
}

// sweepRecords is phase 1 of GarbageCollect.
func (m *DB) sweepRecords(tx *bolt.Tx, now time.Time, stats *GCStats) error {
	roots, err := m.roots(tx, now, stats)
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
		sweep := func(typ gc.ResourceType, b *bolt.Bucket, keyPrefix string, counter *int64) error {
			if b == nil {
				return nil
			}
			var dead [][]byte
			_ = b.ForEachBucket(func(k []byte) error {
				if _, ok := marked[gc.Node{Type: typ, Namespace: ns, Key: keyPrefix + string(k)}]; !ok {
					dead = append(dead, k)
				}
				return nil
			})
			for _, k := range dead {
				if err := b.DeleteBucket(k); err != nil {
					return err
				}
				if counter != nil {
					*counter++
				}
			}
			return nil
		}
		if err := sweep(gc.ResourceContent, bucketPath(nsb, bucketContent, bucketBlob), "", nil); err != nil {
			return err
		}
		if err := sweep(gc.ResourceIngest, bucketPath(nsb, bucketContent, bucketIngest), "", &stats.IngestsRemoved); err != nil {
			return err
		}
		if sb := nsb.Bucket(bucketSnapshots); sb != nil {
			return sb.ForEachBucket(func(sn []byte) error {
				return sweep(gc.ResourceSnapshot, sb.Bucket(sn), string(sn)+"/", &stats.SnapshotsRemoved)
			})
		}
		return nil
	})
}

// roots deletes expired leases and returns the roots of every namespace:
// unexpired leases, images, containers, blobs and snapshots labelled berth.io/gc.root,
// and ingests younger than their expiry.
func (m *DB) roots(tx *bolt.Tx, now time.Time, stats *GCStats) ([]gc.Node, error) {
	var roots []gc.Node
	err := namespacesBucket(tx).ForEachBucket(func(nsName []byte) error {
		ns := string(nsName)
		nsb := nsBucket(tx, ns)
		add := func(typ gc.ResourceType, key string) {
			roots = append(roots, gc.Node{Type: typ, Namespace: ns, Key: key})
		}
		if ls := nsb.Bucket(bucketLeases); ls != nil {
			var expired [][]byte
			_ = ls.ForEachBucket(func(id []byte) error {
				exp, ok, err := leaseExpiry(readLabels(ls.Bucket(id)))
				if err == nil && ok && !now.Before(exp) {
					expired = append(expired, id)
				} else {
					add(gc.ResourceLease, string(id))
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
		if ib := nsb.Bucket(bucketImages); ib != nil {
			_ = ib.ForEachBucket(func(k []byte) error {
				add(gc.ResourceImage, string(k))
				return nil
			})
		}
		if cb := nsb.Bucket(bucketContainers); cb != nil {
			_ = cb.ForEachBucket(func(k []byte) error {
				add(gc.ResourceContainer, string(k))
				return nil
			})
		}
		labelledRoots := func(b *bolt.Bucket, typ gc.ResourceType, keyPrefix string) {
			if b == nil {
				return
			}
			_ = b.ForEachBucket(func(k []byte) error {
				if lb := b.Bucket(k).Bucket(bucketLabels); lb != nil && lb.Get([]byte(gc.LabelRoot)) != nil {
					add(typ, keyPrefix+string(k))
				}
				return nil
			})
		}
		labelledRoots(bucketPath(nsb, bucketContent, bucketBlob), gc.ResourceContent, "")
		if sb := nsb.Bucket(bucketSnapshots); sb != nil {
			_ = sb.ForEachBucket(func(sn []byte) error {
				labelledRoots(sb.Bucket(sn), gc.ResourceSnapshot, string(sn)+"/")
				return nil
			})
		}
		if ingests := bucketPath(nsb, bucketContent, bucketIngest); ingests != nil {
			_ = ingests.ForEachBucket(func(k []byte) error {
				if exp := getTime(ingests.Bucket(k), keyExpireAt); !exp.IsZero() && now.Before(exp) {
					add(gc.ResourceIngest, string(k))
				}
				return nil
			})
		}
		return nil
	})
	return roots, err
}

// references lists what node n references: a lease its resources; an image
// its target; a container its snapshot; a blob or snapshot what its berth.io/gc.ref.* labels name; a
// snapshot its parent. Snapshot node keys are "<snapshotter>/<key>".
func references(tx *bolt.Tx, n gc.Node, fn func(gc.Node)) error {
	nsb := nsBucket(tx, n.Namespace)
	node := func(typ gc.ResourceType, key string) {
		fn(gc.Node{Type: typ, Namespace: n.Namespace, Key: key})
	}
	switch n.Type {
	case gc.ResourceLease:
		lb := bucketPath(nsb, bucketLeases, []byte(n.Key))
		if lb == nil {
			return nil
		}
		return lb.ForEachBucket(func(typ []byte) error {
			rb := lb.Bucket(typ)
			t := string(typ)
			return rb.ForEach(func(k, _ []byte) error {
				switch {
				case t == leases.ResourceContent:
					node(gc.ResourceContent, string(k))
				case t == leases.ResourceIngest:
					node(gc.ResourceIngest, string(k))
				case strings.HasPrefix(t, leases.ResourceSnapshotPrefix):
					node(gc.ResourceSnapshot, strings.TrimPrefix(t, leases.ResourceSnapshotPrefix)+"/"+string(k))
				}
				return nil
			})
		})
	case gc.ResourceImage:
		if t := bucketPath(nsb, bucketImages, []byte(n.Key), bucketTarget); t != nil {
			node(gc.ResourceContent, string(t.Get(keyDigest)))
		}
	case gc.ResourceContainer:
		if b := bucketPath(nsb, bucketContainers, []byte(n.Key)); b != nil {
			node(gc.ResourceSnapshot, string(b.Get(keySnapshotter))+"/"+string(b.Get(keySnapshotKey)))
			labelReferences(b, node)
		}
	case gc.ResourceContent:
		labelReferences(bucketPath(nsb, bucketContent, bucketBlob, []byte(n.Key)), node)
	case gc.ResourceSnapshot:
		sn, key, _ := strings.Cut(n.Key, "/")
		b := bucketPath(nsb, bucketSnapshots, []byte(sn), []byte(key))
		if b == nil {
			return nil
		}
		if parent := b.Get(keyParent); len(parent) > 0 {
			node(gc.ResourceSnapshot, sn+"/"+string(parent))
		}
		labelReferences(b, node)
	}
	return nil
}

// labelReferences follows the berth.io/gc.ref.* labels of the record b.
func labelReferences(b *bolt.Bucket, node func(gc.ResourceType, string)) {
	lb := bucketPath(b, bucketLabels)
	if lb == nil {
		return
	}
	_ = lb.ForEach(func(k, v []byte) error {
		key := string(k)
		switch {
		case strings.HasPrefix(key, gc.LabelRefContentPrefix):
			node(gc.ResourceContent, string(v))
		case strings.HasPrefix(key, gc.LabelRefSnapshotPrefix):
			sn, _, _ := strings.Cut(strings.TrimPrefix(key, gc.LabelRefSnapshotPrefix), ".")
			node(gc.ResourceSnapshot, sn+"/"+string(v))
		}
		return nil
	})
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
	defer m.locks.Lock(string(dgst))()
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
	running sync.Mutex   // held while a collection runs
	holds   sync.RWMutex // read-held by HoldGC; a collection marks under the write lock
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

// sweepSnapshots removes backend snapshots that no namespace records.
func (m *DB) sweepSnapshots(ctx context.Context) error {
	for name, backend := range m.opts.Snapshotters {
		recorded, err := m.recordedBackends(name)
		if err != nil {
			return err
		}
		var candidates []snapshots.Info
		if err := backend.Walk(ctx, func(info snapshots.Info) error {
			if !recorded[info.Name] && !m.inflight.has(info.Name) {
				candidates = append(candidates, info)
			}
			return nil
		}); err != nil {
			return err
		}
		// A snapshot being made between the first look and the walk may
		// have been recorded, and left the in-flight set, since: look again.
		if recorded, err = m.recordedBackends(name); err != nil {
			return err
		}
		var garbage []snapshots.Info
		for _, info := range candidates {
			if !recorded[info.Name] {
				garbage = append(garbage, info)
			}
		}
		// Remove children before parents: repeat while something goes.
		for progress := true; progress && len(garbage) > 0; {
			progress = false
			var left []snapshots.Info
			for _, info := range garbage {
				if err := backend.Remove(ctx, info.Name); err == nil || errdefs.IsNotFound(err) {
					progress = true
				} else {
					left = append(left, info)
				}
			}
			garbage = left
		}
		if err := backend.Cleanup(ctx); err != nil {
			log.G(ctx).Warn("gc: snapshot cleanup", "snapshotter", name, "error", err)
		}
	}
	return nil
}

// recordedBackends returns the backend keys of snapshotter name's snapshots
// that some namespace records.
func (m *DB) recordedBackends(name string) (map[string]bool, error) {
	recorded := map[string]bool{}
	err := m.db.View(func(tx *bolt.Tx) error {
		return namespacesBucket(tx).ForEachBucket(func(ns []byte) error {
			b := bucketPath(nsBucket(tx, string(ns)), bucketSnapshots, []byte(name))
			if b == nil {
				return nil
			}
			return b.ForEachBucket(func(k []byte) error {
				recorded[string(b.Bucket(k).Get(keyBackend))] = true
				return nil
			})
		})
	})
	return recorded, err
}
