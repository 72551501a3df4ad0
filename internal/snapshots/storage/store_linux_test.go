package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/google/go-cmp/cmp"
)

func TestCreateCommitRemoveKeepsRecordsAndDirectoriesInStep(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir())

	base := create(t, s, snapshots.KindActive, "base-key", "", writeFill("f", "base"))
	if err := s.Commit(ctx, "base", "base-key"); err != nil {
		t.Fatal(err)
	}
	committed, err := s.Get(ctx, "base")
	if err != nil {
		t.Fatal(err)
	}
	if committed.ID != base.ID || committed.Info.Kind != snapshots.KindCommitted {
		t.Errorf("Get(base) = ID %d kind %s, want ID %d committed", committed.ID, committed.Info.Kind, base.ID)
	}
	if committed.Usage.Inodes != 2 || committed.Usage.Size == 0 {
		t.Errorf("usage of base = %+v, want 2 inodes (fs/ and f) and some bytes", committed.Usage)
	}
	if _, err := s.Get(ctx, "base-key"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(base-key) after Commit: got %v, want ErrNotFound", err)
	}

	var seenParent Snapshot
	child := create(t, s, snapshots.KindActive, "child", "base", func(dir string, p Snapshot) error {
		seenParent = p
		return nil
	})
	if seenParent.ID != base.ID {
		t.Errorf("fill saw parent ID %d, want %d", seenParent.ID, base.ID)
	}
	if diff := cmp.Diff([]uint64{base.ID}, child.ParentIDs); diff != "" {
		t.Errorf("child ParentIDs mismatch (-want +got):\n%s", diff)
	}
	if err := s.Remove(ctx, "base"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Remove(base) with a child: got %v, want ErrFailedPrecondition", err)
	}
	for _, key := range []string{"child", "base"} {
		if err := s.Remove(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	wantEntries(t, s)
}

func TestCreateLeavesNothingWhenFillFails(t *testing.T) {
	s := openStore(t, t.TempDir())
	fillErr := errors.New("fill failed")
	_, err := s.Create(t.Context(), snapshots.KindActive, "k", "", nil, func(string, Snapshot) error { return fillErr })
	if !errors.Is(err, fillErr) {
		t.Fatalf("Create: got %v, want the fill error", err)
	}
	if _, err := s.Get(t.Context(), "k"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after a failed Create: got %v, want ErrNotFound", err)
	}
	wantEntries(t, s)
}

func TestCreateFailsWhenParentIsRemovedDuringFill(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir())
	create(t, s, snapshots.KindActive, "p-key", "", nil)
	if err := s.Commit(ctx, "p", "p-key"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Create(ctx, snapshots.KindActive, "k", "p", nil, func(string, Snapshot) error {
		return s.Remove(ctx, "p")
	})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Create: got %v, want ErrNotFound for the removed parent", err)
	}
	wantEntries(t, s)
}

func TestCreateReplacesDirectoryLeftByCrash(t *testing.T) {
	s := openStore(t, t.TempDir())
	// A crash after the rename but before the commit leaves the directory
	// of the next ID, which has no record.
	stale := filepath.Join(s.Dir(1), "fs", "stale")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	snap := create(t, s, snapshots.KindActive, "k", "", nil)
	if snap.ID != 1 {
		t.Fatalf("ID = %d, want 1", snap.ID)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale file: stat error %v, want it gone", err)
	}
}

func TestCleanupDeletesDirectoriesWithoutRecords(t *testing.T) {
	s := openStore(t, t.TempDir())
	live := create(t, s, snapshots.KindActive, "live", "", writeFill("f", "x"))
	for _, name := range []string{"new-123", "rm-7", "99", "junk"} {
		if err := os.MkdirAll(filepath.Join(s.dir, name, "fs"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, s, fmt.Sprint(live.ID))
	if _, err := os.Stat(filepath.Join(s.FS(live.ID), "f")); err != nil {
		t.Errorf("live snapshot lost its files: %v", err)
	}
}

func TestReopenKeepsRecordsAndNeverReusesIDs(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	create(t, s, snapshots.KindActive, "a", "", nil)
	b := create(t, s, snapshots.KindView, "b", "", nil, snapshots.WithLabels(map[string]string{"l": "v"}))
	if err := s.Remove(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, root)
	info, err := s.Stat(ctx, "a")
	if err != nil || info.Kind != snapshots.KindActive {
		t.Errorf("Stat(a) after reopening = %+v, %v; want an active snapshot", info, err)
	}
	if c := create(t, s, snapshots.KindActive, "c", "", nil); c.ID <= b.ID {
		t.Errorf("ID after reopening = %d, want more than %d (IDs are never reused)", c.ID, b.ID)
	}
}

func TestOpenFailsWhileAnotherStoreHoldsTheRoot(t *testing.T) {
	root := t.TempDir()
	openStore(t, root)
	if s, err := Open(root); err == nil {
		s.Close()
		t.Fatal("second Open of the same root succeeded")
	}
}

// BenchmarkSync compares the two ways Commit could make a snapshot durable
// after writing files into it: one syncfs(2) of its filesystem, or an
// fsync(2) of every file and directory of the tree.
func BenchmarkSync(b *testing.B) {
	for _, files := range []int{10, 1000} {
		for _, m := range []struct {
			name string
			sync func(string) error
		}{{"syncfs", syncfs}, {"fsync-tree", fsyncTree}} {
			b.Run(fmt.Sprintf("%s/files=%d", m.name, files), func(b *testing.B) {
				dir := b.TempDir()
				data := make([]byte, 4096)
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					tree := filepath.Join(dir, fmt.Sprint(i))
					if err := os.Mkdir(tree, 0o755); err != nil {
						b.Fatal(err)
					}
					for f := range files {
						if err := os.WriteFile(filepath.Join(tree, fmt.Sprint(f)), data, 0o644); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					if err := m.sync(tree); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// fsyncTree fsyncs every file and directory under dir.
func fsyncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

func openStore(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func create(t *testing.T, s *Store, kind snapshots.Kind, key, parent string, fill func(string, Snapshot) error, opts ...snapshots.Opt) Snapshot {
	t.Helper()
	snap, err := s.Create(t.Context(), kind, key, parent, opts, fill)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// writeFill returns a fill function that writes one file into fs/.
func writeFill(name, data string) func(string, Snapshot) error {
	return func(dir string, _ Snapshot) error {
		return os.WriteFile(filepath.Join(dir, "fs", name), []byte(data), 0o644)
	}
}

// wantEntries fails t unless the snapshots directory holds exactly names.
func wantEntries(t *testing.T, s *Store, names ...string) {
	t.Helper()
	s.removing.Wait() // Remove deletes files in the background
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("entries of %s mismatch (-want +got):\n%s", s.dir, diff)
	}
}
