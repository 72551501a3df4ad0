package client

import (
	"context"
	"errors"
	"io"
	"time"

	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// SnapshotKind is the kind of a snapshot.
type SnapshotKind string

// The kinds of snapshot, also the values of the "kind" filter field.
const (
	// SnapshotCommitted is an immutable snapshot, identified by its name
	// (for image layers, the chainID); only committed snapshots are parents.
	SnapshotCommitted SnapshotKind = "committed"
	// SnapshotActive is a writable snapshot, identified by its key.
	SnapshotActive SnapshotKind = "active"
	// SnapshotView is a read-only active snapshot, identified by its key.
	SnapshotView SnapshotKind = "view"
	// SnapshotUnknown is a kind this client does not know.
	SnapshotUnknown SnapshotKind = "unknown"
)

// Snapshot describes a snapshot.
type Snapshot struct {
	// Name is the key of an active snapshot, the name of a committed one.
	Name string `json:"name"`
	// Parent is the name of the committed snapshot this one starts from.
	Parent    string            `json:"parent,omitempty"`
	Kind      SnapshotKind      `json:"kind"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// SnapshotUsage is the disk space of one snapshot without its parents.
type SnapshotUsage struct {
	Size   int64 `json:"size"` // bytes of allocated blocks
	Inodes int64 `json:"inodes"`
}

// Mount describes one mount(2) call; the caller chooses the target.
type Mount struct {
	Type    string   `json:"type"`    // "overlay", or "bind" for bind mounts
	Source  string   `json:"source"`  // a device, "overlay", or the directory bound
	Options []string `json:"options"` // fstab-style: "ro", "bind", "lowerdir=..."
}

func snapshotFromProto(i *snapshotsapi.Info) Snapshot {
	kind := SnapshotUnknown
	switch i.GetKind() {
	case snapshotsapi.Kind_COMMITTED:
		kind = SnapshotCommitted
	case snapshotsapi.Kind_ACTIVE:
		kind = SnapshotActive
	case snapshotsapi.Kind_VIEW:
		kind = SnapshotView
	}
	return Snapshot{Name: i.GetName(), Parent: i.GetParent(), Kind: kind, Labels: i.GetLabels(),
		CreatedAt: timeOf(i.GetCreatedAt()), UpdatedAt: timeOf(i.GetUpdatedAt())}
}

// Snapshots is the snapshots of one snapshotter in the client's namespace.
// Every method takes a key (active snapshot) or name (committed snapshot).
type Snapshots struct {
	c           *Client
	snapshotter string
}

// Snapshots returns the snapshots of the snapshotter called name; "" is the
// daemon's (ServerInfo.Features has "snapshotter=NAME"). An unknown name is
// reported, as ErrNotFound, by the first call.
func (c *Client) Snapshots(name string) *Snapshots {
	return &Snapshots{c: c, snapshotter: name}
}

// List returns the snapshots matching any of filters (fields: name,
// parent, kind, labels.KEY), sorted by name.
func (s *Snapshots) List(ctx context.Context, filters ...string) ([]Snapshot, error) {
	stream, err := s.c.snapshots.List(ctx, &snapshotsapi.ListSnapshotsRequest{Snapshotter: s.snapshotter, Filters: filters})
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		for _, i := range r.GetInfo() {
			out = append(out, snapshotFromProto(i))
		}
	}
}

// Stat returns one snapshot.
func (s *Snapshots) Stat(ctx context.Context, key string) (Snapshot, error) {
	r, err := s.c.snapshots.Stat(ctx, &snapshotsapi.StatSnapshotRequest{Snapshotter: s.snapshotter, Key: key})
	if err != nil {
		return Snapshot{}, err
	}
	return snapshotFromProto(r.GetInfo()), nil
}

// Usage returns the disk space of one snapshot, without its parents.
func (s *Snapshots) Usage(ctx context.Context, key string) (SnapshotUsage, error) {
	r, err := s.c.snapshots.Usage(ctx, &snapshotsapi.UsageRequest{Snapshotter: s.snapshotter, Key: key})
	if err != nil {
		return SnapshotUsage{}, err
	}
	return SnapshotUsage{Size: r.GetSize(), Inodes: r.GetInodes()}, nil
}

// Remove removes a snapshot and its files. A committed snapshot that is the
// parent of another is refused with ErrFailedPrecondition.
func (s *Snapshots) Remove(ctx context.Context, key string) error {
	_, err := s.c.snapshots.Remove(ctx, &snapshotsapi.RemoveSnapshotRequest{Snapshotter: s.snapshotter, Key: key})
	return err
}

// Mounts returns the mounts that show an active snapshot; a committed
// snapshot has none (ErrFailedPrecondition).
func (s *Snapshots) Mounts(ctx context.Context, key string) ([]Mount, error) {
	r, err := s.c.snapshots.Mounts(ctx, &snapshotsapi.MountsRequest{Snapshotter: s.snapshotter, Key: key})
	if err != nil {
		return nil, err
	}
	return mountsFromProto(r.GetMounts()), nil
}

// View creates the read-only active snapshot key on the committed snapshot
// parent and returns its mounts. labels are set on it (LabelGCRoot keeps it
// until removed).
func (s *Snapshots) View(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	r, err := s.c.snapshots.View(ctx, &snapshotsapi.ViewSnapshotRequest{Snapshotter: s.snapshotter, Key: key, Parent: parent, Labels: labels})
	if err != nil {
		return nil, err
	}
	return mountsFromProto(r.GetMounts()), nil
}

func mountsFromProto(ms []*snapshotsapi.Mount) []Mount {
	out := make([]Mount, 0, len(ms))
	for _, m := range ms {
		out = append(out, Mount{Type: m.GetType(), Source: m.GetSource(), Options: m.GetOptions()})
	}
	return out
}

// SetLabels sets (or, with an empty value, removes) the given labels and
// returns the snapshot.
func (s *Snapshots) SetLabels(ctx context.Context, key string, labels map[string]string) (Snapshot, error) {
	if len(labels) == 0 {
		return s.Stat(ctx, key) // an empty mask would mean "all labels"
	}
	return s.update(ctx, key, nonEmpty(labels), labelMask(labels))
}

// ReplaceLabels replaces all labels of a snapshot.
func (s *Snapshots) ReplaceLabels(ctx context.Context, key string, labels map[string]string) (Snapshot, error) {
	return s.update(ctx, key, labels, &fieldmaskpb.FieldMask{Paths: []string{"labels"}})
}

func (s *Snapshots) update(ctx context.Context, key string, labels map[string]string, mask *fieldmaskpb.FieldMask) (Snapshot, error) {
	r, err := s.c.snapshots.Update(ctx, &snapshotsapi.UpdateSnapshotRequest{
		Snapshotter: s.snapshotter,
		Info:        &snapshotsapi.Info{Name: key, Labels: labels},
		UpdateMask:  mask,
	})
	if err != nil {
		return Snapshot{}, err
	}
	return snapshotFromProto(r.GetInfo()), nil
}
