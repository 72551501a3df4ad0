package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
)

// daemonSnapshotter returns the snapshotter the daemon advertises.
func daemonSnapshotter(t *testing.T, c *client.Client) string {
	t.Helper()
	info, err := c.Server(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range info.Features {
		if name, ok := strings.CutPrefix(f, "snapshotter="); ok {
			return name
		}
	}
	t.Fatalf("no snapshotter in features %v", info.Features)
	return ""
}

func TestSnapshotsOfAnEmptyNamespace(t *testing.T) {
	ctx := context.Background()
	c := connect(t, "snaps")
	if _, err := c.CreateNamespace(ctx, c.Namespace(), nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", daemonSnapshotter(t, c)} {
		sn := c.Snapshots(name)
		list, err := sn.List(ctx)
		if err != nil || len(list) != 0 {
			t.Errorf("snapshotter %q: list = %v, %v", name, list, err)
		}
		if list, err := sn.List(ctx, "kind==committed", "labels.team==web"); err != nil || len(list) != 0 {
			t.Errorf("snapshotter %q: filtered list = %v, %v", name, list, err)
		}
	}
	sn := c.Snapshots("")
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"stat", func() error { _, err := sn.Stat(ctx, "sha256:absent"); return err }()},
		{"usage", func() error { _, err := sn.Usage(ctx, "sha256:absent"); return err }()},
		{"mounts", func() error { _, err := sn.Mounts(ctx, "sha256:absent"); return err }()},
		{"remove", sn.Remove(ctx, "sha256:absent")},
		{"set labels", func() error {
			_, err := sn.SetLabels(ctx, "sha256:absent", map[string]string{"a": "b"})
			return err
		}()},
		{"replace labels", func() error { _, err := sn.ReplaceLabels(ctx, "sha256:absent", nil); return err }()},
	} {
		if !errors.Is(tt.err, client.ErrNotFound) || !strings.Contains(tt.err.Error(), `snapshot "sha256:absent"`) {
			t.Errorf("%s of a missing snapshot: %v", tt.name, tt.err)
		}
	}
}

func TestSnapshotErrorsAreExplained(t *testing.T) {
	ctx := context.Background()
	c := connect(t, "snap-errors")
	if _, err := c.Snapshots("").List(ctx); !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), `namespace "snap-errors-`) {
		t.Errorf("list in a missing namespace: %v", err)
	}
	if _, err := c.CreateNamespace(ctx, c.Namespace(), nil); err != nil {
		t.Fatal(err)
	}
	want := daemonSnapshotter(t, c)
	_, err := c.Snapshots("zfs").List(ctx)
	if !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), `snapshotter "zfs"`) || !strings.Contains(err.Error(), want) {
		t.Errorf("unknown snapshotter: %v", err)
	}
	if _, err := c.DiskUsage(ctx, "zfs"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("disk usage of an unknown snapshotter: %v", err)
	}
	if _, err := c.Snapshots("").List(ctx, "name~=("); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("bad filter: %v", err)
	}
	if _, err := c.Snapshots("").Stat(ctx, ""); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("empty key: %v", err)
	}
}

func TestDiskUsageCountsWhatLeasesAndRootsHold(t *testing.T) {
	ctx := context.Background()
	c := connect(t, "df")
	if _, err := c.CreateNamespace(ctx, c.Namespace(), nil); err != nil {
		t.Fatal(err)
	}
	du, err := c.DiskUsage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if du.Snapshotter != daemonSnapshotter(t, c) || du.Content.Total.Count != 0 || du.Snapshots.Total.Count != 0 ||
		du.Images.Total.Count != 0 || len(du.Images.Images) != 0 {
		t.Fatalf("empty namespace: %+v", du)
	}

	if _, err := c.Ingest(ctx, strings.NewReader("rooted"), client.IngestOpts{Ref: "r", Labels: map[string]string{client.LabelGCRoot: "t"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLease(ctx, "hold", 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ingest(client.WithLease(ctx, "hold"), strings.NewReader("leased!"), client.IngestOpts{Ref: "l"}); err != nil {
		t.Fatal(err)
	}
	du, err = c.DiskUsage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := client.StoreUsage{Total: client.Total{Count: 2, Bytes: 13}, Held: client.Total{Count: 2, Bytes: 13}}
	if du.Content != want {
		t.Errorf("content = %+v, want %+v", du.Content, want)
	}
}
