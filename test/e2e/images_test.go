package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// busyboxRef pushes the busybox-static test image to a fresh registry and
// returns its reference.
func busyboxRef(t *testing.T) string {
	t.Helper()
	host := testutil.StartRegistry(t, "")
	ref := host + "/library/busybox:e2e"
	testutil.PushImage(t, testutil.BusyboxImage(t), ref)
	return ref
}

func TestPullThroughRegistryAndManageImages(t *testing.T) {
	d := newDaemon(t)
	d.start()
	ref := busyboxRef(t)
	out := d.berth(nil, "pull", ref).ok(t)
	if !strings.Contains(out, ref+": pulled sha256:") {
		t.Errorf("pull output %q", out)
	}
	var imgs []client.Image
	if err := json.Unmarshal([]byte(d.berth(nil, "images", "--format", "json").ok(t)), &imgs); err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Name != ref || imgs[0].Size == 0 || imgs[0].Platform == "" {
		t.Fatalf("images = %+v", imgs)
	}
	// The unpacked snapshot holds busybox: its chainID is the config's only diffID.
	var doc struct {
		Config struct {
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(d.berth(nil, "image", "inspect", ref).ok(t)), &doc); err != nil || len(doc.Config.RootFS.DiffIDs) != 1 {
		t.Fatalf("inspect: %v %+v", err, doc)
	}
	found := false
	filepath.Walk(filepath.Join(d.root, "snapshots"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, "/fs/bin/busybox") && fi.Mode().IsRegular() {
			found = true
		}
		return nil
	})
	if !found {
		t.Error("no unpacked /bin/busybox under the snapshots directory")
	}

	// Re-pull: nothing to fetch.
	if out := d.berth(nil, "pull", ref).ok(t); !strings.Contains(out, "pulled") {
		t.Errorf("re-pull: %q", out)
	}
	d.berth(nil, "tag", ref, "localhost/mine:v1").ok(t)
	if out := d.berth(nil, "images", "-q").ok(t); !strings.Contains(out, "localhost/mine:v1") {
		t.Errorf("tagged image missing: %q", out)
	}
	d.berth(nil, "rmi", "localhost/mine:v1").ok(t)
	d.berth(nil, "rmi", imgs[0].Target.Digest).ok(t)
	if out := strings.TrimSpace(d.berth(nil, "images", "-q").ok(t)); out != "" {
		t.Errorf("images after rmi: %q", out)
	}
	d.berth(nil, "system", "prune").ok(t)
	left, _ := filepath.Glob(filepath.Join(d.root, "content", "blobs", "sha256", "*"))
	if len(left) != 0 {
		t.Errorf("%d blobs left after rmi and prune", len(left))
	}
}

func TestPullBadReferencesAreExplained(t *testing.T) {
	d := newDaemon(t)
	d.start()
	host := testutil.StartRegistry(t, "")
	d.berth(nil, "pull", "UPPER/case").fails(t, 1, "UPPER/case")
	d.berth(nil, "pull", host+"/no/such:tag").fails(t, 1, "not found")
	d.berth(nil, "pull", "127.0.0.1:1/nothing:here").fails(t, 1, "127.0.0.1:1")
	c := d.client("default")
	if _, err := c.GetImage(context.Background(), host+"/no/such:tag"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("image recorded after a failed pull: %v", err)
	}
}

func TestImageMountShowsTheRootFilesystem(t *testing.T) {
	d := newDaemon(t)
	d.start()
	ref := busyboxRef(t)
	d.berth(nil, "pull", "-q", ref).ok(t)
	dir := t.TempDir()
	d.berth(nil, "image", "mount", ref, dir).ok(t)
	t.Cleanup(func() { d.berth(nil, "image", "unmount", dir) })
	if fi, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("busybox in the mounted image: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), []byte("x"), 0644); err == nil {
		t.Error("the image mount is writable")
	}
	d.berth(nil, "image", "mount", ref, dir).fails(t, 1, "already an image mount")
	// The mount keeps the image's snapshot through rmi and prune.
	d.berth(nil, "rmi", ref).ok(t)
	d.berth(nil, "system", "prune").ok(t)
	if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err != nil {
		t.Errorf("mounted files gone after rmi and prune: %v", err)
	}
	d.berth(nil, "image", "unmount", dir).ok(t)
	if _, err := os.Stat(filepath.Join(dir, "bin")); !os.IsNotExist(err) {
		t.Errorf("still mounted after unmount: %v", err)
	}
	d.berth(nil, "image", "unmount", dir).fails(t, 1, "not an image mount")
	d.berth(nil, "system", "prune").ok(t)
	if n := countDirs(t, d.root); n != 0 {
		t.Errorf("%d snapshot directories left after unmount and prune", n)
	}
}
