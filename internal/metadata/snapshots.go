package metadata

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshots"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketSnapshots = []byte("snapshots")
	keyBackend      = []byte("backend")
	keyParent       = []byte("parent")
	keyKind         = []byte("kind")
)

// Snapshotter returns the snapshotter called name as the namespace and lease
// of each call's context see it, or nil if the DB has no such snapshotter.
// Keys and names are per namespace; the backend stores each under a key of
// its own ("<namespace>/<random>/<key>", see backendKeyFor), so namespaces
// never collide and a key can be reused while its old snapshot waits for
// collection.
func (m *DB) Snapshotter(name string) snapshots.Snapshotter {
	backend, ok := m.opts.Snapshotters[name]
	if !ok {
		return nil
	}
	return &snapshotter{m: m, name: name, backend: backend}
}

type snapshotter struct {
	m       *DB
	name    string
	backend snapshots.Snapshotter
}

// snapshotRecord is one snapshot of a namespace.
type snapshotRecord struct {
	backend string // the backend's key or name
	info    snapshots.Info
}

func (s *snapshotter) bucket(tx *bolt.Tx, ns string) *bolt.Bucket {
	return bucketPath(nsBucket(tx, ns), bucketSnapshots, []byte(s.name))
}

func readSnapshot(b *bolt.Bucket, key string) snapshotRecord {
	kind, _ := strconv.Atoi(string(b.Get(keyKind)))
	return snapshotRecord{
		backend: string(b.Get(keyBackend)),
		info: snapshots.Info{
			Kind:    snapshots.Kind(kind),
			Name:    key,
			Parent:  string(b.Get(keyParent)),
			Labels:  readLabels(b),
			Created: getTime(b, keyCreatedAt),
			Updated: getTime(b, keyUpdatedAt),
		},
	}
}

func errSnapshotNotFound(key string) error {
	return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
}

// get returns the record of key in the namespace of ctx.
func (s *snapshotter) get(ctx context.Context, key string) (string, snapshotRecord, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return "", snapshotRecord{}, err
	}
	if key == "" {
		return "", snapshotRecord{}, fmt.Errorf("snapshot key must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	var rec snapshotRecord
	err = s.m.db.View(func(tx *bolt.Tx) error {
		b := bucketPath(s.bucket(tx, ns), []byte(key))
		if b == nil {
			return errSnapshotNotFound(key)
		}
		rec = readSnapshot(b, key)
		return nil
	})
	return ns, rec, err
}

// backendError rewrites the backend's keys in err back to the caller's.
func backendError(err error, backendKey, key string) error {
	if err == nil {
		return nil
	}
	return &renamedError{err: err, from: backendKey, to: key}
}

type renamedError struct {
	err      error
	from, to string
}

func (e *renamedError) Error() string { return strings.ReplaceAll(e.err.Error(), e.from, e.to) }
func (e *renamedError) Unwrap() error { return e.err }

func (s *snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshots.KindActive, key, parent, opts)
}

func (s *snapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.create(ctx, snapshots.KindView, key, parent, opts)
}

