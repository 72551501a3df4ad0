package images

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/remote/remotetest"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// loader writes blobs into namespace ns as a client does before
// Images.Create (berth load): under a lease of its own.
type loader struct {
	t   *testing.T
	e   *env
	ctx context.Context
	cs  content.Store
}

func newLoader(t *testing.T, e *env, ns string) *loader {
	t.Helper()
	ctx := namespacesCtx(ns)
	l, err := e.db.CreateLease(ctx, leases.Lease{})
	if err != nil {
		t.Fatal(err)
	}
	return &loader{t: t, e: e, ctx: leases.WithLease(ctx, l.ID), cs: e.db.ContentStore()}
}

func (l *loader) blob(data []byte) digest.Digest {
	l.t.Helper()
	d := digest.FromBytes(data)
	err := content.WriteBlob(l.ctx, l.cs, content.WriterOpts{Ref: "load-" + d.String(), Total: int64(len(data)), Expected: d}, bytes.NewReader(data), nil)
	if err != nil && !errdefs.IsAlreadyExists(err) {
		l.t.Fatal(err)
	}
	return d
}

// image writes img's config, layers (but those in skip) and manifest, and
// returns the manifest's descriptor.
func (l *loader) image(img v1.Image, skip ...digest.Digest) ocispec.Descriptor {
	l.t.Helper()
	cfg, err := img.RawConfigFile()
	if err != nil {
		l.t.Fatal(err)
	}
	l.blob(cfg)
	layers, err := img.Layers()
	if err != nil {
		l.t.Fatal(err)
	}
	for _, ly := range layers {
		d, err := ly.Digest()
		if err != nil {
			l.t.Fatal(err)
		}
		if contains(skip, digest.Digest(d.String())) {
			continue
		}
		rc, err := ly.Compressed()
		if err != nil {
			l.t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			l.t.Fatal(err)
		}
		l.blob(data)
	}
	raw, err := img.RawManifest()
	if err != nil {
		l.t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		l.t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: string(mt), Digest: l.blob(raw), Size: int64(len(raw))}
}

