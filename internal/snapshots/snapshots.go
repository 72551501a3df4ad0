// Package snapshots defines the Snapshotter: the store of layered
// filesystem trees that images are unpacked into and containers run on.
//
// Words used throughout berth:
//   - key: the identifier of an active snapshot (Kind Active or View), chosen
//     by the caller of Prepare or View.
//   - name: the identifier of a committed snapshot, chosen by the caller of
//     Commit; for image layers it is the layer's chainID.
//   - parent: the name of the committed snapshot a snapshot starts from; ""
//     is the empty tree.
//
// Keys and names share one key space per Snapshotter: an active snapshot
// cannot have the key of a committed one's name, or of another active one.
//
// This package holds the interface and plain types only. Packages overlay
// and native implement it, package snapshotstest checks implementations, and
// package metadata wraps one with namespaces, labels and GC references. It
// must not mount anything: it returns mount.Mount values for callers to
// perform.
package snapshots

import (
	"context"
	"maps"
	"time"

	"github.com/berth-dev/berth/internal/mount"
)

// Kind is the kind of a snapshot.
type Kind uint8

// The kinds of snapshot. KindUnknown is the zero value and never stored.
const (
	KindUnknown   Kind = iota
	KindView           // read-only active snapshot, made by View
	KindActive         // writable active snapshot, made by Prepare
	KindCommitted      // immutable snapshot, made by Commit
)

// String returns "view", "active" or "committed", the values of the "kind"
// filter field.
func (k Kind) String() string {
	switch k {
	case KindView:
		return "view"
	case KindActive:
		return "active"
	case KindCommitted:
		return "committed"
	default:
		return "unknown"
	}
}

// Info describes a snapshot.
type Info struct {
	Kind    Kind
	Name    string // the key of an active snapshot, the name of a committed one
	Parent  string // name of the parent, "" for none
	Labels  map[string]string
	Created time.Time
	Updated time.Time // last change of the labels; Created until then
}

// Usage is the disk space a snapshot takes on its own, without its parents.
type Usage struct {
	Size   int64 // bytes of allocated blocks
	Inodes int64
}

// Opt sets properties of a snapshot Prepare, View or Commit creates.
type Opt func(*Info)

// WithLabels adds labels to the snapshot being created.
func WithLabels(labels map[string]string) Opt {
	return func(info *Info) {
		if info.Labels == nil {
			info.Labels = map[string]string{}
		}
		maps.Copy(info.Labels, labels)
	}
}

// WalkFunc is called for each snapshot by Snapshotter.Walk.
type WalkFunc func(Info) error

