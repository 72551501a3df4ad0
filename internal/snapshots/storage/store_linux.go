package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/snapshots"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Bucket and key names of the schema in doc.go.
var (
	bucketV1        = []byte("v1")
	bucketSnapshots = []byte("snapshots")
	bucketParents   = []byte("parents")
	bucketLabels    = []byte("labels")
	keyID           = []byte("id")
	keyKind         = []byte("kind")
	keyParent       = []byte("parent")
	keyCreatedAt    = []byte("createdat")
	keyUpdatedAt    = []byte("updatedat")
	keySize         = []byte("size")
	keyInodes       = []byte("inodes")
)

// Store keeps the records and directories of one snapshotter root. It is
// safe for concurrent use.
type Store struct {
	dir string // ROOT/snapshots
	db  *bolt.DB

	// dirs is held shared by Create and Remove while they own a directory
	// no record names, and exclusively by Cleanup (see doc.go).
	dirs sync.RWMutex
	// removing counts the rm-<id> directories Remove still deletes in the
	// background; Close waits for them.
	removing sync.WaitGroup
}

// Snapshot is a record as the snapshotters need it.
type Snapshot struct {
	ID        uint64
	Info      snapshots.Info
	ParentIDs []uint64        // IDs of the parent chain, nearest first
	Usage     snapshots.Usage // measured by Commit; zero unless committed
}

// Open opens the store kept in root, creating root, its database and its
// snapshots directory if needed. It fails within a second if another
// process holds the database. Paths it returns are absolute.
func Open(root string) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	dir := filepath.Join(root, "snapshots")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open snapshot store %q: %w", root, err)
	}
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open snapshot store %q: %w", root, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		v1, err := tx.CreateBucketIfNotExists(bucketV1)
		if err != nil {
			return err
		}
		if _, err := v1.CreateBucketIfNotExists(bucketSnapshots); err != nil {
			return err
		}
		_, err = v1.CreateBucketIfNotExists(bucketParents)
		return err
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("initialise snapshot store %q: %w", root, err), db.Close())
	}
	return &Store{dir: dir, db: db}, nil
}

// Close closes the database, waiting for transactions in progress.
func (s *Store) Close() error {
	s.removing.Wait()
	return s.db.Close()
}

// Dir is the directory of the snapshot with ID id.
func (s *Store) Dir(id uint64) string {
	return filepath.Join(s.dir, strconv.FormatUint(id, 10))
}

// FS is the directory holding the files of the snapshot with ID id.
func (s *Store) FS(id uint64) string {
	return filepath.Join(s.Dir(id), "fs")
}

// Create makes the active snapshot key (kind KindActive or KindView) on
// parent. It creates a new directory with an empty fs/ (mode 0755) and calls
// fill with it and the parent's record (zero without a parent); fill adds
// what the snapshotter needs. fill runs without any lock that blocks other
// snapshots; Create checks key and parent again before it records the
// snapshot and renames the directory into place.
func (s *Store) Create(ctx context.Context, kind snapshots.Kind, key, parent string, opts []snapshots.Opt, fill func(dir string, parent Snapshot) error) (_ Snapshot, err error) {
	op := "prepare"
	if kind == snapshots.KindView {
		op = "view"
	}
	defer wrap(&err, "%s snapshot %q", op, key)
	if err := checkKey("key", key); err != nil {
		return Snapshot{}, err
	}
	info := snapshots.Info{Kind: kind, Name: key, Parent: parent}
	for _, opt := range opts {
		opt(&info)
	}
	if err := labels.ValidateAll(info.Labels); err != nil {
		return Snapshot{}, err
	}
	var p Snapshot
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		p, err = checkCreate(tx, key, parent)
		return err
	}); err != nil {
		return Snapshot{}, err
	}

	s.dirs.RLock()
	defer s.dirs.RUnlock()
	tmp, err := os.MkdirTemp(s.dir, "new-")
	if err != nil {
		return Snapshot{}, err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil { // a no-op once renamed
			err = errors.Join(err, rerr)
		}
	}()
	fsDir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return Snapshot{}, err
	}
	if err := os.Chmod(fsDir, 0o755); err != nil { // undo the umask
		return Snapshot{}, err
	}
	if fill != nil {
		if err := fill(tmp, p); err != nil {
			return Snapshot{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}

	now := time.Now().UTC()
	info.Created, info.Updated = now, now
	snap := Snapshot{Info: info}
	renamed := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		cur, err := checkCreate(tx, key, parent)
		if err != nil {
			return err
		}
		if cur.ID != p.ID {
			return fmt.Errorf("parent %q was replaced meanwhile: %w", parent, errdefs.ErrConflict)
		}
		bkt := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
		if snap.ID, err = bkt.NextSequence(); err != nil {
			return err
		}
		if err := putSnapshot(bkt, snap, snapshots.Usage{}); err != nil {
			return err
		}
		if parent != "" {
			snap.ParentIDs = append([]uint64{p.ID}, p.ParentIDs...)
			if err := tx.Bucket(bucketV1).Bucket(bucketParents).Put(parentKey(p.ID, snap.ID), nil); err != nil {
				return err
			}
		}
		if err := renameNew(tmp, s.Dir(snap.ID)); err != nil {
			return err
		}
		renamed = true
		return nil
	})
	if err != nil {
		if renamed {
			err = errors.Join(err, os.RemoveAll(s.Dir(snap.ID)))
		}
		return Snapshot{}, err
	}
	return snap, nil
}

