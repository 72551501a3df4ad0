package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/content/local"
	"github.com/berth-dev/berth/internal/diff"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/berth-dev/berth/internal/remote/remotetest"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/snapshots/overlay"
	"github.com/berth-dev/berth/internal/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// env is a pull pipeline over real stores: local content, overlay
// snapshots, metadata, and an in-process registry.
type env struct {
	db       *metadata.DB
	puller   *Puller
	sn       snapshots.Snapshotter
	reg      *remotetest.Registry
	cfg      Config // the puller's
	hostsDir string // its registry client's hosts.toml directory
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequirePrivileged(t)
	root := t.TempDir()
	cs, err := local.New(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	ov, err := overlay.New(filepath.Join(root, "snapshots"), overlay.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ov.Close() })
	db, err := metadata.Open(context.Background(), filepath.Join(root, "meta.db"), cs, metadata.Options{
		GCDelay: -1, Snapshotters: map[string]snapshots.Snapshotter{"overlayfs": ov},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	hostsDir := t.TempDir()
	rcfg := remote.Config{HostsDir: hostsDir}
	rc := remote.New(rcfg)
	t.Cleanup(func() { rc.Close() })
	sn := db.Snapshotter("overlayfs")
	cfg := Config{
		Content: db.ContentStore(), Snapshotter: sn, SnapshotterName: "overlayfs",
		Whiteouts: diff.OverlayWhiteouts, Remote: rc, RemoteConfig: rcfg, Leases: db, Images: db,
	}
	return &env{
		db: db, sn: sn, reg: remotetest.New(t, remotetest.Options{}),
		puller: New(cfg), cfg: cfg, hostsDir: hostsDir,
	}
}

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// layer builds a gzip layer from entries.
func layer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testImage(t *testing.T) v1.Image {
	img, err := mutate.AppendLayers(empty.Image,
		layer(t,
			entry{name: "etc/", typ: tar.TypeDir, mode: 0755},
			entry{name: "etc/hello", body: "hi\n"},
			entry{name: "usr/", typ: tar.TypeDir, mode: 0755},
			entry{name: "usr/bin/", typ: tar.TypeDir, mode: 0755},
			entry{name: "usr/bin/tool", body: "#!/bin/sh\n", mode: 0755},
			entry{name: "bin", typ: tar.TypeSymlink, link: "usr/bin"},
		),
		layer(t, entry{name: "etc/.wh.hello"}, entry{name: "etc/new", body: "new\n"}),
		layer(t, entry{name: "usr/bin/.wh..wh..opq"}, entry{name: "usr/bin/other", body: "other\n", mode: 0755}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func nsCtx() context.Context { return namespaces.WithNamespace(context.Background(), "test") }

// readTree mounts a view of chainID and returns file name → content
// ("-> target" for symlinks) below root.
func readTree(t *testing.T, sn snapshots.Snapshotter, chainID string) map[string]string {
	t.Helper()
	ctx := nsCtx()
	mounts, err := sn.View(ctx, "check-"+chainID, chainID)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Remove(ctx, "check-"+chainID)
	tree := map[string]string{}
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				tree[rel] = "-> " + target
			case fi.Mode().IsRegular():
				b, _ := os.ReadFile(p)
				tree[rel] = string(b)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestPullUnpacksLayersWithWhiteouts(t *testing.T) {
	e := newEnv(t)
	e.reg.PushImage(t, "app/web:v1", testImage(t))
	ctx := nsCtx()
	var phases []Phase
	var mu sync.Mutex
	res, err := e.puller.Pull(ctx, e.reg.Host+"/app/web:v1", PullOptions{}, func(p Progress) {
		mu.Lock()
		phases = append(phases, p.Phase)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	tree := readTree(t, e.sn, res.ChainID.String())
	want := map[string]string{"etc/new": "new\n", "usr/bin/other": "other\n", "bin": "-> usr/bin"}
	for k, v := range want {
		if tree[k] != v {
			t.Errorf("%s = %q, want %q", k, tree[k], v)
		}
	}
	for _, gone := range []string{"etc/hello", "usr/bin/tool"} {
		if _, ok := tree[gone]; ok {
			t.Errorf("%s survived its whiteout", gone)
		}
	}
	img, err := e.db.GetImage(ctx, e.reg.Host+"/app/web:v1")
	if err != nil || img.Target.Digest != res.Target.Digest {
		t.Fatalf("image record = %+v, %v", img, err)
	}
	if !strings.Contains(fmtPhases(phases), string(PhaseUnpacking)) || !strings.Contains(fmtPhases(phases), string(PhaseDownloading)) {
		t.Errorf("progress phases %v", phases)
	}

	// A re-pull fetches nothing but the manifest resolution.
	e.reg.ResetRequests()
	phases = nil
	if _, err := e.puller.Pull(ctx, e.reg.Host+"/app/web:v1", PullOptions{}, func(p Progress) { phases = append(phases, p.Phase) }); err != nil {
		t.Fatal(err)
	}
	if n := e.reg.Count("GET", "/blobs/"); n != 0 {
		t.Errorf("re-pull fetched %d blobs", n)
	}
	for _, p := range phases {
		if p == PhaseDownloading || p == PhaseUnpacking {
			t.Errorf("re-pull went through phase %s", p)
		}
	}

	// The lease is gone; the image alone keeps content and snapshots.
	if ls, _ := e.db.ListLeases(ctx); len(ls) != 0 {
		t.Errorf("leases left after pull: %+v", ls)
	}
	if _, err := e.db.GarbageCollect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Stat(ctx, res.ChainID.String()); err != nil {
		t.Errorf("snapshot collected while the image exists: %v", err)
	}
	if err := e.db.DeleteImage(ctx, img.Name, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Stat(ctx, res.ChainID.String()); !errdefs.IsNotFound(err) {
		t.Errorf("snapshot kept after the image went: %v", err)
	}
}

func fmtPhases(ps []Phase) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(string(p) + " ")
	}
	return b.String()
}

func TestPullPicksPlatformFromIndex(t *testing.T) {
	e := newEnv(t)
	e.reg.PushIndex(t, "multi:v1", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	ctx := nsCtx()
	res, err := e.puller.Pull(ctx, e.reg.Host+"/multi:v1", PullOptions{Platform: "linux/arm64/v8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Platform == nil || res.Manifest.Platform.Architecture != "arm64" {
		t.Errorf("unpacked manifest %+v, want the arm64 one", res.Manifest)
	}
	if _, err := e.puller.Pull(ctx, e.reg.Host+"/multi:v1", PullOptions{Platform: "linux/s390x"}, nil); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("missing platform: %v (want not found listing the platforms)", err)
	}
}

func TestPullRejectsTamperedBlobAndRecordsNothing(t *testing.T) {
	e := newEnv(t)
	e.reg.PushImage(t, "bad:v1", testImage(t))
	e.reg.Inject(remotetest.Fault{Method: "GET", Path: "/blobs/sha256:", Action: remotetest.Tamper()})
	ctx := nsCtx()
	_, err := e.puller.Pull(ctx, e.reg.Host+"/bad:v1", PullOptions{}, nil)
	if err == nil {
		t.Fatal("pull of tampered blobs succeeded")
	}
	if _, err := e.db.GetImage(ctx, e.reg.Host+"/bad:v1"); !errdefs.IsNotFound(err) {
		t.Errorf("image recorded after a failed pull: %v", err)
	}
	e.reg.ClearFaults()
	if _, err := e.puller.Pull(ctx, e.reg.Host+"/bad:v1", PullOptions{}, nil); err != nil {
		t.Errorf("pull after the fault cleared: %v", err)
	}
}

func TestConcurrentPullsShareDownloads(t *testing.T) {
	e := newEnv(t)
	e.reg.PushImage(t, "shared:v1", remotetest.RandomImage(t, 3, 1<<20))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.puller.Pull(nsCtx(), e.reg.Host+"/shared:v1", PullOptions{}, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Error(err)
		}
	}
	if n := e.reg.Count("GET", "/blobs/"); n > 4 { // 3 layers + config, once each
		t.Errorf("4 concurrent pulls made %d blob requests, want at most 4", n)
	}
}
