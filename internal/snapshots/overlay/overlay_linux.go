package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/snapshots/storage"
)

// Config tunes a Snapshotter.
type Config struct {
	// MountOptions are added to every overlay mount the snapshotter returns,
	// e.g. "index=off" or "metacopy=on"; not to bind mounts. The snapshotter
	// sets lowerdir, upperdir and workdir itself.
	MountOptions []string
}

// Snapshotter is the overlayfs snapshots.Snapshotter. It is safe for
// concurrent use.
type Snapshotter struct {
	store *storage.Store
	cfg   Config
}

var (
	_ snapshots.Snapshotter = (*Snapshotter)(nil)
	_ snapshots.UpperDirer  = (*Snapshotter)(nil)
)

// New opens the snapshotter kept in root, creating it if needed. It does
// not check that overlayfs works there: the caller does, with Supported.
func New(root string, cfg Config) (*Snapshotter, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open overlay snapshotter %q: %w", root, err)
	}
	if strings.ContainsAny(abs, ",:") {
		return nil, fmt.Errorf("open overlay snapshotter %q: the path must not contain ',' or ':', which overlay mount options cannot carry: %w", abs, errdefs.ErrInvalidArgument)
	}
	for _, o := range cfg.MountOptions {
		for _, reserved := range []string{"lowerdir=", "upperdir=", "workdir="} {
			if strings.HasPrefix(o, reserved) {
				return nil, fmt.Errorf("open overlay snapshotter %q: mount option %q is set by the snapshotter: %w", abs, o, errdefs.ErrInvalidArgument)
			}
		}
	}
	store, err := storage.Open(abs)
	if err != nil {
		return nil, err
	}
	return &Snapshotter{store: store, cfg: cfg}, nil
}

// Prepare creates the active snapshot key on parent: an empty upper dir and
// a work dir.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	snap, err := s.store.Create(ctx, snapshots.KindActive, key, parent, opts, func(dir string, _ storage.Snapshot) error {
		return os.Mkdir(filepath.Join(dir, "work"), 0o700)
	})
	if err != nil {
		return nil, err
	}
	return s.mounts(snap), nil
}

// View creates the read-only active snapshot key on parent. Its own
// directory stays empty.
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
	view := snap.Info.Kind == snapshots.KindView
	switch {
	case len(snap.ParentIDs) == 0 && view:
		return []mount.Mount{bind(s.store.FS(snap.ID), "ro")}
	case len(snap.ParentIDs) == 0:
		return []mount.Mount{bind(s.store.FS(snap.ID), "rw")}
	case len(snap.ParentIDs) == 1 && view:
		return []mount.Mount{bind(s.store.FS(snap.ParentIDs[0]), "ro")}
	}
	options := append([]string(nil), s.cfg.MountOptions...)
	if view {
		options = append(options, "ro")
	} else {
		options = append(options,
			"workdir="+filepath.Join(s.store.Dir(snap.ID), "work"),
			"upperdir="+s.store.FS(snap.ID))
	}
	options = append(options, "lowerdir="+strings.Join(s.lowers(snap), ":"))
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: options}}
}

func bind(dir, mode string) mount.Mount {
	return mount.Mount{Type: "bind", Source: dir, Options: []string{"bind", mode}}
}

// lowers returns the fs dirs of snap's parent chain, nearest first.
func (s *Snapshotter) lowers(snap storage.Snapshot) []string {
	lowers := make([]string, len(snap.ParentIDs))
	for i, id := range snap.ParentIDs {
		lowers[i] = s.store.FS(id)
	}
	return lowers
}

// UpperDir returns the upper dir of the active snapshot key and its parent
// chain's layers, nearest first.
func (s *Snapshotter) UpperDir(ctx context.Context, key string) (string, []string, error) {
	snap, err := s.store.Get(ctx, key)
	if err != nil {
		return "", nil, fmt.Errorf("upper dir of snapshot %q: %w", key, err)
	}
	if snap.Info.Kind != snapshots.KindActive {
		return "", nil, fmt.Errorf("upper dir of snapshot %q: snapshot is %s, not active: %w", key, snap.Info.Kind, errdefs.ErrFailedPrecondition)
	}
	return s.store.FS(snap.ID), s.lowers(snap), nil
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

// Usage returns the disk space of the snapshot's own layer.
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