// checkCreate checks that key is free and parent is a committed snapshot,
// and returns the parent's record.
func checkCreate(tx *bolt.Tx, key, parent string) (Snapshot, error) {
	bkt := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
	if bkt.Bucket([]byte(key)) != nil {
		return Snapshot{}, errdefs.ErrAlreadyExists
	}
	if parent == "" {
		return Snapshot{}, nil
	}
	p, err := getSnapshot(bkt, parent)
	if err != nil {
		return Snapshot{}, fmt.Errorf("parent %q: %w", parent, err)
	}
	if p.Info.Kind != snapshots.KindCommitted {
		return Snapshot{}, fmt.Errorf("parent %q is %s, not committed: %w", parent, p.Info.Kind, errdefs.ErrFailedPrecondition)
	}
	return p, nil
}

// renameNew renames the filled directory tmp to dir. A directory already at
// dir was left by a crash after a rename whose transaction never committed:
// its ID has no record, so it is deleted.
func renameNew(tmp, dir string) error {
	err := os.Rename(tmp, dir)
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		err = os.Rename(tmp, dir)
	}
	return err
}

// Get returns the record of the snapshot key (or name). Errors carry no
// operation or key; the caller adds them.
func (s *Store) Get(ctx context.Context, key string) (Snapshot, error) {
	if err := checkKey("key", key); err != nil {
		return Snapshot{}, err
	}
	var snap Snapshot
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		snap, err = getSnapshot(tx.Bucket(bucketV1).Bucket(bucketSnapshots), key)
		return err
	})
	return snap, err
}

// Stat returns the Info of the snapshot key (or name).
func (s *Store) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	snap, err := s.Get(ctx, key)
	if err != nil {
		return snapshots.Info{}, fmt.Errorf("stat snapshot %q: %w", key, err)
	}
	return snap.Info, nil
}

