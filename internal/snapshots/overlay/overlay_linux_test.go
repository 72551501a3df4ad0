package overlay

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/snapshots/snapshotstest"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

func factory(ctx context.Context, root string) (snapshots.Snapshotter, error) {
	return New(root, Config{})
}

// requireOverlay skips t, or fails it under BERTH_TEST_PRIVILEGED=1, unless
// overlayfs works in a temporary directory.
func requireOverlay(t testing.TB) {
	t.Helper()
	if err := Supported(t.TempDir()); err != nil {
		if testutil.Privileged() {
			t.Fatalf("overlayfs is needed (%s=1): %v", testutil.EnvPrivileged, err)
		}
		t.Skipf("overlayfs is needed: %v", err)
	}
}

func TestSnapshotter(t *testing.T) {
	testutil.RequirePrivileged(t)
	requireOverlay(t)
	snapshotstest.Run(t, factory)
}

func BenchmarkPrepareCommit(b *testing.B) {
	testutil.RequirePrivileged(b)
	requireOverlay(b)
	snapshotstest.BenchPrepareCommit(b, factory)
}

func TestMountsPerKindAndDepth(t *testing.T) {
	ctx := t.Context()
	s, err := New(t.TempDir(), Config{MountOptions: []string{"index=off"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fs := func(key string) string {
		t.Helper()
		snap, err := s.store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return s.store.FS(snap.ID)
	}
	do := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err = s.Prepare(ctx, "base-key", "")
	do("Prepare(base-key)", err)
	do("Commit(base)", s.Commit(ctx, "base", "base-key"))
	_, err = s.Prepare(ctx, "mid-key", "base")
	do("Prepare(mid-key)", err)
	do("Commit(mid)", s.Commit(ctx, "mid", "mid-key"))

	tests := []struct {
		name, key, parent string
		create            func(context.Context, string, string, ...snapshots.Opt) ([]mount.Mount, error)
		want              func() mount.Mount
	}{
		{"ActiveWithoutParent", "a0", "", s.Prepare, func() mount.Mount {
			return mount.Mount{Type: "bind", Source: fs("a0"), Options: []string{"bind", "rw"}}
		}},
		{"ActiveOnTwoLayers", "a2", "mid", s.Prepare, func() mount.Mount {
			snap, _ := s.store.Get(ctx, "a2")
			return mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
				"index=off",
				"workdir=" + filepath.Join(s.store.Dir(snap.ID), "work"),
				"upperdir=" + fs("a2"),
				"lowerdir=" + fs("mid") + ":" + fs("base"),
			}}
		}},
		{"ViewWithoutParent", "v0", "", s.View, func() mount.Mount {
			return mount.Mount{Type: "bind", Source: fs("v0"), Options: []string{"bind", "ro"}}
		}},
		{"ViewOfOneLayer", "v1", "base", s.View, func() mount.Mount {
			return mount.Mount{Type: "bind", Source: fs("base"), Options: []string{"bind", "ro"}}
		}},
		{"ViewOfTwoLayers", "v2", "mid", s.View, func() mount.Mount {
			return mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
				"index=off", "ro", "lowerdir=" + fs("mid") + ":" + fs("base"),
			}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.create(ctx, tt.key, tt.parent)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]mount.Mount{tt.want()}, got); diff != "" {
				t.Errorf("mounts mismatch (-want +got):\n%s", diff)
			}
		})
	}

	dir, lowers, err := s.UpperDir(ctx, "a2")
	do("UpperDir(a2)", err)
	if dir != fs("a2") || !cmp.Equal(lowers, []string{fs("mid"), fs("base")}) {
		t.Errorf("UpperDir(a2) = %q, %q; want the upper dir and the parent chain, nearest first", dir, lowers)
	}
}

func TestNewRejectsWhatOverlayOptionsCannotCarry(t *testing.T) {
	for _, tt := range []struct {
		name string
		root string
		cfg  Config
	}{
		{"CommaInRoot", filepath.Join(t.TempDir(), "a,b"), Config{}},
		{"ColonInRoot", filepath.Join(t.TempDir(), "a:b"), Config{}},
		{"Lowerdir", t.TempDir(), Config{MountOptions: []string{"lowerdir=/x"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.root, tt.cfg)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("New: got %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestSupportedRefusesRootOnOverlayfs(t *testing.T) {
	testutil.RequirePrivileged(t)
	requireOverlay(t)
	dir := t.TempDir()
	lower, upper, work, merged := filepath.Join(dir, "l"), filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "m")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := mount.All([]mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work,
	}}}, merged); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mount.UnmountAll(merged); err != nil {
			t.Error(err)
		}
	})

	err := Supported(filepath.Join(merged, "root"))
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "on overlayfs") {
		t.Errorf("Supported on overlayfs: got %v, want ErrFailedPrecondition saying the root is on overlayfs", err)
	}
}
