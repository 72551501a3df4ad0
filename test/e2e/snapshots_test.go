package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
)

// testImage is an image pushed to the test registry.
type testImage struct {
	ref      string
	chainIDs []string // of its layers, bottom first: the snapshot names
}

// pushLayeredImages pushes the busybox test image and "app", busybox plus a
// layer adding /etc/motd, to a fresh registry. They share busybox's layer.
func pushLayeredImages(t *testing.T) (busybox, app testImage) {
	t.Helper()
	host := testutil.StartRegistry(t, "")
	base := testutil.BusyboxImage(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	motd := []byte("built by the berth e2e tests\n")
	must(t, tw.WriteHeader(&tar.Header{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0644, Size: int64(len(motd))}))
	_, err := tw.Write(motd)
	must(t, err)
	must(t, tw.Close())
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	must(t, err)
	top, err := mutate.AppendLayers(base, layer)
	must(t, err)
	push := func(img v1.Image, ref string) testImage {
		testutil.PushImage(t, img, ref)
		cfg, err := img.ConfigFile()
		must(t, err)
		ti := testImage{ref: ref}
		for i, d := range cfg.RootFS.DiffIDs {
			id := d.String()
			if i > 0 {
				id = digest.FromString(ti.chainIDs[i-1] + " " + id).String()
			}
			ti.chainIDs = append(ti.chainIDs, id)
		}
		return ti
	}
	return push(base, host+"/library/busybox:e2e"), push(top, host+"/library/app:e2e")
}

func TestSnapshotsAndDiskUsageAfterPull(t *testing.T) {
	d := newDaemon(t)
	d.start()
	ctx := context.Background()
	c := d.client("default")
	busybox, app := pushLayeredImages(t)
	d.berth(nil, "pull", "-q", busybox.ref).ok(t)
	d.berth(nil, "pull", "-q", app.ref).ok(t)
	base, appTop := busybox.chainIDs[0], app.chainIDs[1]
	if app.chainIDs[0] != base {
		t.Fatalf("app's first chainID %s is not busybox's %s", app.chainIDs[0], base)
	}

	// snapshot ls: one committed snapshot per chainID, the top one on busybox's.
	var snaps []client.Snapshot
	must(t, json.Unmarshal([]byte(d.berth(nil, "snapshot", "ls", "--format", "json").ok(t)), &snaps))
	if len(snaps) != 2 {
		t.Fatalf("snapshot ls = %+v, want 2 snapshots", snaps)
	}
	for _, s := range snaps {
		wantParent := map[string]string{base: "", appTop: base}
		parent, ok := wantParent[s.Name]
		if !ok || s.Parent != parent || s.Kind != client.SnapshotCommitted || s.CreatedAt.IsZero() {
			t.Errorf("snapshot %+v; want %s (parent \"\") and %s (parent %s), committed", s, base, appTop, base)
		}
	}
	table := d.berth(nil, "snapshot", "ls").ok(t)
	t.Logf("berth snapshot ls:\n%s", table)
	if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "PARENT") || !strings.Contains(table, base) {
		t.Errorf("snapshot ls table:\n%s", table)
	}
	if got := d.berth(nil, "snapshot", "ls", "-q", "--filter", "parent=="+base).ok(t); got != appTop+"\n" {
		t.Errorf("ls --filter parent==%s -q = %q, want %s", base, got, appTop)
	}
	var info client.Snapshot
	must(t, json.Unmarshal([]byte(d.berth(nil, "snapshot", "info", appTop).ok(t)), &info))
	if info.Name != appTop || info.Parent != base || info.Kind != client.SnapshotCommitted {
		t.Errorf("snapshot info = %+v", info)
	}
	d.berth(nil, "snapshot", "info", "sha256:nope").fails(t, 1, `snapshot "sha256:nope": not found`)

	// snapshot usage: every snapshot takes space; busybox's layer holds the binary.
	t.Logf("berth snapshot usage:\n%s", d.berth(nil, "snapshot", "usage").ok(t))
	var usage []struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		Inodes int64  `json:"inodes"`
	}
	must(t, json.Unmarshal([]byte(d.berth(nil, "snapshot", "usage", "--format", "json").ok(t)), &usage))
	sizes := map[string]int64{}
	for _, u := range usage {
		if u.Size <= 0 || u.Inodes <= 0 {
			t.Errorf("usage of %s = %+v, want > 0", u.Name, u)
		}
		sizes[u.Name] = u.Size
	}
	if len(sizes) != 2 || sizes[base] < 500<<10 {
		t.Errorf("usage = %+v; want both snapshots, busybox's over 500 KiB", usage)
	}
	if out := d.berth(nil, "snapshot", "usage", appTop).ok(t); !strings.Contains(out, appTop) || strings.Contains(out, base+" ") {
		t.Errorf("usage of one snapshot:\n%s", out)
	}

	// A parent is not removed from under its child, and says why.
	d.berth(nil, "snapshot", "rm", base).fails(t, 1, `remove snapshot "`+base+`": it is the parent of "`+appTop+`"`)
	d.berth(nil, "snapshot", "mounts", base).fails(t, 1, "committed, not active")
	d.berth(nil, "--namespace", "default", "snapshot", "--snapshotter", "zfs", "ls").fails(t, 1, `snapshotter "zfs"`)

	// df: the images, their shared layer, and numbers that add up.
	dfOut := d.berth(nil, "df", "-v").ok(t)
	t.Logf("berth df -v:\n%s", dfOut)
	for _, want := range []string{"Images", "Content", "Snapshots", busybox.ref, app.ref} {
		if !strings.Contains(dfOut, want) {
			t.Errorf("df -v has no %q:\n%s", want, dfOut)
		}
	}
	du := diskUsage(t, d)
	blobs, err := c.ListBlobs(ctx)
	must(t, err)
	var blobBytes int64
	for _, b := range blobs {
		blobBytes += b.Size
	}
	imgs, err := c.ListImages(ctx)
	must(t, err)
	checkAddsUp(t, du)
	// Each image has a manifest, a config and busybox's layer (shared); app has its own layer too.
	if du.Content.Total != (client.Total{Count: int64(len(blobs)), Bytes: blobBytes}) || du.Content.Total.Count != 6 ||
		du.Content.Shared.Count != 1 || du.Content.Unique.Count != 5 {
		t.Errorf("content = %+v; the store has %d blobs, %d bytes", du.Content, len(blobs), blobBytes)
	}
	if du.Snapshots.Total != (client.Total{Count: 2, Bytes: sizes[base] + sizes[appTop]}) ||
		du.Snapshots.Shared != (client.Total{Count: 1, Bytes: sizes[base]}) || du.Snapshots.Unique != (client.Total{Count: 1, Bytes: sizes[appTop]}) {
		t.Errorf("snapshots = %+v; sizes %v", du.Snapshots, sizes)
	}
	if du.Images.Total != (client.Total{Count: 2, Bytes: blobBytes + sizes[base] + sizes[appTop]}) || du.Images.InUse != 0 ||
		du.Images.Reclaimable != du.Images.Total.Bytes || du.Content.Reclaimable != du.Content.Total || du.Snapshots.Reclaimable != du.Snapshots.Total {
		t.Errorf("nothing is in use, so everything is reclaimable: %+v", du)
	}
	for i, iu := range du.Images.Images {
		img := imgs[i]
		// An image's blobs are its manifest, config and layers.
		if iu.Name != img.Name || iu.Content.Bytes != img.Target.Size+img.Size {
			t.Errorf("image usage %+v; image %+v", iu, img)
		}
	}

	// A lease on busybox's snapshot keeps it: it is no longer reclaimable.
	_, err = c.CreateLease(ctx, "keep-base", time.Hour, nil)
	must(t, err)
	sn := snapshotterOf(t, c)
	must(t, c.AddLeaseResource(ctx, "keep-base", client.LeaseResource{Type: "snapshots/" + sn, ID: base}))
	if du := diskUsage(t, d); du.Snapshots.Reclaimable != (client.Total{Count: 1, Bytes: sizes[appTop]}) {
		t.Errorf("with the lease, snapshots reclaimable = %+v, want only %s", du.Snapshots.Reclaimable, appTop)
	}
	must(t, c.DeleteLease(ctx, "keep-base", true))

	// Label and remove publish events.
	evctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evc, errc := c.Subscribe(evctx, "topic~=^/snapshots/")
	if got := d.berth(nil, "snapshot", "label", appTop, "team=web").ok(t); got != "team=web\n" {
		t.Errorf("snapshot label printed %q", got)
	}
	if got := d.berth(nil, "snapshot", "ls", "-q", "--filter", "labels.team==web").ok(t); got != appTop+"\n" {
		t.Errorf("ls by label = %q", got)
	}
	if got := d.berth(nil, "snapshot", "rm", appTop).ok(t); got != appTop+"\n" {
		t.Errorf("snapshot rm printed %q", got)
	}
	for _, want := range []struct{ topic, payload string }{
		{"/snapshots/update", `"labels":{"team":"web"}`},
		{"/snapshots/remove", `"key":"` + appTop + `"`},
	} {
		select {
		case ev := <-evc:
			if ev.Topic != want.topic || !strings.Contains(string(ev.Payload), want.payload) || !strings.Contains(string(ev.Payload), `"snapshotter":"`+sn+`"`) {
				t.Errorf("event %s %s, want %s with %s", ev.Topic, ev.Payload, want.topic, want.payload)
			}
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event", want.topic)
		}
	}
	if got := d.berth(nil, "snapshot", "ls", "-q").ok(t); got != base+"\n" {
		t.Errorf("after rm: ls -q = %q", got)
	}

	// After rmi and prune nothing is left to reclaim, in the report or on disk.
	d.berth(nil, "rmi", busybox.ref, app.ref).ok(t)
	d.berth(nil, "system", "prune").ok(t)
	du = diskUsage(t, d)
	checkAddsUp(t, du)
	if du.Content.Total.Count != 0 || du.Snapshots.Total.Count != 0 || du.Images.Total.Count != 0 ||
		du.Content.Reclaimable.Bytes != 0 || du.Snapshots.Reclaimable.Bytes != 0 || du.Images.Reclaimable != 0 {
		t.Errorf("after rmi and prune: %+v", du)
	}
	if out := d.berth(nil, "snapshot", "ls", "-q").ok(t); out != "" {
		t.Errorf("snapshots after rmi and prune: %q", out)
	}
	left, _ := os.ReadDir(filepath.Join(d.root, "snapshots", sn, "snapshots"))
	if len(left) != 0 {
		t.Errorf("snapshot directories left after rmi and prune: %v", left)
	}
	t.Logf("berth df after rmi and prune:\n%s", d.berth(nil, "df").ok(t))
}

