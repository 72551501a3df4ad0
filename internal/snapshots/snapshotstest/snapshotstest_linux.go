package snapshotstest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/testutil"
)

// Factory opens the snapshotter kept in root (an existing, possibly empty
// directory). The suite closes it; Close must release everything, so that
// the factory can open the same root again.
type Factory func(ctx context.Context, root string) (snapshots.Snapshotter, error)

type testCase struct {
	name string
	fn   func(t *testing.T, factory Factory)
}

// Run checks the behaviour every Snapshotter must have: the lifecycle of
// active, view and committed snapshots through real mounts, overlay-style
// deletions, the preservation of file attributes, the error kinds, Stat,
// Update, Usage, Walk filters, Cleanup, a 128-layer chain, concurrency,
// persistence across reopening, and UpperDirer when implemented. Cases run
// in parallel, each on its own root.
func Run(t *testing.T, factory Factory) {
	testutil.RequirePrivileged(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, factory)
		})
	}
}

// open opens the snapshotter in root and closes it when t ends, unless the
// returned function has closed it already.
func open(t testing.TB, factory Factory, root string) (snapshots.Snapshotter, func()) {
	t.Helper()
	sn, err := factory(testContext(t), root)
	if err != nil {
		t.Fatalf("open snapshotter in %s: %v", root, err)
	}
	var once sync.Once
	closeFn := func() {
		once.Do(func() {
			if err := sn.Close(); err != nil {
				t.Errorf("close snapshotter in %s: %v", root, err)
			}
		})
	}
	t.Cleanup(closeFn)
	return sn, closeFn
}

// newSnapshotter opens a snapshotter in a new temporary directory.
func newSnapshotter(t testing.TB, factory Factory) snapshots.Snapshotter {
	t.Helper()
	sn, _ := open(t, factory, t.TempDir())
	return sn
}

// mountT performs mounts on a new temporary directory and returns it with a
// function that unmounts it; t's cleanup unmounts it at the latest.
func mountT(t testing.TB, mounts []mount.Mount) (root string, unmount func()) {
	t.Helper()
	root = t.TempDir()
	if err := mount.All(mounts, root); err != nil {
		t.Fatal(err) // names the mount type, source and target
	}
	unmount = func() {
		if err := mount.UnmountAll(root); err != nil {
			t.Errorf("unmount %s: %v", root, err)
		}
	}
	t.Cleanup(unmount)
	return root, unmount
}

func prepare(t testing.TB, sn snapshots.Snapshotter, key, parent string, opts ...snapshots.Opt) []mount.Mount {
	t.Helper()
	mounts, err := sn.Prepare(testContext(t), key, parent, opts...)
	if err != nil {
		t.Fatalf("Prepare(%q, %q): %v", key, parent, err)
	}
	return mounts
}

func view(t testing.TB, sn snapshots.Snapshotter, key, parent string, opts ...snapshots.Opt) []mount.Mount {
	t.Helper()
	mounts, err := sn.View(testContext(t), key, parent, opts...)
	if err != nil {
		t.Fatalf("View(%q, %q): %v", key, parent, err)
	}
	return mounts
}

func commit(t testing.TB, sn snapshots.Snapshotter, name, key string, opts ...snapshots.Opt) {
	t.Helper()
	if err := sn.Commit(testContext(t), name, key, opts...); err != nil {
		t.Fatalf("Commit(%q, %q): %v", name, key, err)
	}
}

func remove(t testing.TB, sn snapshots.Snapshotter, key string) {
	t.Helper()
	if err := sn.Remove(testContext(t), key); err != nil {
		t.Fatalf("Remove(%q): %v", key, err)
	}
}

func stat(t testing.TB, sn snapshots.Snapshotter, key string) snapshots.Info {
	t.Helper()
	info, err := sn.Stat(testContext(t), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

// layer makes the committed snapshot name on parent: it prepares it, mounts
// it, lets apply change the files, unmounts it and commits it with opts.
func layer(t testing.TB, sn snapshots.Snapshotter, name, parent string, apply func(root string), opts ...snapshots.Opt) {
	t.Helper()
	key := "extract " + name
	root, unmount := mountT(t, prepare(t, sn, key, parent))
	if apply != nil {
		apply(root)
	}
	unmount()
	commit(t, sn, name, key, opts...)
}

// inspect mounts a view of the committed snapshot name, calls check with its
// root, then unmounts and removes the view.
func inspect(t testing.TB, sn snapshots.Snapshotter, name string, check func(root string)) {
	t.Helper()
	key := "inspect " + name
	root, unmount := mountT(t, view(t, sn, key, name))
	check(root)
	unmount()
	remove(t, sn, key)
}

// walkNames returns the sorted names Walk yields for filters.
func walkNames(t testing.TB, sn snapshots.Snapshotter, filters ...string) []string {
	t.Helper()
	var names []string
	err := sn.Walk(testContext(t), func(info snapshots.Info) error {
		names = append(names, info.Name)
		return nil
	}, filters...)
	if err != nil {
		t.Fatalf("Walk(%q): %v", filters, err)
	}
	slices.Sort(names)
	return names
}

// wantErr fails t unless err is of kind.
func wantErr(t testing.TB, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got error %v, want %v", what, err, kind)
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantFile fails t unless the file at path holds data.
func wantFile(t testing.TB, path, data string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
	} else if string(b) != data {
		t.Errorf("%s holds %q, want %q", path, b, data)
	}
}

// wantMissing fails t if path exists.
func wantMissing(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: stat error %v, want it to be missing", path, err)
	}
}

// namespace is the namespace the suite's calls carry
// (namespaces.WithNamespace), so snapshotters that require one work unchanged.
const namespace = "snapshotstest"

func testContext(tb testing.TB) context.Context {
	return namespaces.WithNamespace(tb.Context(), namespace)
}
