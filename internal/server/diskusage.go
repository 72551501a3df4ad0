package server

import (
	"context"
	"slices"
	"strings"
	"time"

	diskusageapi "github.com/berth-dev/berth/api/diskusage/v1"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/gc"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/snapshots"
)

type diskUsageService struct {
	diskusageapi.UnimplementedDiskUsageServer
	s *Server
}

// usageInput is what disk usage is computed from: the records of one
// namespace, read without a transaction spanning them all, so a report made
// while things change is only approximately consistent.
type usageInput struct {
	snapshotter string
	blobs       []usageObject
	snapshots   []usageSnapshot
	images      []usageImage // sorted by name
	// leases maps each unexpired lease's ID to its resources.
	leases map[string][]leases.Resource
}

// usageObject is a blob (key: digest) or a snapshot (key: key or name).
type usageObject struct {
	key    string
	size   int64
	labels map[string]string
}

type usageSnapshot struct {
	usageObject
	parent string
	kind   snapshots.Kind
}

type usageImage struct {
	name   string
	target string // digest
}

// gatherUsage reads the input of computeUsage from the namespace of ctx.
func (s *Server) gatherUsage(ctx context.Context, snapshotter string) (usageInput, error) {
	sn, name, err := s.snapshotter(snapshotter)
	if err != nil {
		return usageInput{}, err
	}
	in := usageInput{snapshotter: name, leases: map[string][]leases.Resource{}}
	if err := s.content.Walk(ctx, func(info content.Info) error {
		in.blobs = append(in.blobs, usageObject{key: info.Digest.String(), size: info.Size, labels: info.Labels})
		return nil
	}); err != nil {
		return usageInput{}, err
	}
	if err := sn.Walk(ctx, func(info snapshots.Info) error {
		u, err := sn.Usage(ctx, info.Name)
		if errdefs.IsNotFound(err) {
			return nil // removed since the walk began
		} else if err != nil {
			return err
		}
		in.snapshots = append(in.snapshots, usageSnapshot{
			usageObject: usageObject{key: info.Name, size: u.Size, labels: info.Labels},
			parent:      info.Parent,
			kind:        info.Kind,
		})
		return nil
	}); err != nil {
		return usageInput{}, err
	}
	imgs, err := s.db.ListImages(ctx)
	if err != nil {
		return usageInput{}, err
	}
	for _, img := range imgs {
		in.images = append(in.images, usageImage{name: img.Name, target: img.Target.Digest.String()})
	}
	ls, err := s.db.ListLeases(ctx)
	if err != nil {
		return usageInput{}, err
	}
	now := time.Now()
	for _, l := range ls {
		if exp, err := time.Parse(time.RFC3339Nano, l.Labels[leases.LabelExpire]); err == nil && !now.Before(exp) {
			continue // expired: it protects nothing (garbage collection agrees)
		}
		res, err := s.db.ListResources(ctx, l.ID)
		if errdefs.IsNotFound(err) {
			continue // deleted since the listing
		} else if err != nil {
			return usageInput{}, err
		}
		in.leases[l.ID] = res
	}
	return in, nil
}