func diskUsage(t *testing.T, d *daemon) client.DiskUsage {
	t.Helper()
	var du client.DiskUsage
	must(t, json.Unmarshal([]byte(d.berth(nil, "df", "--format", "json").ok(t)), &du))
	return du
}

// checkAddsUp checks the invariants of a disk usage report.
func checkAddsUp(t *testing.T, du client.DiskUsage) {
	t.Helper()
	for name, s := range map[string]client.StoreUsage{"content": du.Content, "snapshots": du.Snapshots} {
		if s.Shared.Bytes+s.Unique.Bytes+s.Held.Bytes+s.Unreferenced.Bytes != s.Total.Bytes ||
			s.Shared.Count+s.Unique.Count+s.Held.Count+s.Unreferenced.Count != s.Total.Count {
			t.Errorf("%s: shared + unique + held + unreferenced != total: %+v", name, s)
		}
		if s.Reclaimable.Bytes < s.Unreferenced.Bytes || s.Reclaimable.Bytes > s.Total.Bytes {
			t.Errorf("%s: reclaimable outside [unreferenced, total]: %+v", name, s)
		}
	}
	if got := du.Content.Shared.Bytes + du.Content.Unique.Bytes + du.Snapshots.Shared.Bytes + du.Snapshots.Unique.Bytes; got != du.Images.Total.Bytes {
		t.Errorf("images use %d bytes, but content and snapshots used by images are %d", du.Images.Total.Bytes, got)
	}
	var names []string
	for _, iu := range du.Images.Images {
		names = append(names, iu.Name)
		if iu.Shared+iu.Unique != iu.Size || iu.Content.Bytes+iu.Snapshots.Bytes != iu.Size {
			t.Errorf("image %s does not add up: %+v", iu.Name, iu)
		}
	}
	if !slices.IsSorted(names) || int64(len(names)) != du.Images.Total.Count {
		t.Errorf("images %v, total %d", names, du.Images.Total.Count)
	}
}

// snapshotterOf returns the daemon's snapshotter.
func snapshotterOf(t *testing.T, c *client.Client) string {
	t.Helper()
	info, err := c.Server(context.Background())
	must(t, err)
	for _, f := range info.Features {
		if name, ok := strings.CutPrefix(f, "snapshotter="); ok {
			return name
		}
	}
	t.Fatalf("no snapshotter in %v", info.Features)
	return ""
}
