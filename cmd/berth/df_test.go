package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/google/go-cmp/cmp"
)

// testDiskUsage: two images sharing a 1 MiB layer blob and its 2 MiB
// snapshot, one of them in use, plus a leased blob and an unreferenced
// snapshot.
var testDiskUsage = client.DiskUsage{
	Snapshotter: "overlayfs",
	Content: client.StoreUsage{
		Total:        client.Total{Count: 6, Bytes: 3 << 20},
		Shared:       client.Total{Count: 1, Bytes: 1 << 20},
		Unique:       client.Total{Count: 4, Bytes: 1<<20 + 512<<10},
		Held:         client.Total{Count: 1, Bytes: 512 << 10},
		Reclaimable:  client.Total{Count: 2, Bytes: 1 << 20},
		Unreferenced: client.Total{},
	},
	Snapshots: client.StoreUsage{
		Total:        client.Total{Count: 4, Bytes: 8 << 20},
		Shared:       client.Total{Count: 1, Bytes: 2 << 20},
		Unique:       client.Total{Count: 2, Bytes: 4 << 20},
		Unreferenced: client.Total{Count: 1, Bytes: 2 << 20},
		Reclaimable:  client.Total{Count: 2, Bytes: 4 << 20},
	},
	Images: client.ImagesUsage{
		Total: client.Total{Count: 2, Bytes: 8<<20 + 512<<10}, InUse: 1, Reclaimable: 3 << 20,
		Images: []client.ImageUsage{
			{Name: "docker.io/library/app:v1", Content: client.Total{Count: 3, Bytes: 2 << 20}, Snapshots: client.Total{Count: 2, Bytes: 4 << 20},
				Size: 6 << 20, Shared: 3 << 20, Unique: 3 << 20, ActiveSnapshots: 1},
			{Name: "docker.io/library/base:1", Content: client.Total{Count: 2, Bytes: 1<<20 + 512<<10}, Snapshots: client.Total{Count: 1, Bytes: 2 << 20},
				Size: 3<<20 + 512<<10, Shared: 3 << 20, Unique: 512 << 10},
		},
	},
}

func TestPrintDiskUsage(t *testing.T) {
	summary := "" +
		"TYPE        TOTAL   ACTIVE   SIZE      RECLAIMABLE\n" +
		"Images      2       1        8.5 MiB   3 MiB (35%)\n" +
		"Content     6       6        3 MiB     1 MiB (33%)\n" +
		"Snapshots   4       3        8 MiB     4 MiB (50%)\n"
	for _, tc := range []struct {
		name    string
		du      client.DiskUsage
		verbose bool
		want    string
	}{
		{"summary", testDiskUsage, false, summary},
		{"verbose", testDiskUsage, true, summary + "\n" +
			"Images space usage:\n" +
			"NAME                       SIZE      SHARED   UNIQUE    CONTENT   SNAPSHOTS   ACTIVE\n" +
			"docker.io/library/app:v1   6 MiB     3 MiB    3 MiB     2 MiB     4 MiB       1\n" +
			"docker.io/library/base:1   3.5 MiB   3 MiB    512 KiB   1.5 MiB   2 MiB       0\n" +
			"\n" +
			"Content and snapshots (overlayfs) by use:\n" +
			"TYPE        SHARED   UNIQUE    HELD      UNREFERENCED\n" +
			"Content     1 MiB    1.5 MiB   512 KiB   0 B\n" +
			"Snapshots   2 MiB    4 MiB     0 B       2 MiB\n"},
		{"empty", client.DiskUsage{Snapshotter: "native"}, false, "" +
			"TYPE        TOTAL   ACTIVE   SIZE   RECLAIMABLE\n" +
			"Images      0       0        0 B    0 B\n" +
			"Content     0       0        0 B    0 B\n" +
			"Snapshots   0       0        0 B    0 B\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := printDiskUsage(&buf, tc.du, tc.verbose); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReclaimable(t *testing.T) {
	for _, tc := range []struct {
		n, total int64
		want     string
	}{
		{0, 0, "0 B"},
		{0, 100, "0 B (0%)"},
		{100, 100, "100 B (100%)"},
		{1, 3, "1 B (33%)"},
		{2, 3, "2 B (67%)"},
		{3 << 20, 4 << 20, "3 MiB (75%)"},
	} {
		if got := reclaimable(tc.n, tc.total); got != tc.want {
			t.Errorf("reclaimable(%d, %d) = %q, want %q", tc.n, tc.total, got, tc.want)
		}
	}
}

func TestDiskUsageJSONIsTheClientType(t *testing.T) {
	var buf bytes.Buffer
	if err := printJSON(&buf, testDiskUsage); err != nil {
		t.Fatal(err)
	}
	var got client.DiskUsage
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testDiskUsage, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var raw struct {
		Content map[string]any `json:"content"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.Content["reclaimable"]; !ok {
		t.Errorf("json has no content.reclaimable: %s", buf.String())
	}
}