// Commit turns the active snapshot key into the committed snapshot name: it
// syncs the filesystem holding the snapshot, measures its usage, then
// records it under name, with labels from opts only.
func (s *Store) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) (err error) {
	defer wrap(&err, "commit snapshot %q as %q", key, name)
	if err := checkKey("key", key); err != nil {
		return err
	}
	if err := checkKey("name", name); err != nil {
		return err
	}
	var info snapshots.Info
	for _, opt := range opts {
		opt(&info)
	}
	if err := labels.ValidateAll(info.Labels); err != nil {
		return err
	}
	var snap Snapshot
	if err := s.db.View(func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
		var err error
		if snap, err = getSnapshot(bkt, key); err != nil {
			return err
		}
		if bkt.Bucket([]byte(name)) != nil {
			return fmt.Errorf("name is taken: %w", errdefs.ErrAlreadyExists)
		}
		return nil
	}); err != nil {
		return err
	}
	if snap.Info.Kind != snapshots.KindActive {
		return fmt.Errorf("snapshot is %s, only active ones can be committed: %w", snap.Info.Kind, errdefs.ErrFailedPrecondition)
	}
	if err := syncfs(s.Dir(snap.ID)); err != nil {
		return err
	}
	usage, err := diskUsage(ctx, s.FS(snap.ID))
	if err != nil {
		return err
	}

	now := time.Now().UTC()
	committed := Snapshot{
		ID:   snap.ID,
		Info: snapshots.Info{Kind: snapshots.KindCommitted, Name: name, Parent: snap.Info.Parent, Labels: info.Labels, Created: now, Updated: now},
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
		if bkt.Bucket([]byte(name)) != nil {
			return fmt.Errorf("name is taken: %w", errdefs.ErrAlreadyExists)
		}
		sb := bkt.Bucket([]byte(key))
		if sb == nil || readID(sb) != snap.ID {
			return fmt.Errorf("snapshot was removed meanwhile: %w", errdefs.ErrNotFound)
		}
		if err := bkt.DeleteBucket([]byte(key)); err != nil {
			return err
		}
		return putSnapshot(bkt, committed, usage)
	})
}

// Remove deletes the record of the snapshot key (or name), then its
// directory. A committed snapshot with children is refused.
func (s *Store) Remove(ctx context.Context, key string) (err error) {
	defer wrap(&err, "remove snapshot %q", key)
	if err := checkKey("key", key); err != nil {
		return err
	}
	s.dirs.RLock()
	defer s.dirs.RUnlock()
	var id uint64
	if err := s.db.Update(func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
		parents := tx.Bucket(bucketV1).Bucket(bucketParents)
		sb := bkt.Bucket([]byte(key))
		if sb == nil {
			return errdefs.ErrNotFound
		}
		id = readID(sb)
		if k, _ := parents.Cursor().Seek(parentKey(id, 0)); k != nil && binary.BigEndian.Uint64(k) == id {
			return fmt.Errorf("snapshot is the parent of other snapshots: %w", errdefs.ErrFailedPrecondition)
		}
		if parent := sb.Get(keyParent); parent != nil {
			pb := bkt.Bucket(parent)
			if pb == nil {
				return fmt.Errorf("parent %q has no record: database is corrupt", parent)
			}
			if err := parents.Delete(parentKey(readID(pb), id)); err != nil {
				return err
			}
		}
		return bkt.DeleteBucket([]byte(key))
	}); err != nil {
		return err
	}
	trash := filepath.Join(s.dir, "rm-"+strconv.FormatUint(id, 10))
	if err := os.Rename(s.Dir(id), trash); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("record removed, directory left for Cleanup: %w", err)
	}
	// The snapshot is gone once its record is; deleting its files (a
	// millisecond for an empty one, much more for a big one) is not waited
	// for. What a crash interrupts, Cleanup finishes.
	s.removing.Add(1)
	go func() {
		defer s.removing.Done()
		if err := os.RemoveAll(trash); err != nil {
			log.G(ctx).Warn("delete removed snapshot's files; left for Cleanup", "dir", trash, "error", err)
		}
	}()
	return nil
}

// Update replaces the labels of the snapshot info.Name named by fieldpaths
// (see labels.Update) and returns the new Info.
func (s *Store) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (_ snapshots.Info, err error) {
	defer wrap(&err, "update snapshot %q", info.Name)
	if err := checkKey("name", info.Name); err != nil {
		return snapshots.Info{}, err
	}
	var updated snapshots.Info
	err = s.db.Update(func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
		sb := bkt.Bucket([]byte(info.Name))
		if sb == nil {
			return errdefs.ErrNotFound
		}
		newLabels, err := labels.Update(readLabels(sb), info.Labels, fieldpaths)
		if err != nil {
			return err
		}
		if err := putLabels(sb, newLabels); err != nil {
			return err
		}
		if err := putTime(sb, keyUpdatedAt, time.Now().UTC()); err != nil {
			return err
		}
		snap, err := getSnapshot(bkt, info.Name)
		updated = snap.Info
		return err
	})
	return updated, err
}

