package metadata

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/keylock"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/snapshots"
	bolt "go.etcd.io/bbolt"
)

// Bucket and key names of the schema in doc.go.
var (
	bucketV1         = []byte("v1")
	bucketNamespaces = []byte("namespaces")
	bucketLabels     = []byte("labels")
	bucketContent    = []byte("content")
	bucketBlob       = []byte("blob")
	bucketIngest     = []byte("ingest")
	bucketLeases     = []byte("leases")
	keyCreatedAt     = []byte("createdat")
	keyUpdatedAt     = []byte("updatedat")
	keySize          = []byte("size")
	keyExpected      = []byte("expected")
	keyExpireAt      = []byte("expireat")
)

// Sharing policies for blobs already on disk (Options.ContentSharing).
const (
	// SharingShared lets a namespace adopt a blob another namespace already
	// stored by naming its expected digest, without sending the bytes
	// (containerd's default).
	SharingShared = "shared"
	// SharingIsolated makes every namespace send the bytes once, proving it
	// has the content before the blob becomes visible to it.
	SharingIsolated = "isolated"
)

// Options tunes a DB. Zero values take the defaults noted.
type Options struct {
	// ContentSharing is SharingShared (default) or SharingIsolated.
	ContentSharing string
	// IngestExpiry is how long an ingest no lease holds survives garbage
	// collection. Default 24h.
	IngestExpiry time.Duration
	// GCDelay is how long after a delete the automatic collection runs, so
	// that bursts of deletes share one run. Default 100ms; negative disables
	// automatic collection (on-demand runs still work).
	GCDelay time.Duration
	// Snapshotters are the snapshot backends by name ("overlayfs",
	// "native"); the DB wraps them with namespaces (Snapshotter) and
	// collects their unreferenced snapshots.
	Snapshotters map[string]snapshots.Snapshotter
	// OnCollect, when set, is called after every collection with its stats.
	OnCollect func(context.Context, GCStats)
}

// DB is berth's metadata database over a content store.
type DB struct {
	db      *bolt.DB
	backend content.Store
	opts    Options
	now     func() time.Time

	locks    keylock.Locks  // per-digest locks shared by commit and GC
	inflight keySet         // backend snapshots created but not yet recorded
	removing sync.WaitGroup // backend snapshots being removed in the background

	blobs, blobBytes atomic.Int64 // committed blobs on disk, kept for metrics

	gc *scheduler
}

// Open opens (creating if needed) the bbolt database at path over backend.
// It fails fast, rather than waiting, if another process holds the file.
func Open(ctx context.Context, path string, backend content.Store, opts Options) (*DB, error) {
	if opts.ContentSharing == "" {
		opts.ContentSharing = SharingShared
	}
	if opts.ContentSharing != SharingShared && opts.ContentSharing != SharingIsolated {
		return nil, fmt.Errorf("content sharing policy %q: must be %q or %q: %w", opts.ContentSharing, SharingShared, SharingIsolated, errdefs.ErrInvalidArgument)
	}
	if opts.IngestExpiry == 0 {
		opts.IngestExpiry = 24 * time.Hour
	}
	if opts.GCDelay == 0 {
		opts.GCDelay = 100 * time.Millisecond
	}
	bdb, err := bolt.Open(path, 0600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error {
		v1, err := tx.CreateBucketIfNotExists(bucketV1)
		if err != nil {
			return err
		}
		_, err = v1.CreateBucketIfNotExists(bucketNamespaces)
		return err
	}); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("initialise metadata database %s: %w", path, err)
	}
	m := &DB{db: bdb, backend: backend, opts: opts, now: time.Now}
	if err := backend.Walk(ctx, func(info content.Info) error {
		m.blobs.Add(1)
		m.blobBytes.Add(info.Size)
		return nil
	}); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("count blobs: %w", err)
	}
	m.gc = newScheduler(m)
	return m, nil
}

// Close stops automatic collection and closes the database.
func (m *DB) Close() error {
	m.gc.stop()
	m.removing.Wait()
	return m.db.Close()
}

// BlobStats returns the number and total size of blobs on disk.
func (m *DB) BlobStats() (count, bytes int64) { return m.blobs.Load(), m.blobBytes.Load() }

// namespacesBucket returns v1/namespaces.
func namespacesBucket(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket(bucketV1).Bucket(bucketNamespaces)
}

// nsBucket returns the bucket of namespace ns, or nil when it does not exist.
func nsBucket(tx *bolt.Tx, ns string) *bolt.Bucket {
	return namespacesBucket(tx).Bucket([]byte(ns))
}

// createNSBucket returns the bucket of namespace ns, creating the namespace.
func (m *DB) createNSBucket(tx *bolt.Tx, ns string) (*bolt.Bucket, error) {
	if b := nsBucket(tx, ns); b != nil {
		return b, nil
	}
	b, err := namespacesBucket(tx).CreateBucket([]byte(ns))
	if err != nil {
		return nil, err
	}
	return b, putTime(b, keyCreatedAt, m.now())
}

// bucketPath walks nested buckets from b, returning nil if one is missing.
func bucketPath(b *bolt.Bucket, names ...[]byte) *bolt.Bucket {
	for _, n := range names {
		if b == nil {
			return nil
		}
		b = b.Bucket(n)
	}
	return b
}

// createBucketPath walks nested buckets from b, creating missing ones.
func createBucketPath(b *bolt.Bucket, names ...[]byte) (*bolt.Bucket, error) {
	for _, n := range names {
		var err error
		if b, err = b.CreateBucketIfNotExists(n); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// namespaceFrom returns the valid namespace of ctx.
func namespaceFrom(ctx context.Context) (string, error) {
	return namespaces.NamespaceRequired(ctx)
}

// errNamespaceNotFound is returned by reads in a namespace that does not exist.
func errNamespaceNotFound(ns string) error {
	return fmt.Errorf("namespace %q: %w", ns, errdefs.ErrNotFound)
}

func putTime(b *bolt.Bucket, key []byte, t time.Time) error {
	v, err := t.UTC().MarshalBinary()
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

func getTime(b *bolt.Bucket, key []byte) time.Time {
	var t time.Time
	if v := b.Get(key); v != nil {
		_ = t.UnmarshalBinary(v) // a corrupt time reads as zero
	}
	return t
}

func putInt(b *bolt.Bucket, key []byte, n int64) error {
	return b.Put(key, binary.AppendVarint(nil, n))
}

func getInt(b *bolt.Bucket, key []byte) int64 {
	n, _ := binary.Varint(b.Get(key))
	return n
}

// readLabels returns the labels sub-bucket of b as a map (nil when empty).
func readLabels(b *bolt.Bucket) map[string]string {
	lb := b.Bucket(bucketLabels)
	if lb == nil {
		return nil
	}
	out := map[string]string{}
	_ = lb.ForEach(func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// writeLabels replaces the labels sub-bucket of b with labels.
func writeLabels(b *bolt.Bucket, labels map[string]string) error {
	if b.Bucket(bucketLabels) != nil {
		if err := b.DeleteBucket(bucketLabels); err != nil {
			return err
		}
	}
	if len(labels) == 0 {
		return nil
	}
	lb, err := b.CreateBucket(bucketLabels)
	if err != nil {
		return err
	}
	for k, v := range labels {
		if err := lb.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

// keySet is a concurrent set of strings.
type keySet struct {
	mu   sync.Mutex
	keys map[string]int
}

func (s *keySet) add(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]int{}
	}
	s.keys[key]++
}

func (s *keySet) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys[key]--; s.keys[key] <= 0 {
		delete(s.keys, key)
	}
}

func (s *keySet) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key] > 0
}
