package server

import (
	"testing"

	diskusageapi "github.com/berth-dev/berth/api/diskusage/v1"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

func tot(count, bytes int64) *diskusageapi.Total {
	return &diskusageapi.Total{Count: count, Bytes: bytes}
}

func blob(key string, size int64, labels ...string) usageObject {
	return usageObject{key: key, size: size, labels: pairs(labels)}
}

func snap(key, parent string, kind snapshots.Kind, size int64, labels ...string) usageSnapshot {
	return usageSnapshot{usageObject: usageObject{key: key, size: size, labels: pairs(labels)}, parent: parent, kind: kind}
}

func pairs(kv []string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

const (
	refConfig = "berth.io/gc.ref.content.config"
	refL0     = "berth.io/gc.ref.content.l.0"
	refL1     = "berth.io/gc.ref.content.l.1"
	refM0     = "berth.io/gc.ref.content.m.0"
	refM1     = "berth.io/gc.ref.content.m.1"
	refSnap   = "berth.io/gc.ref.snapshot.overlayfs"
	gcRoot    = "berth.io/gc.root"
)

// Two images share layer l1 and its snapshot s1: image a is l1 alone, image
// b is l1 + l2 (snapshot s2 on s1). Sizes are powers of two so every sum
// names its members.
func twoImages() usageInput {
	return usageInput{
		snapshotter: "overlayfs",
		blobs: []usageObject{
			blob("ma", 1, refConfig, "ca", refL0, "l1"),
			blob("ca", 2, refSnap, "s1"),
			blob("l1", 4),
			blob("mb", 8, refConfig, "cb", refL0, "l1", refL1, "l2"),
			blob("cb", 16, refSnap, "s2"),
			blob("l2", 32),
		},
		snapshots: []usageSnapshot{
			snap("s1", "", snapshots.KindCommitted, 1024),
			snap("s2", "s1", snapshots.KindCommitted, 2048),
		},
		images: []usageImage{{"a", "ma"}, {"b", "mb"}},
		leases: map[string][]leases.Resource{},
	}
}

func TestComputeUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   func() usageInput
		want *diskusageapi.GetDiskUsageResponse
	}{{
		name: "empty namespace",
		in:   func() usageInput { return usageInput{snapshotter: "overlayfs"} },
		want: &diskusageapi.GetDiskUsageResponse{
			Snapshotter: "overlayfs",
			Content:     storeUsage(tot(0, 0), tot(0, 0), tot(0, 0), tot(0, 0), tot(0, 0), tot(0, 0)),
			Snapshots:   storeUsage(tot(0, 0), tot(0, 0), tot(0, 0), tot(0, 0), tot(0, 0), tot(0, 0)),
			Images:      &diskusageapi.ImagesUsage{Total: tot(0, 0)},
		},
	}, {
		name: "images share a layer and its snapshot; nothing is in use",
		in:   twoImages,
		want: &diskusageapi.GetDiskUsageResponse{
			Snapshotter: "overlayfs",
			//                     total         shared      unique       held        unreferenced reclaimable
			Content:   storeUsage(tot(6, 63), tot(1, 4), tot(5, 59), tot(0, 0), tot(0, 0), tot(6, 63)),
			Snapshots: storeUsage(tot(2, 3072), tot(1, 1024), tot(1, 2048), tot(0, 0), tot(0, 0), tot(2, 3072)),
			Images: &diskusageapi.ImagesUsage{Total: tot(2, 63+3072), Reclaimable: 63 + 3072, Images: []*diskusageapi.ImageUsage{
				{Name: "a", Content: tot(3, 7), Snapshots: tot(1, 1024), Size: 1031, Shared: 1028, Unique: 3},
				{Name: "b", Content: tot(4, 60), Snapshots: tot(2, 3072), Size: 3132, Shared: 1028, Unique: 2104},
			}},
		},
	}, {
		name: "a leased container snapshot on b keeps b and what it shares",
		in: func() usageInput {
			in := twoImages()
			in.snapshots = append(in.snapshots, snap("ctr", "s2", snapshots.KindActive, 4096))
			in.leases["ctr-lease"] = []leases.Resource{{Type: "snapshots/overlayfs", ID: "ctr"}}
			return in
		},
		want: &diskusageapi.GetDiskUsageResponse{
			Snapshotter: "overlayfs",
			Content:     storeUsage(tot(6, 63), tot(1, 4), tot(5, 59), tot(0, 0), tot(0, 0), tot(2, 3)),
			// s1 and s2 are both used by images and held through ctr's parents.
			Snapshots: storeUsage(tot(3, 7168), tot(1, 1024), tot(1, 2048), tot(1, 4096), tot(0, 0), tot(0, 0)),
			Images: &diskusageapi.ImagesUsage{Total: tot(2, 63+3072), InUse: 1, Reclaimable: 3, Images: []*diskusageapi.ImageUsage{
				{Name: "a", Content: tot(3, 7), Snapshots: tot(1, 1024), Size: 1031, Shared: 1028, Unique: 3},
				{Name: "b", Content: tot(4, 60), Snapshots: tot(2, 3072), Size: 3132, Shared: 1028, Unique: 2104, ActiveSnapshots: 1},
			}},
		},
	}, {
		name: "an active snapshot nothing holds is garbage and uses no image",
		in: func() usageInput {
			in := twoImages()
			in.snapshots = append(in.snapshots, snap("orphan", "s2", snapshots.KindView, 4096))
			return in
		},
		want: &diskusageapi.GetDiskUsageResponse{
			Snapshotter: "overlayfs",
			Content:     storeUsage(tot(6, 63), tot(1, 4), tot(5, 59), tot(0, 0), tot(0, 0), tot(6, 63)),
			Snapshots:   storeUsage(tot(3, 7168), tot(1, 1024), tot(1, 2048), tot(0, 0), tot(1, 4096), tot(3, 7168)),
			Images: &diskusageapi.ImagesUsage{Total: tot(2, 63+3072), Reclaimable: 63 + 3072, Images: []*diskusageapi.ImageUsage{
				{Name: "a", Content: tot(3, 7), Snapshots: tot(1, 1024), Size: 1031, Shared: 1028, Unique: 3},
				{Name: "b", Content: tot(4, 60), Snapshots: tot(2, 3072), Size: 3132, Shared: 1028, Unique: 2104},
			}},
		},
	}, {
		name: "leases, roots and garbage outside images",
		in: func() usageInput {
			return usageInput{
				snapshotter: "overlayfs",
				blobs: []usageObject{
					blob("pinned", 1, gcRoot, "x", refL0, "child"),
					blob("child", 2),
					blob("leased", 4),
					blob("garbage", 8),
					// A reference to another snapshotter's snapshot is not followed.
					blob("other-sn", 16, gcRoot, "x", "berth.io/gc.ref.snapshot.native", "s-other"),
				},
				snapshots: []usageSnapshot{
					snap("s-root", "", snapshots.KindCommitted, 1024, gcRoot, "x"),
					snap("s-other", "", snapshots.KindCommitted, 2048),
				},
				leases: map[string][]leases.Resource{
					"l": {{Type: "content", ID: "leased"}, {Type: "snapshots/native", ID: "s-other"}, {Type: "ingest", ID: "ref"}},
				},
			}
		},
		want: &diskusageapi.GetDiskUsageResponse{
			Snapshotter: "overlayfs",
			Content:     storeUsage(tot(5, 31), tot(0, 0), tot(0, 0), tot(4, 23), tot(1, 8), tot(1, 8)),
			Snapshots:   storeUsage(tot(2, 3072), tot(0, 0), tot(0, 0), tot(1, 1024), tot(1, 2048), tot(1, 2048)),
			Images:      &diskusageapi.ImagesUsage{Total: tot(0, 0)},
		},
	}, {
		name: "an index counts only the manifests stored; tags of one image share everything",
		in: func() usageInput {
			in := twoImages()
			in.blobs = append(in.blobs, blob("idx", 64, refM0, "ma", refM1, "absent"))
			in.images = []usageImage{{"a", "ma"}, {"a-index", "idx"}, {"a-index-2", "idx"}}
			return in
		},
		want: &diskusageapi.GetDiskUsageResponse{
			Snapshotter: "overlayfs",
			// idx, ma, ca, l1, s1 are shared; mb, cb, l2, s2 belong to no image.
			Content:   storeUsage(tot(7, 127), tot(4, 71), tot(0, 0), tot(0, 0), tot(3, 56), tot(7, 127)),
			Snapshots: storeUsage(tot(2, 3072), tot(1, 1024), tot(0, 0), tot(0, 0), tot(1, 2048), tot(2, 3072)),
			Images: &diskusageapi.ImagesUsage{Total: tot(3, 71+1024), Reclaimable: 71 + 1024, Images: []*diskusageapi.ImageUsage{
				{Name: "a", Content: tot(3, 7), Snapshots: tot(1, 1024), Size: 1031, Shared: 1031},
				{Name: "a-index", Content: tot(4, 71), Snapshots: tot(1, 1024), Size: 1095, Shared: 1095},
				{Name: "a-index-2", Content: tot(4, 71), Snapshots: tot(1, 1024), Size: 1095, Shared: 1095},
			}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := computeUsage(tc.in())
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}

func storeUsage(total, shared, unique, held, unreferenced, reclaimable *diskusageapi.Total) *diskusageapi.StoreUsage {
	return &diskusageapi.StoreUsage{Total: total, Shared: shared, Unique: unique, Held: held, Unreferenced: unreferenced, Reclaimable: reclaimable}
}

// The parts of a report add up, whatever the graph.
func TestComputeUsageAddsUp(t *testing.T) {
	in := twoImages()
	in.snapshots = append(in.snapshots, snap("ctr", "s1", snapshots.KindActive, 4096), snap("junk", "", snapshots.KindCommitted, 8192))
	in.blobs = append(in.blobs, blob("junk", 64), blob("kept", 128, gcRoot, "1"))
	in.leases["l"] = []leases.Resource{{Type: "snapshots/overlayfs", ID: "ctr"}}
	u := computeUsage(in)
	for name, s := range map[string]*diskusageapi.StoreUsage{"content": u.Content, "snapshots": u.Snapshots} {
		sum := s.Shared.Bytes + s.Unique.Bytes + s.Held.Bytes + s.Unreferenced.Bytes
		n := s.Shared.Count + s.Unique.Count + s.Held.Count + s.Unreferenced.Count
		if sum != s.Total.Bytes || n != s.Total.Count {
			t.Errorf("%s: parts %d bytes in %d, total %d in %d", name, sum, n, s.Total.Bytes, s.Total.Count)
		}
		if s.Reclaimable.Bytes < s.Unreferenced.Bytes || s.Reclaimable.Bytes > s.Total.Bytes {
			t.Errorf("%s: reclaimable %d outside [unreferenced %d, total %d]", name, s.Reclaimable.Bytes, s.Unreferenced.Bytes, s.Total.Bytes)
		}
	}
	if got, want := u.Images.Total.Bytes, u.Content.Shared.Bytes+u.Content.Unique.Bytes+u.Snapshots.Shared.Bytes+u.Snapshots.Unique.Bytes; got != want {
		t.Errorf("images use %d bytes, content and snapshots used by images %d", got, want)
	}
	for _, img := range u.Images.Images {
		if img.Shared+img.Unique != img.Size || img.Content.Bytes+img.Snapshots.Bytes != img.Size {
			t.Errorf("image %s: %+v does not add up", img.Name, img)
		}
	}
	// ctr is made on s1, image a's snapshot: a is in use, b is not.
	if u.Images.InUse != 1 || u.Images.Images[0].ActiveSnapshots != 1 || u.Images.Images[1].ActiveSnapshots != 0 {
		t.Errorf("in use: %+v", u.Images)
	}
}