// Usage returns the usage Commit measured for a committed snapshot, and
// measures an active one now.
func (s *Store) Usage(ctx context.Context, key string) (_ snapshots.Usage, err error) {
	defer wrap(&err, "usage of snapshot %q", key)
	snap, err := s.Get(ctx, key)
	if err != nil {
		return snapshots.Usage{}, err
	}
	if snap.Info.Kind == snapshots.KindCommitted {
		return snap.Usage, nil
	}
	return diskUsage(ctx, s.FS(snap.ID))
}

// Walk calls fn for each snapshot matching filterArgs (fields: name, parent,
// kind, labels.KEY). It reads all matching records first, so fn may call
// the store.
func (s *Store) Walk(ctx context.Context, fn snapshots.WalkFunc, filterArgs ...string) error {
	filter, err := filters.Parse(filterArgs...)
	if err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	var infos []snapshots.Info
	if err := s.db.View(func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
		return bkt.ForEachBucket(func(k []byte) error {
			info := readInfo(bkt.Bucket(k), string(k))
			if filter.Match(adaptor(info)) {
				infos = append(infos, info)
			}
			return nil
		})
	}); err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func adaptor(info snapshots.Info) filters.Adaptor {
	return filters.AdaptorFunc(func(fieldpath []string) (string, bool) {
		switch {
		case len(fieldpath) == 0:
			return "", false
		case fieldpath[0] == "labels":
			return filters.LabelsField(info.Labels, fieldpath)
		case len(fieldpath) > 1:
			return "", false
		}
		switch fieldpath[0] {
		case "name":
			return info.Name, true
		case "parent":
			return info.Parent, info.Parent != ""
		case "kind":
			return info.Kind.String(), true
		}
		return "", false
	})
}

// Cleanup deletes every entry of the snapshots directory that no record
// names. It holds Create and Remove off while it runs.
func (s *Store) Cleanup(ctx context.Context) error {
	s.dirs.Lock()
	defer s.dirs.Unlock()
	live := map[string]bool{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bucketV1).Bucket(bucketSnapshots)
		return bkt.ForEachBucket(func(k []byte) error {
			live[strconv.FormatUint(readID(bkt.Bucket(k)), 10)] = true
			return nil
		})
	}); err != nil {
		return fmt.Errorf("clean up snapshots: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("clean up snapshots: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if live[e.Name()] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up snapshots: %w", err)
	}
	return nil
}

// checkKey rejects keys and names bbolt cannot store.
func checkKey(what, key string) error {
	if key == "" {
		return fmt.Errorf("%s must not be empty: %w", what, errdefs.ErrInvalidArgument)
	}
	if len(key) > bolt.MaxKeySize {
		return fmt.Errorf("%s is %d bytes, more than %d: %w", what, len(key), bolt.MaxKeySize, errdefs.ErrInvalidArgument)
	}
	return nil
}

// wrap prefixes a non-nil *err with the operation and object.
func wrap(err *error, format string, args ...any) {
	if *err != nil {
		*err = fmt.Errorf(format+": %w", append(args, *err)...)
	}
}

// getSnapshot reads the record key with its parent chain. A missing key is
// ErrNotFound.
func getSnapshot(bkt *bolt.Bucket, key string) (Snapshot, error) {
	sb := bkt.Bucket([]byte(key))
	if sb == nil {
		return Snapshot{}, errdefs.ErrNotFound
	}
	snap := Snapshot{
		ID:    readID(sb),
		Info:  readInfo(sb, key),
		Usage: snapshots.Usage{Size: readVarint(sb, keySize), Inodes: readVarint(sb, keyInodes)},
	}
	for p := snap.Info.Parent; p != ""; {
		pb := bkt.Bucket([]byte(p))
		if pb == nil {
			return Snapshot{}, fmt.Errorf("parent %q has no record: database is corrupt", p)
		}
		snap.ParentIDs = append(snap.ParentIDs, readID(pb))
		p = string(pb.Get(keyParent))
	}
	return snap, nil
}