// create makes the backend snapshot first and records it second: a crash in
// between leaves a backend snapshot no record names, which the next
// collection removes.
func (s *snapshotter) create(ctx context.Context, kind snapshots.Kind, key, parent string, opts []snapshots.Opt) ([]mount.Mount, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("snapshot key must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	var info snapshots.Info
	for _, o := range opts {
		o(&info)
	}
	if err := labels.ValidateAll(info.Labels); err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, err)
	}
	// A read-only look first: the checks cost no commit, and the one
	// transaction after the backend's work records the snapshot.
	var backendParent string
	if err := s.m.db.View(func(tx *bolt.Tx) error {
		b := s.bucket(tx, ns)
		if bucketPath(b, []byte(key)) != nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		if parent != "" {
			pb := bucketPath(b, []byte(parent))
			if pb == nil {
				return fmt.Errorf("snapshot %q: parent %q: %w", key, parent, errdefs.ErrNotFound)
			}
			backendParent = string(pb.Get(keyBackend))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	backendKey := backendKeyFor(ns, key)
	s.m.inflight.add(backendKey)
	defer s.m.inflight.remove(backendKey)
	create := s.backend.Prepare
	if kind == snapshots.KindView {
		create = s.backend.View
	}
	mounts, err := create(ctx, backendKey, backendParent)
	if err != nil {
		return nil, backendError(backendError(err, backendParent, parent), backendKey, key)
	}
	lease, hasLease := leases.FromContext(ctx)
	err = s.m.db.Update(func(tx *bolt.Tx) error {
		nsb, err := s.m.createNSBucket(tx, ns)
		if err != nil {
			return err
		}
		b, err := createBucketPath(nsb, bucketSnapshots, []byte(s.name))
		if err != nil {
			return err
		}
		if b.Bucket([]byte(key)) != nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		if parent != "" {
			// Gone, or removed and made again, meanwhile.
			if pb := b.Bucket([]byte(parent)); pb == nil || string(pb.Get(keyBackend)) != backendParent {
				return fmt.Errorf("snapshot %q: parent %q: %w", key, parent, errdefs.ErrNotFound)
			}
		}
		if err := s.put(b, key, backendKey, parent, kind, info.Labels); err != nil {
			return err
		}
		if hasLease {
			return attachToLease(nsb, lease, leases.Resource{Type: s.leaseType(), ID: key})
		}
		return nil
	})
	if err != nil {
		_ = s.backend.Remove(ctx, backendKey)
		return nil, err
	}
	return mounts, nil
}

// backendKeyFor makes the backend key of the snapshot key (or name) of
// namespace ns: "<ns>/<random>/<key>". The random part makes it unique
// without a transaction to draw a sequence number, which would cost a commit
// (two fdatasyncs) for every snapshot made.
func backendKeyFor(ns, key string) string {
	return fmt.Sprintf("%s/%016x/%s", ns, rand.Uint64(), key)
}

// leaseType is the lease resource type of this snapshotter's snapshots.
func (s *snapshotter) leaseType() string { return leases.ResourceSnapshotPrefix + s.name }

func (s *snapshotter) put(b *bolt.Bucket, key, backendKey, parent string, kind snapshots.Kind, lbls map[string]string) error {
	sb, err := b.CreateBucket([]byte(key))
	if err != nil {
		return err
	}
	now := s.m.now()
	for k, v := range map[string]string{string(keyBackend): backendKey, string(keyParent): parent, string(keyKind): strconv.Itoa(int(kind))} {
		if err := sb.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	if err := putTime(sb, keyCreatedAt, now); err != nil {
		return err
	}
	if err := putTime(sb, keyUpdatedAt, now); err != nil {
		return err
	}
	return writeLabels(sb, lbls)
}

func (s *snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	_, rec, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	mounts, err := s.backend.Mounts(ctx, rec.backend)
	return mounts, backendError(err, rec.backend, key)
}

// UpperDir forwards to the backend when it can be written without a mount.
func (s *snapshotter) UpperDir(ctx context.Context, key string) (string, []string, error) {
	ud, ok := s.backend.(snapshots.UpperDirer)
	if !ok {
		return "", nil, fmt.Errorf("snapshotter %s: upper directories: %w", s.name, errdefs.ErrNotImplemented)
	}
	_, rec, err := s.get(ctx, key)
	if err != nil {
		return "", nil, err
	}
	dir, lowers, err := ud.UpperDir(ctx, rec.backend)
	return dir, lowers, backendError(err, rec.backend, key)
}

func (s *snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	ns, rec, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("commit snapshot %q: name must not be empty: %w", key, errdefs.ErrInvalidArgument)
	}
	var info snapshots.Info
	for _, o := range opts {
		o(&info)
	}
	if err := labels.ValidateAll(info.Labels); err != nil {
		return fmt.Errorf("commit snapshot %q: %w", key, err)
	}
	if err := s.m.db.View(func(tx *bolt.Tx) error {
		if bucketPath(s.bucket(tx, ns), []byte(name)) != nil {
			return fmt.Errorf("commit snapshot %q as %q: %w", key, name, errdefs.ErrAlreadyExists)
		}
		return nil
	}); err != nil {
		return err
	}
	backendName := backendKeyFor(ns, name)
	s.m.inflight.add(backendName)
	defer s.m.inflight.remove(backendName)
	if err := s.backend.Commit(ctx, backendName, rec.backend); err != nil {
		return backendError(backendError(err, rec.backend, key), backendName, name)
	}
	lease, hasLease := leases.FromContext(ctx)
	return s.m.db.Update(func(tx *bolt.Tx) error {
		nsb := nsBucket(tx, ns)
		b := s.bucket(tx, ns)
		if b.Bucket([]byte(name)) != nil {
			// Lost a race for the name: the backend copy is collected.
			return fmt.Errorf("commit snapshot %q as %q: %w", key, name, errdefs.ErrAlreadyExists)
		}
		if err := b.DeleteBucket([]byte(key)); err != nil {
			return err
		}
		if err := s.put(b, name, backendName, rec.info.Parent, snapshots.KindCommitted, info.Labels); err != nil {
			return err
		}
		if hasLease {
			return attachToLease(nsb, lease, leases.Resource{Type: s.leaseType(), ID: name})
		}
		return nil
	})
}

func (s *snapshotter) Remove(ctx context.Context, key string) error {
	ns, rec, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	err = s.m.db.Update(func(tx *bolt.Tx) error {
		b := s.bucket(tx, ns)
		if b.Bucket([]byte(key)) == nil {
			return errSnapshotNotFound(key)
		}
		if child := childOf(b, key); child != "" {
			return fmt.Errorf("remove snapshot %q: it is the parent of %q: %w", key, child, errdefs.ErrFailedPrecondition)
		}
		return b.DeleteBucket([]byte(key))
	})
	if err != nil {
		return err
	}
	// The record is gone; removing the files now frees the space at once.
	// If that fails, the next collection retries. An active snapshot has
	// no children, so nothing waits for its removal: it goes in the
	// background, off the caller's path (a container's removal).
	if rec.info.Kind == snapshots.KindActive {
		s.m.removeBackendLater(ctx, s.backend, rec.backend)
	} else {
		_ = s.backend.Remove(ctx, rec.backend)
	}
	s.m.gc.schedule()
	return nil
}

// childOf returns the key of a snapshot in b whose parent is key, or "".
func childOf(b *bolt.Bucket, key string) string {
	var child string
	_ = b.ForEachBucket(func(k []byte) error {
		if child == "" && string(b.Bucket(k).Get(keyParent)) == key {
			child = string(k)
		}
		return nil
	})
	return child
}

// removeBackendLater removes the backend snapshot key, whose record is gone,
// in the background; Close waits for it. Should it fail, the next
// collection retries, as it does after a crash.
func (m *DB) removeBackendLater(ctx context.Context, backend snapshots.Snapshotter, key string) {
	ctx = context.WithoutCancel(ctx)
	m.removing.Go(func() {
		if err := backend.Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).Warn("remove backend snapshot", "key", key, "error", err)
		}
	})
}