// Snapshotter stores trees of filesystem snapshots. Each snapshot is a
// filesystem tree starting from its parent's; only the difference is stored
// when the implementation can layer (overlay), the whole tree otherwise
// (native).
//
// # Lifecycle
//
// Active snapshots are made by Prepare (writable, KindActive) or View
// (read-only, KindView) and are identified by a key. Committed snapshots are
// made only by Commit, from an active KindActive snapshot, and are
// identified by a name. Only committed snapshots can be parents. Every kind
// can be removed, a committed one only when no snapshot has it as its
// parent. Nothing changes kind in place: Commit creates the committed
// snapshot and removes the active one in one step.
//
// Prepare and View return mounts; the caller performs them (mount.All) where
// it needs the files, and undoes them (mount.UnmountAll) before calling
// Commit or Remove. The snapshotter never mounts anything and does not track
// whether its snapshots are mounted: changes made through a mount after
// Commit returned, or after Remove, are undefined.
//
// # Unpacking an image layer
//
//	mounts, err := sn.Prepare(ctx, "extract-"+chainID, parentChainID)
//	err = mount.WithTempMount(ctx, mounts, func(root string) error {
//		return applyLayer(root, layerTar) // writes overlay whiteouts for deletions
//	})
//	err = sn.Commit(ctx, chainID, "extract-"+chainID)
//
// Commit makes the snapshot's files durable before the committed snapshot
// becomes visible, so a crash leaves either the active snapshot or the
// committed one. The pull pipeline can skip the mount altogether when the
// snapshotter implements UpperDirer.
//
// # Running a container
//
//	mounts, err := sn.Prepare(ctx, containerID, imageChainID)
//	// the runtime mounts them as the container's root filesystem
//	err = sn.Remove(ctx, containerID) // after the container is gone
//
// # Errors
//
// All methods return errors wrapping one of these kinds:
//   - errdefs.ErrInvalidArgument: an empty key or name, invalid labels, a bad
//     filter, an Update fieldpath other than "labels" and "labels.KEY".
//   - errdefs.ErrNotFound: the key, name or parent does not exist.
//   - errdefs.ErrAlreadyExists: Prepare, View or Commit given a key or name
//     that is taken (by a snapshot of any kind).
//   - errdefs.ErrFailedPrecondition: a parent that is not committed;
//     Commit of a view or of a committed snapshot; Mounts of a committed
//     snapshot; Remove of a committed snapshot that is a parent.
//
// # Concurrency
//
// A Snapshotter is safe for concurrent use. Each method is atomic: of two
// concurrent Prepares with one key, exactly one succeeds. A Snapshotter owns
// its root directory; no two may be open on the same root at once.
//
// # Extensions
//
// A Snapshotter may implement UpperDirer, which gives the directory where an
// active snapshot's files live so that a layer can be written into it
// without a mount. Callers check with a type assertion; a decorator whose
// backend lacks it returns errdefs.ErrNotImplemented from UpperDir.
type Snapshotter interface {
	// Prepare creates the active snapshot key on parent ("" for an empty
	// tree) and returns the mounts that show it writable. The mounted tree
	// starts with the parent's files.
	Prepare(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)

	// View is Prepare for a read-only active snapshot (KindView): writes
	// through its mounts fail with EROFS, and it cannot be committed. It
	// costs no copy of the parent in any implementation.
	View(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)

	// Mounts returns the mounts of the active snapshot key again, the same
	// as Prepare or View returned.
	Mounts(ctx context.Context, key string) ([]mount.Mount, error)

	// Commit turns the active snapshot key (KindActive) into the committed
	// snapshot name, with the same parent and files; key no longer exists
	// afterwards. Labels come from opts only: those of key are not carried
	// over. Its files are flushed to disk first. Usage of the committed
	// snapshot is measured here, once.
	Commit(ctx context.Context, name, key string, opts ...Opt) error

	// Remove removes the snapshot key (or name) and its files. A committed
	// snapshot that is the parent of another is refused with
	// ErrFailedPrecondition. Once Remove returns the key can be reused; the
	// snapshot's directory is deleted before Remove returns, or, if that
	// fails, by Cleanup later.
	Remove(ctx context.Context, key string) error

	// Stat returns the Info of the snapshot key (or name).
	Stat(ctx context.Context, key string) (Info, error)

	// Update replaces the labels named in fieldpaths ("labels" or none for
	// all, "labels.KEY" for one) with those in info, for the snapshot
	// info.Name, and returns the new Info. Nothing else can change.
	Update(ctx context.Context, info Info, fieldpaths ...string) (Info, error)

	// Usage returns the disk space of the snapshot key (or name) without
	// its parents. For an active snapshot it walks the files, so its cost
	// grows with them; for a committed one it returns what Commit measured.
	Usage(ctx context.Context, key string) (Usage, error)

	// Walk calls fn with the Info of each snapshot matching any of the
	// filters (syntax: package filters; fields: name, parent, kind and
	// labels.KEY). fn may call the Snapshotter; an error from fn stops the
	// walk and is returned.
	Walk(ctx context.Context, fn WalkFunc, filters ...string) error

	// Cleanup deletes directories that belong to no snapshot: those left by
	// a crash, or by a Remove that could not delete them. Garbage collection
	// calls it after removing snapshots. It blocks Prepare, View and Remove
	// while it runs.
	Cleanup(ctx context.Context) error

	// Close releases the Snapshotter's resources. Its snapshots persist and
	// a later Snapshotter on the same root sees them.
	Close() error
}

// UpperDirer is implemented by Snapshotters whose active snapshots can be
// written without a mount. The pull pipeline uses it to unpack a layer into
// a snapshot it has just prepared.
type UpperDirer interface {
	// UpperDir returns the directory holding the files of the active,
	// writable snapshot key, and lowers: the directories of the read-only
	// trees beneath it, nearest first, that the snapshot's mounts stack it
	// on. The tree the mounts show is dir over lowers, as overlayfs merges
	// them.
	//
	// A writer that deletes a path present in any of lowers must leave an
	// overlayfs whiteout in dir (a 0/0 character device), and one that
	// replaces a directory present in lowers must mark it opaque (xattr
	// trusted.overlay.opaque="y"). With no lowers, dir holds the whole tree
	// and deleting is just removing. Overlay returns the upper dir and the
	// parent chain's layers; native returns the snapshot's full copy of
	// its parent and no lowers.
	//
	// dir must not be written while the snapshot is mounted, nor after
	// Commit. UpperDir fails with ErrFailedPrecondition for a view or a
	// committed snapshot.
	UpperDir(ctx context.Context, key string) (dir string, lowers []string, err error)
}