func readInfo(sb *bolt.Bucket, key string) snapshots.Info {
	info := snapshots.Info{Name: key, Parent: string(sb.Get(keyParent)), Labels: readLabels(sb)}
	if k := sb.Get(keyKind); len(k) == 1 {
		info.Kind = snapshots.Kind(k[0])
	}
	// Times were written by putTime; a decoding error leaves the zero time.
	_ = info.Created.UnmarshalBinary(sb.Get(keyCreatedAt))
	_ = info.Updated.UnmarshalBinary(sb.Get(keyUpdatedAt))
	return info
}

func readID(sb *bolt.Bucket) uint64 {
	id, _ := binary.Uvarint(sb.Get(keyID))
	return id
}

func readVarint(sb *bolt.Bucket, key []byte) int64 {
	v, _ := binary.Varint(sb.Get(key))
	return v
}

func readLabels(sb *bolt.Bucket) map[string]string {
	lb := sb.Bucket(bucketLabels)
	if lb == nil {
		return nil
	}
	m := map[string]string{}
	_ = lb.ForEach(func(k, v []byte) error { // the callback never fails
		m[string(k)] = string(v)
		return nil
	})
	if len(m) == 0 {
		return nil
	}
	return m
}

// putSnapshot writes a new record for snap under snap.Info.Name.
func putSnapshot(bkt *bolt.Bucket, snap Snapshot, usage snapshots.Usage) error {
	sb, err := bkt.CreateBucket([]byte(snap.Info.Name))
	if err != nil {
		return err
	}
	info := snap.Info
	puts := []struct{ k, v []byte }{
		{keyID, binary.AppendUvarint(nil, snap.ID)},
		{keyKind, []byte{byte(info.Kind)}},
	}
	if info.Parent != "" {
		puts = append(puts, struct{ k, v []byte }{keyParent, []byte(info.Parent)})
	}
	if info.Kind == snapshots.KindCommitted {
		puts = append(puts,
			struct{ k, v []byte }{keySize, binary.AppendVarint(nil, usage.Size)},
			struct{ k, v []byte }{keyInodes, binary.AppendVarint(nil, usage.Inodes)})
	}
	for _, p := range puts {
		if err := sb.Put(p.k, p.v); err != nil {
			return err
		}
	}
	if err := putTime(sb, keyCreatedAt, info.Created); err != nil {
		return err
	}
	if err := putTime(sb, keyUpdatedAt, info.Updated); err != nil {
		return err
	}
	return putLabels(sb, info.Labels)
}

func putTime(sb *bolt.Bucket, key []byte, t time.Time) error {
	b, err := t.MarshalBinary()
	if err != nil {
		return err
	}
	return sb.Put(key, b)
}

// putLabels replaces the labels of a record.
func putLabels(sb *bolt.Bucket, m map[string]string) error {
	if sb.Bucket(bucketLabels) != nil {
		if err := sb.DeleteBucket(bucketLabels); err != nil {
			return err
		}
	}
	if len(m) == 0 {
		return nil
	}
	lb, err := sb.CreateBucket(bucketLabels)
	if err != nil {
		return err
	}
	for k, v := range m {
		if err := lb.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

func parentKey(parent, child uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, parent), child)
}

// syncfs flushes the filesystem holding dir to disk. It is much cheaper
// than fsyncing every file of a tree (see BenchmarkSync).
func syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %q: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync %q: %w", dir, err)
	}
	return nil
}

// diskUsage counts the allocated bytes and the inodes of the tree at dir,
// each hard-linked inode once.
func diskUsage(ctx context.Context, dir string) (snapshots.Usage, error) {
	var u snapshots.Usage
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: path, Err: err}
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			u.Inodes++
			u.Size += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		return snapshots.Usage{}, fmt.Errorf("measure disk usage: %w", err)
	}
	return u, nil
}
