package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// memStore is a Fetcher over blobs in memory that counts fetches.
type memStore struct {
	mu      sync.Mutex
	blobs   map[digest.Digest][]byte
	fetches map[digest.Digest]int
}

func newMemStore() *memStore {
	return &memStore{blobs: map[digest.Digest][]byte{}, fetches: map[digest.Digest]int{}}
}

func (s *memStore) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, errdefs.ErrNotFound)
	}
	s.fetches[desc.Digest]++
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (s *memStore) add(mediaType string, data []byte) ocispec.Descriptor {
	d := digest.FromBytes(data)
	s.mu.Lock()
	s.blobs[d] = data
	s.mu.Unlock()
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func (s *memStore) addJSON(t *testing.T, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return s.add(mediaType, data)
}

// layerTar is an uncompressed layer holding one file.
func layerTar(t *testing.T, file, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testImage stores an OCI image for platform ("linux/amd64") whose layers
// hold one file each with the given contents (gzip), and returns its
// manifest descriptor, with the platform set.
func (s *memStore) testImage(t *testing.T, platform string, contents ...string) ocispec.Descriptor {
	t.Helper()
	os, arch, _ := strings.Cut(platform, "/")
	arch, variant, _ := strings.Cut(arch, "/")
	p := ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
	cfg := ocispec.Image{Platform: p, RootFS: ocispec.RootFS{Type: "layers"}}
	var layers []ocispec.Descriptor
	for i, c := range contents {
		raw := layerTar(t, fmt.Sprintf("file%d", i), c)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
		layers = append(layers, s.add(ocispec.MediaTypeImageLayerGzip, gzipped(t, raw)))
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    s.addJSON(t, ocispec.MediaTypeImageConfig, cfg),
		Layers:    layers,
	}
	d := s.addJSON(t, ocispec.MediaTypeImageManifest, m)
	d.Platform = &p
	return d
}

// testIndex stores an index of one image per platform, each with a layer
// of its own and the shared layer "shared".
func (s *memStore) testIndex(t *testing.T, platforms ...string) ocispec.Descriptor {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, p := range platforms {
		idx.Manifests = append(idx.Manifests, s.testImage(t, p, "shared", "only "+p))
	}
	return s.addJSON(t, ocispec.MediaTypeImageIndex, idx)
}

// objects returns every object of the images under roots, by digest, as
// Walk reads them through f, checked against their digests.
func objects(t *testing.T, f Fetcher, roots ...ocispec.Descriptor) map[digest.Digest][]byte {
	t.Helper()
	out := map[digest.Digest][]byte{}
	err := Walk(context.Background(), f, roots, func(desc ocispec.Descriptor, manifest []byte) error {
		data := manifest
		if data == nil {
			var buf bytes.Buffer
			if err := copyBlob(context.Background(), &buf, f, desc); err != nil {
				return err
			}
			data = buf.Bytes()
		}
		out[desc.Digest] = data
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return out
}

// tarEntries lists the names of a tar's entries.
func tarEntries(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func openBytes(t *testing.T, data []byte) *Reader {
	t.Helper()
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

func TestWalkVisitsChildrenFirstAndEachDigestOnce(t *testing.T) {
	s := newMemStore()
	idx := s.testIndex(t, "linux/amd64", "linux/arm64/v8")
	var order []digest.Digest
	seen := map[digest.Digest]int{}
	err := Walk(context.Background(), s, []ocispec.Descriptor{idx, idx}, func(desc ocispec.Descriptor, manifest []byte) error {
		order = append(order, desc.Digest)
		seen[desc.Digest]++
		if (manifest != nil) != (desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == ocispec.MediaTypeImageManifest) {
			t.Errorf("%s %s: manifest bytes given: %v", desc.MediaType, desc.Digest, manifest != nil)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// index, 2 manifests, 2 configs, 3 layers (one shared).
	if len(order) != 8 || order[len(order)-1] != idx.Digest {
		t.Errorf("visited %d objects ending with %s, want 8 ending with the index %s", len(order), order[len(order)-1], idx.Digest)
	}
	for d, n := range seen {
		if n != 1 {
			t.Errorf("%s visited %d times", d, n)
		}
	}
}

func TestOCIArchiveRoundTripsSeveralImages(t *testing.T) {
	s := newMemStore()
	single := s.testImage(t, "linux/amd64", "shared", "app")
	multi := s.testIndex(t, "linux/amd64", "linux/arm64/v8")
	images := []Image{
		{Name: "registry.example/app:1.0", Target: single},
		{Name: "multi", Target: multi},
		{Target: single},
	}
	var buf bytes.Buffer
	if err := WriteOCI(context.Background(), &buf, s, images); err != nil {
		t.Fatal(err)
	}

	var again bytes.Buffer
	if err := WriteOCI(context.Background(), &again, s, images); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two writes of the same images differ")
	}
	names := tarEntries(t, buf.Bytes())
	if names[0] != "oci-layout" || names[len(names)-1] != "index.json" {
		t.Errorf("entries %v: want oci-layout first and index.json last", names)
	}
	shared := digest.FromBytes(gzipped(t, layerTar(t, "file0", "shared")))
	n := 0
	for _, name := range names {
		if name == blobPath(shared) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("shared layer written %d times, want once", n)
	}

	r := openBytes(t, buf.Bytes())
	if r.Format() != FormatOCI {
		t.Errorf("format %s", r.Format())
	}
	var got []Image
	for _, img := range r.Images() {
		img.Target.Annotations = nil
		got = append(got, img)
	}
	want := []Image{{Name: "registry.example/app:1.0", Target: single}, {Name: "multi", Target: multi}, {Target: single}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(objects(t, s, single, multi), objects(t, r, single, multi)); diff != "" {
		t.Errorf("objects differ (-written +read):\n%s", diff)
	}
}

func TestLayoutAddsImagesReplacesNamesAndSkipsBlobsItHas(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	s := newMemStore()
	a := s.testImage(t, "linux/amd64", "shared", "a")
	b := s.testIndex(t, "linux/amd64", "linux/arm64/v8")
	c := s.testImage(t, "linux/amd64", "shared", "c")

	if err := WriteLayout(ctx, dir, s, []Image{{Name: "v1", Target: a}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(ctx, dir, s, []Image{{Name: "v2", Target: b}}); err != nil {
		t.Fatal(err)
	}
	s.fetches = map[digest.Digest]int{}
	if err := WriteLayout(ctx, dir, s, []Image{{Name: "v1", Target: c}}); err != nil {
		t.Fatal(err)
	}
	shared := digest.FromBytes(gzipped(t, layerTar(t, "file0", "shared")))
	if s.fetches[shared] != 0 {
		t.Errorf("the shared layer the layout has was fetched %d times", s.fetches[shared])
	}
	r, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	for _, img := range r.Images() {
		got = append(got, img.Name+"="+img.Target.Digest.String())
	}
	if want := []string{"v2=" + b.Digest.String(), "v1=" + c.Digest.String()}; !cmp.Equal(want, got) {
		t.Errorf("index.json entries %v, want %v", got, want)
	}
	if diff := cmp.Diff(objects(t, s, b, c), objects(t, r, b, c)); diff != "" {
		t.Errorf("objects differ:\n%s", diff)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// go-containerregistry reads the layout and finds every blob valid.
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("go-containerregistry: %v", err)
	}
}

func TestReadsLayoutWrittenByGoContainerregistry(t *testing.T) {
	dir := t.TempDir()
	// A docker-archive written by go-containerregistry gives an image with
	// Docker media types to append to a layout.
	img := ggcrImage(t)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "v1"})); err != nil {
		t.Fatal(err)
	}
	r, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Find("v1")
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got.Target.Digest.String() != want.String() {
		t.Errorf("found %s, want %s", got.Target.Digest, want)
	}
	if n := len(objects(t, r, got.Target)); n != 4 {
		t.Errorf("%d objects, want manifest, config and 2 layers", n)
	}
}

func TestCorruptedBlobNamesTheBlob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newMemStore()
	img := s.testImage(t, "linux/amd64", "good layer")
	if err := WriteLayout(ctx, dir, s, []Image{{Name: "v1", Target: img}}); err != nil {
		t.Fatal(err)
	}
	layer := digest.FromBytes(gzipped(t, layerTar(t, "file0", "good layer")))
	p := filepath.Join(dir, blobPath(layer))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = WriteOCI(ctx, io.Discard, r, r.Images())
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), layer.String()) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("WriteOCI of a corrupted layer: %v; want a digest mismatch naming %s", err, layer)
	}
	_, err = WriteDocker(ctx, io.Discard, r, r.Images(), ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), layer.String()) {
		t.Errorf("WriteDocker of a corrupted layer: %v", err)
	}

	// A truncated blob is caught by its size before it is read.
	if err := os.WriteFile(p, data[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	err = WriteLayout(ctx, t.TempDir(), r, r.Images())
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "layer "+layer.String()+": 10 bytes stored") {
		t.Errorf("copy of a truncated layer: %v", err)
	}
}

func TestFindNamesAndAmbiguity(t *testing.T) {
	s := newMemStore()
	a := s.testImage(t, "linux/amd64", "a")
	b := s.testImage(t, "linux/amd64", "b")
	a.Annotations = map[string]string{AnnotationImageName: "docker.io/library/busybox:latest"}
	r := &Reader{images: []Image{{Name: "latest", Target: a}, {Name: "other", Target: b}, {Target: b}}}

	for _, tc := range []struct {
		name string
		want digest.Digest
	}{
		{"latest", a.Digest},
		{"docker.io/library/busybox:latest", a.Digest},
		{"busybox", a.Digest}, // normalised: docker.io/library/busybox:latest
		{"other", b.Digest},
	} {
		img, err := r.Find(tc.name)
		if err != nil || img.Target.Digest != tc.want {
			t.Errorf("Find(%q) = %s, %v; want %s", tc.name, img.Target.Digest, err, tc.want)
		}
	}
	_, err := r.Find("")
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `holds 2 images, name one: "latest", "other"`) {
		t.Errorf("Find without a name among several: %v", err)
	}
	_, err = r.Find("missing")
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), `image "missing": not in the archive (it has: "latest", "other")`) {
		t.Errorf("Find of an unknown name: %v", err)
	}

	// One target under two names, and an unnamed one, count as one image.
	r = &Reader{images: []Image{{Name: "x", Target: a}, {Name: "y", Target: a}}}
	if img, err := r.Find(""); err != nil || img.Target.Digest != a.Digest {
		t.Errorf("Find without a name of one image with two names: %s, %v", img.Target.Digest, err)
	}
	r = &Reader{images: []Image{{Target: a}, {Target: b}}}
	if _, err := r.Find(""); err == nil || !strings.Contains(err.Error(), "unnamed "+a.Digest.String()) {
		t.Errorf("Find among unnamed images: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := tarOf(t)
	for _, tc := range []struct {
		name string
		path string
		kind error
		want string
	}{
		{"missing", filepath.Join(dir, "nope.tar"), errdefs.ErrNotFound, "nope.tar: no such file"},
		{"directory", dir, errdefs.ErrInvalidArgument, "is a directory"},
		{"not a tar", write("text", bytes.Repeat([]byte("not a tar file "), 100)), errdefs.ErrInvalidArgument, "read tar"},
		{"gzip", write("gz.tar", gzipped(t, empty)), errdefs.ErrInvalidArgument, "gzip-compressed: decompress it first"},
		{"neither", write("empty.tar", empty), errdefs.ErrInvalidArgument, "neither an OCI image layout"},
		{"index without oci-layout", write("noversion.tar", tarOf(t, tarFile{name: "index.json", data: "{}"})), errdefs.ErrInvalidArgument, "without an oci-layout file"},
		{"layout version", write("v2.tar", tarOf(t, tarFile{name: "index.json", data: "{}"}, tarFile{name: "oci-layout", data: `{"imageLayoutVersion":"2.0.0"}`})), errdefs.ErrNotImplemented, `"2.0.0"`},
		{"bad manifest.json", write("bad.tar", tarOf(t, tarFile{name: "manifest.json", data: "{"})), errdefs.ErrInvalidArgument, "decode manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := OpenFile(tc.path)
			if err == nil {
				r.Close()
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenFile: %v; want %v containing %q", err, tc.kind, tc.want)
			}
		})
	}

	if _, err := OpenLayout(filepath.Join(dir, "missing")); !errdefs.IsNotFound(err) {
		t.Errorf("OpenLayout of a missing directory: %v", err)
	}
	if _, err := OpenLayout(dir); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "neither an OCI image layout") {
		t.Errorf("OpenLayout of a directory of files: %v", err)
	}
	s := newMemStore()
	img := s.testImage(t, "linux/amd64", "x")
	err := WriteLayout(context.Background(), dir, s, []Image{{Target: img}})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "not empty and not an OCI image layout") {
		t.Errorf("WriteLayout into a directory of other files: %v", err)
	}
}

