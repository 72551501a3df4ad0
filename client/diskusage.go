package client

import (
	"context"

	diskusageapi "github.com/berth-dev/berth/api/diskusage/v1"
)

// Total is a number of objects and their bytes.
type Total struct {
	Count int64 `json:"count"`
	Bytes int64 `json:"bytes"`
}

// StoreUsage classifies the blobs of the content store, or the snapshots of
// a snapshotter, by what references them. Shared + Unique + Held +
// Unreferenced = Total.
type StoreUsage struct {
	Total Total `json:"total"`
	// Shared are used by more than one image, Unique by exactly one.
	Shared Total `json:"shared"`
	Unique Total `json:"unique"`
	// Held are used by no image but kept by a lease or a berth.io/gc.root
	// label.
	Held Total `json:"held"`
	// Unreferenced are kept by nothing: the next garbage collection
	// (GarbageCollect, berth system prune) removes them.
	Unreferenced Total `json:"unreferenced"`
	// Reclaimable is what removing every image not in use, then collecting,
	// would free; it includes Unreferenced.
	Reclaimable Total `json:"reclaimable"`
}

// ImageUsage is what one image uses: its blobs, and its snapshot with that
// snapshot's parents.
type ImageUsage struct {
	Name      string `json:"name"`
	Content   Total  `json:"content"`
	Snapshots Total  `json:"snapshots"`
	// Size = Content.Bytes + Snapshots.Bytes = Shared + Unique.
	Size int64 `json:"size"`
	// Shared is the bytes another image uses too, Unique those no other
	// image uses.
	Shared int64 `json:"shared"`
	Unique int64 `json:"unique"`
	// ActiveSnapshots counts the active snapshots (container root
	// filesystems, views) made on the image; with any, the image is in use.
	ActiveSnapshots int64 `json:"active_snapshots"`
}

// ImagesUsage is the images' view of the content and snapshots.
type ImagesUsage struct {
	// Total is the number of images and the bytes they use, each blob and
	// snapshot counted once.
	Total Total `json:"total"`
	InUse int64 `json:"in_use"`
	// Reclaimable is what removing the images not in use, then collecting,
	// would free.
	Reclaimable int64        `json:"reclaimable"`
	Images      []ImageUsage `json:"images"`
}

// DiskUsage explains what uses disk space in a namespace (berth df).
// Content and Snapshots are what is on disk; Images is a view of the same
// bytes. A blob another namespace holds too is stored once but counted in
// each namespace.
type DiskUsage struct {
	Snapshotter string      `json:"snapshotter"`
	Content     StoreUsage  `json:"content"`
	Snapshots   StoreUsage  `json:"snapshots"`
	Images      ImagesUsage `json:"images"`
}

// DiskUsage reports the disk usage of the client's namespace, counting the
// snapshots of the snapshotter called snapshotter ("" for the daemon's).
func (c *Client) DiskUsage(ctx context.Context, snapshotter string) (DiskUsage, error) {
	r, err := c.diskUsage.Get(ctx, &diskusageapi.GetDiskUsageRequest{Snapshotter: snapshotter})
	if err != nil {
		return DiskUsage{}, err
	}
	imgs := r.GetImages()
	out := DiskUsage{
		Snapshotter: r.GetSnapshotter(),
		Content:     storeUsageFromProto(r.GetContent()),
		Snapshots:   storeUsageFromProto(r.GetSnapshots()),
		Images: ImagesUsage{Total: totalFromProto(imgs.GetTotal()), InUse: imgs.GetInUse(), Reclaimable: imgs.GetReclaimable(),
			Images: make([]ImageUsage, 0, len(imgs.GetImages()))},
	}
	for _, i := range imgs.GetImages() {
		out.Images.Images = append(out.Images.Images, ImageUsage{
			Name: i.GetName(), Content: totalFromProto(i.GetContent()), Snapshots: totalFromProto(i.GetSnapshots()),
			Size: i.GetSize(), Shared: i.GetShared(), Unique: i.GetUnique(), ActiveSnapshots: i.GetActiveSnapshots(),
		})
	}
	return out, nil
}

func totalFromProto(t *diskusageapi.Total) Total {
	return Total{Count: t.GetCount(), Bytes: t.GetBytes()}
}

func storeUsageFromProto(u *diskusageapi.StoreUsage) StoreUsage {
	return StoreUsage{
		Total:        totalFromProto(u.GetTotal()),
		Shared:       totalFromProto(u.GetShared()),
		Unique:       totalFromProto(u.GetUnique()),
		Held:         totalFromProto(u.GetHeld()),
		Unreferenced: totalFromProto(u.GetUnreferenced()),
		Reclaimable:  totalFromProto(u.GetReclaimable()),
	}
}