func contains(ds []digest.Digest, d digest.Digest) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// refLabels returns the GC reference labels of blob d in ctx's namespace.
func refLabels(t *testing.T, ctx context.Context, cs content.Store, d digest.Digest) map[string]string {
	t.Helper()
	info, err := cs.Info(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range info.Labels {
		if strings.HasPrefix(k, "berth.io/gc.ref.") {
			out[k] = v
		}
	}
	return out
}

func TestCreateUnpacksContentLikeAPull(t *testing.T) {
	e := newEnv(t)
	img := testImage(t)
	e.reg.PushImage(t, "app/web:v1", img)
	pulledRes, err := e.puller.Pull(nsCtx(), e.reg.Host+"/app/web:v1", PullOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}

	l := newLoader(t, e, "loaded")
	target := l.image(img)
	res, err := e.puller.Create(l.ctx, "example.com/app/web:v1", target, CreateOptions{Unpack: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ChainID != pulledRes.ChainID || res.Target.Digest != pulledRes.Target.Digest {
		t.Errorf("create gave %+v, the pull %+v", res, pulledRes)
	}
	tree := readTree(t, e.sn, res.ChainID.String())
	if tree["etc/new"] != "new\n" || tree["usr/bin/other"] != "other\n" {
		t.Errorf("unpacked tree %v", tree)
	}
	rec, err := e.db.GetImage(l.ctx, "example.com/app/web:v1")
	if err != nil || rec.Target.Digest != target.Digest {
		t.Fatalf("image record %+v, %v", rec, err)
	}
	// The same GC references as the pull wrote, on manifest and config.
	_, m, err := Manifest(l.ctx, e.db.ContentStore(), target, ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []digest.Digest{target.Digest, m.Config.Digest} {
		got := refLabels(t, l.ctx, e.db.ContentStore(), d)
		want := refLabels(t, nsCtx(), e.db.ContentStore(), d)
		if diff := cmp.Diff(want, got); diff != "" || len(got) == 0 {
			t.Errorf("labels of %s differ from the pull's (-pull +create):\n%s", d, diff)
		}
	}
	// Once the loader's lease is gone, the image alone holds everything.
	ls, err := e.db.ListLeases(l.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ls := range ls {
		if err := e.db.DeleteLease(l.ctx, ls.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.GarbageCollect(l.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sn.Stat(l.ctx, res.ChainID.String()); err != nil {
		t.Errorf("snapshot collected while the image exists: %v", err)
	}
	for _, ly := range m.Layers {
		if _, err := e.db.ContentStore().Info(l.ctx, ly.Digest); err != nil {
			t.Errorf("layer %s collected while the image exists: %v", ly.Digest, err)
		}
	}

	// A second create points the name at another image.
	l = newLoader(t, e, "loaded")
	other := l.image(remotetest.RandomImage(t, 1, 1024))
	if _, err := e.puller.Create(l.ctx, "example.com/app/web:v1", other, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rec, err := e.db.GetImage(l.ctx, "example.com/app/web:v1"); err != nil || rec.Target.Digest != other.Digest {
		t.Errorf("image after the second create: %+v, %v", rec, err)
	}
}

func TestCreateWithMissingBlobNamesItAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	img := testImage(t)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := layers[2].Digest()
	if err != nil {
		t.Fatal(err)
	}
	gone := digest.Digest(d.String())
	l := newLoader(t, e, "partial")
	target := l.image(img, gone)

	_, err = e.puller.Create(l.ctx, "example.com/partial:v1", target, CreateOptions{Unpack: true})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "layer "+gone.String()) {
		t.Fatalf("create without a layer: %v (want failed precondition naming %s)", err, gone)
	}
	if _, err := e.db.GetImage(l.ctx, "example.com/partial:v1"); !errdefs.IsNotFound(err) {
		t.Errorf("image recorded: %v", err)
	}
	n := 0
	if err := e.sn.Walk(l.ctx, func(snapshots.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d snapshots written by a create that failed", n)
	}
	if labels := refLabels(t, l.ctx, e.db.ContentStore(), target.Digest); len(labels) != 0 {
		t.Errorf("manifest labelled by a create that failed: %v", labels)
	}
	if _, err := e.puller.Create(l.ctx, "example.com/partial:v1", ocispec.Descriptor{MediaType: "application/octet-stream", Digest: target.Digest, Size: target.Size}, CreateOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("create of a target that is no manifest: %v", err)
	}
}

func TestCreateIndexNeedsOnlyThePlatformItUnpacks(t *testing.T) {
	e := newEnv(t)
	idx := remotetest.Index(t, "linux/amd64", "linux/arm64/v8")
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	l := newLoader(t, e, "multi")
	var amd64 digest.Digest
	for _, m := range im.Manifests {
		if m.Platform.Architecture == "amd64" {
			amd64 = digest.Digest(m.Digest.String())
			continue
		}
		sub, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		l.image(sub)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: l.blob(raw), Size: int64(len(raw))}

	res, err := e.puller.Create(l.ctx, "example.com/multi:v1", target, CreateOptions{Unpack: true, Platform: "linux/arm64/v8"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Platform == nil || res.Manifest.Platform.Architecture != "arm64" || res.ChainID == "" {
		t.Errorf("created %+v, want arm64 unpacked", res)
	}
	if _, err := e.sn.Stat(l.ctx, res.ChainID.String()); err != nil {
		t.Errorf("arm64 snapshot: %v", err)
	}
	_, err = e.puller.Create(l.ctx, "example.com/multi:amd", target, CreateOptions{Unpack: true, Platform: "linux/amd64"})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), amd64.String()) {
		t.Errorf("unpack of the absent platform: %v (want failed precondition naming %s)", err, amd64)
	}
	if _, err := e.puller.Create(l.ctx, "example.com/multi:packed", target, CreateOptions{Platform: "linux/s390x"}); err != nil {
		t.Errorf("create without unpacking: %v", err)
	}
}