func TestOpenPrefersIndexJSONOverManifestJSON(t *testing.T) {
	s := newMemStore()
	img := s.testImage(t, "linux/amd64", "x")
	var buf bytes.Buffer
	if err := WriteOCI(context.Background(), &buf, s, []Image{{Name: "latest", Target: img}}); err != nil {
		t.Fatal(err)
	}
	// Docker 25 writes manifest.json beside index.json; append one.
	data := appendTarFile(t, buf.Bytes(), tarFile{name: "manifest.json", data: `[{"Config":"missing","RepoTags":["x:1"],"Layers":[]}]`})
	r := openBytes(t, data)
	if r.Format() != FormatOCI || len(r.Images()) != 1 || r.Images()[0].Target.Digest != img.Digest {
		t.Errorf("format %s, images %+v: want the OCI layout's", r.Format(), r.Images())
	}
}

func TestWritersStopWhenCancelled(t *testing.T) {
	s := newMemStore()
	img := s.testIndex(t, "linux/amd64", "linux/arm64/v8")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteOCI(ctx, io.Discard, s, []Image{{Target: img}}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteOCI: %v", err)
	}
	if err := WriteLayout(ctx, t.TempDir(), s, []Image{{Target: img}}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteLayout: %v", err)
	}
	if _, err := WriteDocker(ctx, io.Discard, s, []Image{{Target: img}}, arm64); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteDocker: %v", err)
	}
}
