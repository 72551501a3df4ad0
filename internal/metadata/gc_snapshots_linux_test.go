package metadata

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/content/local"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/snapshots/native"
)

// hookedSnapshotter runs beforeWalk when a walk starts: what a
// collection's walk races with.
type hookedSnapshotter struct {
	snapshots.Snapshotter
	beforeWalk func()
}

func (h *hookedSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	if h.beforeWalk != nil {
		h.beforeWalk()
	}
	return h.Snapshotter.Walk(ctx, fn, filters...)
}

func openWithNative(t *testing.T) (*DB, *hookedSnapshotter) {
	t.Helper()
	root := t.TempDir()
	cs, err := local.New(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	nat, err := native.New(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nat.Close() })
	h := &hookedSnapshotter{Snapshotter: nat}
	db, err := Open(context.Background(), filepath.Join(root, "meta.db"), cs, Options{GCDelay: -1, Snapshotters: map[string]snapshots.Snapshotter{"native": h}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, h
}

// A snapshot recorded while a collection walks the backend is kept: the
// collection reads the records again before it removes anything.
func TestCollectionKeepsASnapshotRecordedDuringItsWalk(t *testing.T) {
	db, h := openWithNative(t)
	ctx := nsCtx("ns")
	sn := db.Snapshotter("native")
	release := db.HoldGC()
	h.beforeWalk = func() {
		h.beforeWalk = nil
		// Made after the collection's first look at the records, and out
		// of the in-flight set before the walk lists it.
		if _, err := sn.Prepare(ctx, "late", ""); err != nil {
			t.Error(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := db.GarbageCollect(context.Background())
		done <- err
	}()
	// The collection waits for the hold before it marks.
	select {
	case err := <-done:
		t.Fatalf("a collection ran while held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// "late" has no lease or reference, so the next collection may take it;
	// this one must not have removed its files while it was recorded.
	if _, err := sn.Stat(ctx, "late"); err != nil {
		t.Fatalf("record of the late snapshot: %v", err)
	}
	n := 0
	h.Snapshotter.Walk(context.Background(), func(snapshots.Info) error { n++; return nil })
	if n != 1 {
		t.Errorf("backend holds %d snapshots after the collection, want the late one", n)
	}
	if _, err := db.GarbageCollect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, "late"); !errdefs.IsNotFound(err) {
		t.Errorf("an unreferenced snapshot survived the next collection: %v", err)
	}
}

// A snapshot prepared under HoldGC survives a collection that starts
// before the caller references it.
func TestHoldGCProtectsUntilReleased(t *testing.T) {
	db, _ := openWithNative(t)
	ctx := nsCtx("ns")
	sn := db.Snapshotter("native")
	release := db.HoldGC()
	if _, err := sn.Prepare(ctx, "rootfs", ""); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := db.GarbageCollect(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(50 * time.Millisecond) // the collection waits
	if _, err := sn.Stat(ctx, "rootfs"); err != nil {
		t.Fatalf("collected while held: %v", err)
	}
	release()
	<-done
	if _, err := sn.Stat(ctx, "rootfs"); !errdefs.IsNotFound(err) {
		t.Errorf("unreferenced snapshot kept after the hold: %v", err)
	}
}

// Deleting a container removes its active snapshot in the same commit, and
// the backend's copy soon after; a committed snapshot it names stays.
func TestDeleteContainerRemovesItsActiveSnapshot(t *testing.T) {
	db, h := openWithNative(t)
	ctx := nsCtx("ns")
	sn := db.Snapshotter("native")
	if _, err := sn.Prepare(ctx, "base-extract", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "base", "base-extract"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "c1", "base"); err != nil {
		t.Fatal(err)
	}
	c2 := testContainer("c2", "")
	c2.SnapshotKey = "base" // not its own: a committed snapshot stays
	for _, c := range []Container{testContainer("c1", ""), c2} {
		if _, err := db.CreateContainer(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteContainer(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sn.Stat(ctx, "c1"); !errdefs.IsNotFound(err) {
		t.Errorf("the deleted container's snapshot is still recorded: %v", err)
	}
	if _, err := sn.Stat(ctx, "base"); err != nil {
		t.Errorf("a committed snapshot went with a container: %v", err)
	}
	db.removing.Wait()
	var left []string
	h.Snapshotter.Walk(context.Background(), func(i snapshots.Info) error { left = append(left, i.Kind.String()); return nil })
	if len(left) != 1 || left[0] != snapshots.KindCommitted.String() {
		t.Errorf("backend holds %v after the delete, want only the committed base", left)
	}
}
