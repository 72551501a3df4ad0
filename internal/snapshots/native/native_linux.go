package native

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/snapshots/storage"
)

// Snapshotter is the plain-copy snapshots.Snapshotter. It is safe for
// concurrent use.
type Snapshotter struct {
	store *storage.Store
}

var (
	_ snapshots.Snapshotter = (*Snapshotter)(nil)
	_ snapshots.UpperDirer  = (*Snapshotter)(nil)
)

// New opens the snapshotter kept in root, creating it if needed.
func New(root string) (*Snapshotter, error) {
	store, err := storage.Open(root)
	if err != nil {
		return nil, err
	}
	return &Snapshotter{store: store}, nil
}

// Prepare creates the active snapshot key with a copy of parent's tree. The
// copy runs without blocking other snapshots.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	snap, err := s.store.Create(ctx, snapshots.KindActive, key, parent, opts, func(dir string, p storage.Snapshot) error {
		if p.ID == 0 {
			return nil
		}
		return copyTree(ctx, s.store.FS(p.ID), filepath.Join(dir, "fs"))
	})
	if err != nil {
		return nil, err
	}
	return s.mounts(snap), nil
}

// View creates the read-only active snapshot key on parent, without a copy.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	snap, err := s.store.Create(ctx, snapshots.KindView, key, parent, opts, nil)
	if err != nil {
		return nil, err
	}
	return s.mounts(snap), nil
}

// Mounts returns the mounts of the active snapshot key.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	snap, err := s.store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("mounts of snapshot %q: %w", key, err)
	}
	if snap.Info.Kind == snapshots.KindCommitted {
		return nil, fmt.Errorf("mounts of snapshot %q: snapshot is committed, not active: %w", key, errdefs.ErrFailedPrecondition)
	}
	return s.mounts(snap), nil
}

func (s *Snapshotter) mounts(snap storage.Snapshot) []mount.Mount {
	dir, mode := s.store.FS(snap.ID), "rw"
	if snap.Info.Kind == snapshots.KindView {
		mode = "ro"
		if len(snap.ParentIDs) > 0 {
			dir = s.store.FS(snap.ParentIDs[0]) // committed, so never written
		}
	}
	return []mount.Mount{{Type: "bind", Source: dir, Options: []string{"bind", mode}}}
}

// UpperDir returns the directory holding the whole tree of the active
// snapshot key, and no lowers.
func (s *Snapshotter) UpperDir(ctx context.Context, key string) (string, []string, error) {
	snap, err := s.store.Get(ctx, key)
	if err != nil {
		return "", nil, fmt.Errorf("upper dir of snapshot %q: %w", key, err)
	}
	if snap.Info.Kind != snapshots.KindActive {
		return "", nil, fmt.Errorf("upper dir of snapshot %q: snapshot is %s, not active: %w", key, snap.Info.Kind, errdefs.ErrFailedPrecondition)
	}
	return s.store.FS(snap.ID), nil, nil
}

// Commit syncs the snapshot's filesystem and records it as committed.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	return s.store.Commit(ctx, name, key, opts...)
}

// Remove removes the snapshot's record, then its directory.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	return s.store.Remove(ctx, key)
}

// Stat returns the Info of the snapshot key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	return s.store.Stat(ctx, key)
}

// Update changes the labels of a snapshot.
func (s *Snapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	return s.store.Update(ctx, info, fieldpaths...)
}

// Usage returns the disk space of the snapshot's whole copy.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	return s.store.Usage(ctx, key)
}

// Walk calls fn for each snapshot matching filters.
func (s *Snapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	return s.store.Walk(ctx, fn, filters...)
}

// Cleanup deletes directories that belong to no snapshot.
func (s *Snapshotter) Cleanup(ctx context.Context) error {
	return s.store.Cleanup(ctx)
}

// Close closes the snapshotter's database.
func (s *Snapshotter) Close() error {
	return s.store.Close()
}