// computeUsage classifies every blob and snapshot of in by what references
// it. The graph is the one garbage collection marks (metadata's roots and
// references), restricted to one namespace and one snapshotter:
//
//   - roots: images, unexpired leases, blobs and snapshots labelled
//     berth.io/gc.root;
//   - an image references its target blob; a lease its resources; a blob or
//     snapshot what its berth.io/gc.ref.* labels name; a snapshot its parent.
//
// An object is used by the images it is reachable from, and held when it is
// reachable from the other roots. An image is in use when a held active
// snapshot has for parent a snapshot the image's blobs reference directly
// (a container's root filesystem made from it). Reclaimable is what is not
// reachable from the held roots and the images in use.
func computeUsage(in usageInput) *diskusageapi.GetDiskUsageResponse {
	blobs := map[string]usageObject{}
	for _, b := range in.blobs {
		blobs[b.key] = b
	}
	snaps := map[string]usageSnapshot{}
	for _, sn := range in.snapshots {
		snaps[sn.key] = sn
	}
	targets := map[string]string{}
	for _, img := range in.images {
		targets[img.name] = img.target
	}
	blobNode := func(k string) gc.Node { return gc.Node{Type: gc.ResourceContent, Key: k} }
	snapNode := func(k string) gc.Node { return gc.Node{Type: gc.ResourceSnapshot, Key: k} }
	imageNode := func(name string) gc.Node { return gc.Node{Type: gc.ResourceImage, Key: name} }
	// labelRefs calls fn for the nodes the berth.io/gc.ref.* labels name.
	labelRefs := func(lbls map[string]string, fn func(gc.Node)) {
		for k, v := range lbls {
			switch {
			case strings.HasPrefix(k, gc.LabelRefContentPrefix):
				fn(blobNode(v))
			case strings.HasPrefix(k, gc.LabelRefSnapshotPrefix):
				if sn, _, _ := strings.Cut(strings.TrimPrefix(k, gc.LabelRefSnapshotPrefix), "."); sn == in.snapshotter {
					fn(snapNode(v))
				}
			}
		}
	}
	refs := func(n gc.Node, fn func(gc.Node)) error {
		switch n.Type {
		case gc.ResourceImage:
			fn(blobNode(targets[n.Key]))
		case gc.ResourceLease:
			for _, r := range in.leases[n.Key] {
				switch {
				case r.Type == leases.ResourceContent:
					fn(blobNode(r.ID))
				case r.Type == leases.ResourceSnapshotPrefix+in.snapshotter:
					fn(snapNode(r.ID))
				}
			}
		case gc.ResourceContent:
			labelRefs(blobs[n.Key].labels, fn)
		case gc.ResourceSnapshot:
			if sn, ok := snaps[n.Key]; ok {
				if sn.parent != "" {
					fn(snapNode(sn.parent))
				}
				labelRefs(sn.labels, fn)
			}
		}
		return nil
	}
	mark := func(roots []gc.Node) map[gc.Node]struct{} {
		marked, _ := gc.Mark(roots, refs) // refs never fails
		return marked
	}

	var heldRoots []gc.Node
	for id := range in.leases {
		heldRoots = append(heldRoots, gc.Node{Type: gc.ResourceLease, Key: id})
	}
	for _, b := range in.blobs {
		if _, ok := b.labels[gc.LabelRoot]; ok {
			heldRoots = append(heldRoots, blobNode(b.key))
		}
	}
	for _, sn := range in.snapshots {
		if _, ok := sn.labels[gc.LabelRoot]; ok {
			heldRoots = append(heldRoots, snapNode(sn.key))
		}
	}
	held := mark(heldRoots)

	// users counts the images each node is reachable from.
	users := map[gc.Node]int{}
	reach := make([]map[gc.Node]struct{}, len(in.images))
	for i, img := range in.images {
		reach[i] = mark([]gc.Node{imageNode(img.name)})
		for n := range reach[i] {
			users[n]++
		}
	}
	// active[i] counts the held active snapshots made on image i.
	active := make([]int64, len(in.images))
	for i := range in.images {
		tops := map[string]bool{}
		for n := range reach[i] {
			if n.Type == gc.ResourceContent {
				labelRefs(blobs[n.Key].labels, func(r gc.Node) {
					if r.Type == gc.ResourceSnapshot {
						tops[r.Key] = true
					}
				})
			}
		}
		for _, sn := range in.snapshots {
			if _, ok := held[snapNode(sn.key)]; ok && sn.kind != snapshots.KindCommitted && tops[sn.parent] {
				active[i]++
			}
		}
	}
	keepRoots := slices.Clone(heldRoots)
	for i, img := range in.images {
		if active[i] > 0 {
			keepRoots = append(keepRoots, imageNode(img.name))
		}
	}
	kept := mark(keepRoots)

	out := &diskusageapi.GetDiskUsageResponse{Snapshotter: in.snapshotter, Images: &diskusageapi.ImagesUsage{Total: &diskusageapi.Total{}}}
	store := func(n gc.Node, size int64, u *diskusageapi.StoreUsage) {
		add(u.Total, size)
		switch _, isHeld := held[n]; {
		case users[n] > 1:
			add(u.Shared, size)
		case users[n] == 1:
			add(u.Unique, size)
		case isHeld:
			add(u.Held, size)
		default:
			add(u.Unreferenced, size)
		}
		if _, ok := kept[n]; !ok {
			add(u.Reclaimable, size)
		}
		if users[n] > 0 {
			out.Images.Total.Bytes += size
			if _, ok := kept[n]; !ok {
				out.Images.Reclaimable += size
			}
		}
	}
	out.Content, out.Snapshots = newStoreUsage(), newStoreUsage()
	for _, b := range in.blobs {
		store(blobNode(b.key), b.size, out.Content)
	}
	for _, sn := range in.snapshots {
		store(snapNode(sn.key), sn.size, out.Snapshots)
	}

	out.Images.Total.Count = int64(len(in.images))
	for i, img := range in.images {
		iu := &diskusageapi.ImageUsage{Name: img.name, Content: &diskusageapi.Total{}, Snapshots: &diskusageapi.Total{}, ActiveSnapshots: active[i]}
		for n := range reach[i] {
			var size int64
			switch n.Type {
			case gc.ResourceContent:
				b, ok := blobs[n.Key]
				if !ok {
					continue // referenced but not stored (another platform's manifest)
				}
				size = b.size
				add(iu.Content, size)
			case gc.ResourceSnapshot:
				sn, ok := snaps[n.Key]
				if !ok {
					continue
				}
				size = sn.size
				add(iu.Snapshots, size)
			default:
				continue
			}
			iu.Size += size
			if users[n] > 1 {
				iu.Shared += size
			} else {
				iu.Unique += size
			}
		}
		if active[i] > 0 {
			out.Images.InUse++
		}
		out.Images.Images = append(out.Images.Images, iu)
	}
	return out
}

func newStoreUsage() *diskusageapi.StoreUsage {
	return &diskusageapi.StoreUsage{Total: &diskusageapi.Total{}, Shared: &diskusageapi.Total{}, Unique: &diskusageapi.Total{},
		Held: &diskusageapi.Total{}, Unreferenced: &diskusageapi.Total{}, Reclaimable: &diskusageapi.Total{}}
}

// add counts one object of size bytes in t.
func add(t *diskusageapi.Total, size int64) {
	t.Count++
	t.Bytes += size
}
