package metadata

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/content/local"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/gc"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/snapshots/overlay"
	"github.com/berth-dev/berth/internal/snapshots/snapshotstest"
	"github.com/berth-dev/berth/internal/testutil"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ownedSnapshotter closes the DB and backend it was opened with.
type ownedSnapshotter struct {
	*snapshotter
	close func() error
}

func (o ownedSnapshotter) Close() error { return o.close() }

func openWithOverlay(t testing.TB, root string) (*DB, snapshots.Snapshotter, error) {
	cs, err := local.New(filepath.Join(root, "content"))
	if err != nil {
		return nil, nil, err
	}
	ov, err := overlay.New(filepath.Join(root, "snapshots"), overlay.Config{})
	if err != nil {
		return nil, nil, err
	}
	db, err := Open(context.Background(), filepath.Join(root, "meta.db"), cs, Options{GCDelay: -1, Snapshotters: map[string]snapshots.Snapshotter{"overlayfs": ov}})
	if err != nil {
		ov.Close()
		return nil, nil, err
	}
	return db, ov, nil
}

func TestSnapshotterConformance(t *testing.T) {
	snapshotstest.Run(t, func(ctx context.Context, root string) (snapshots.Snapshotter, error) {
		db, ov, err := openWithOverlay(t, root)
		if err != nil {
			return nil, err
		}
		sn := db.Snapshotter("overlayfs").(*snapshotter)
		return ownedSnapshotter{snapshotter: sn, close: func() error {
			db.Close()
			return ov.Close()
		}}, nil
	})
}

func TestSnapshotsAreNamespacedAndCollected(t *testing.T) {
	testutil.RequirePrivileged(t)
	db, ov, err := openWithOverlay(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ov.Close()
	defer db.Close()
	sn := db.Snapshotter("overlayfs")
	a, b := nsCtx("a"), nsCtx("b")
	if _, err := db.CreateLease(a, leases.Lease{ID: "pull"}); err != nil {
		t.Fatal(err)
	}
	la := leases.WithLease(a, "pull")
	for _, ctx := range []context.Context{la, b} {
		if _, err := sn.Prepare(ctx, "extract", ""); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(ctx, "layer1", "extract"); err != nil {
			t.Fatalf("same name in another namespace: %v", err)
		}
	}
	if _, err := sn.Prepare(la, "extract2", "layer1"); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(la, "layer2", "extract2"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(b, "layer2"); !errdefs.IsNotFound(err) {
		t.Errorf("namespace b sees a's layer2: %v", err)
	}

	// An image in a references its config blob, which references the top
	// snapshot: that keeps the chain after the lease goes.
	cs := db.ContentStore()
	cfg := commit(t, a, cs, `{"config":1}`, map[string]string{gc.LabelRefSnapshotPrefix + "overlayfs": "layer2"})
	mfst := commit(t, a, cs, `{"manifest":1}`, map[string]string{gc.LabelRefContentPrefix + ".config": cfg.String()})
	if _, err := db.PutImage(a, Image{Name: "img", Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: mfst, Size: 14}}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteLease(a, "pull", true); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"layer1", "layer2"} {
		if _, err := sn.Stat(a, name); err != nil {
			t.Errorf("%s collected although the image references it: %v", name, err)
		}
	}
	// b's layer1 has no lease and no image: it was collected, in the
	// backend too.
	if _, err := sn.Stat(b, "layer1"); !errdefs.IsNotFound(err) {
		t.Errorf("unreferenced snapshot kept: %v", err)
	}
	countBackend := func() int {
		n := 0
		ov.Walk(context.Background(), func(snapshots.Info) error { n++; return nil })
		return n
	}
	if n := countBackend(); n != 2 {
		t.Errorf("backend holds %d snapshots, want 2", n)
	}
	if err := db.DeleteImage(a, "img", true); err != nil {
		t.Fatal(err)
	}
	if n := countBackend(); n != 0 {
		t.Errorf("backend holds %d snapshots after the image went, want 0", n)
	}
	if _, err := cs.Info(a, cfg); !errdefs.IsNotFound(err) {
		t.Errorf("config blob kept after the image went: %v", err)
	}
}