func (s *snapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	_, rec, err := s.get(ctx, key)
	return rec.info, err
}

func (s *snapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return snapshots.Info{}, err
	}
	if info.Name == "" {
		return snapshots.Info{}, fmt.Errorf("snapshot name must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	var out snapshots.Info
	err = s.m.db.Update(func(tx *bolt.Tx) error {
		b := bucketPath(s.bucket(tx, ns), []byte(info.Name))
		if b == nil {
			return errSnapshotNotFound(info.Name)
		}
		updated, err := labels.Update(readLabels(b), info.Labels, fieldpaths)
		if err != nil {
			return fmt.Errorf("update snapshot %q: %w", info.Name, err)
		}
		if err := writeLabels(b, updated); err != nil {
			return err
		}
		if err := putTime(b, keyUpdatedAt, s.m.now()); err != nil {
			return err
		}
		out = readSnapshot(b, info.Name).info
		return nil
	})
	return out, err
}

func (s *snapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	_, rec, err := s.get(ctx, key)
	if err != nil {
		return snapshots.Usage{}, err
	}
	u, err := s.backend.Usage(ctx, rec.backend)
	return u, backendError(err, rec.backend, key)
}

func snapshotFields(info snapshots.Info) filters.Adaptor {
	return filters.AdaptorFunc(func(fp []string) (string, bool) {
		if len(fp) == 1 {
			switch fp[0] {
			case "name":
				return info.Name, true
			case "parent":
				return info.Parent, info.Parent != ""
			case "kind":
				return info.Kind.String(), true
			}
		}
		return filters.LabelsField(info.Labels, fp)
	})
}

func (s *snapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filterStrs ...string) error {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return err
	}
	f, err := filters.Parse(filterStrs...)
	if err != nil {
		return err
	}
	var infos []snapshots.Info
	err = s.m.db.View(func(tx *bolt.Tx) error {
		if nsBucket(tx, ns) == nil {
			return errNamespaceNotFound(ns)
		}
		b := s.bucket(tx, ns)
		if b == nil {
			return nil
		}
		return b.ForEachBucket(func(k []byte) error {
			info := readSnapshot(b.Bucket(k), string(k)).info
			if f.Match(snapshotFields(info)) {
				infos = append(infos, info)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshotter) Cleanup(ctx context.Context) error { return s.backend.Cleanup(ctx) }

// Close does nothing: the daemon owns and closes the backends.
func (s *snapshotter) Close() error { return nil }
