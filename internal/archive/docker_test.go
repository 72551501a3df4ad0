package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ggcrImage is a random two-layer image with Docker media types, built by
// go-containerregistry.
func ggcrImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(300, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var arm64 = ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}

func TestDockerArchiveHoldsOnePlatformPerImage(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	idx := s.testIndex(t, "linux/amd64", "linux/arm64/v8")
	single := s.testImage(t, "linux/amd64", "shared", "busybox")
	images := []Image{
		{Name: "example.com/app:1.0", Target: idx},
		{Name: "docker.io/library/busybox", Target: single},
		{Name: "example.com/app:latest", Target: idx},
	}
	var buf bytes.Buffer
	picked, err := WriteDocker(ctx, &buf, s, images, arm64)
	if err != nil {
		t.Fatal(err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(s.blobs[idx.Digest], &index); err != nil {
		t.Fatal(err)
	}
	armDesc := index.Manifests[1]
	if picked[0].Digest != armDesc.Digest || picked[1].Digest != single.Digest || picked[2].Digest != armDesc.Digest {
		t.Errorf("picked %v; want the arm64 manifest, the single one, the arm64 one", picked)
	}

	r := openBytes(t, buf.Bytes())
	if r.Format() != FormatDocker {
		t.Fatalf("format %s", r.Format())
	}
	var names []string
	for _, img := range r.Images() {
		names = append(names, img.Name)
	}
	if want := []string{"example.com/app:1.0", "example.com/app:latest", "busybox:latest"}; !cmp.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	var armManifest ocispec.Manifest
	if err := json.Unmarshal(s.blobs[armDesc.Digest], &armManifest); err != nil {
		t.Fatal(err)
	}
	img, err := r.Find("example.com/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	got := objects(t, r, img.Target)
	var m ocispec.Manifest
	if err := json.Unmarshal(got[img.Target.Digest], &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != armManifest.Config.Digest || len(m.Layers) != 2 {
		t.Fatalf("read back config %s with %d layers, want the arm64 config %s with 2", m.Config.Digest, len(m.Layers), armManifest.Config.Digest)
	}
	for i, l := range m.Layers {
		if l.Digest != armManifest.Layers[i].Digest || l.MediaType != mediaTypeDockerLayerGzip {
			t.Errorf("layer %d: %s %s, want %s as %s", i, l.Digest, l.MediaType, armManifest.Layers[i].Digest, mediaTypeDockerLayerGzip)
		}
		if !bytes.Equal(got[l.Digest], s.blobs[l.Digest]) {
			t.Errorf("layer %d: bytes differ", i)
		}
	}

	var repos map[string]map[string]string
	if err := json.Unmarshal(fileIn(t, buf.Bytes(), "repositories"), &repos); err != nil {
		t.Fatal(err)
	}
	if len(repos) != 2 || repos["example.com/app"]["1.0"] != armManifest.Layers[1].Digest.Encoded() || repos["busybox"]["latest"] == "" {
		t.Errorf("repositories %v", repos)
	}

	_, err = WriteDocker(ctx, &bytes.Buffer{}, s, images[:1], ocispec.Platform{OS: "linux", Architecture: "s390x"})
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), `image "example.com/app:1.0": no manifest for platform linux/s390x (the index has: linux/amd64, linux/arm64/v8)`) {
		t.Errorf("missing platform: %v", err)
	}
	_, err = WriteDocker(ctx, &bytes.Buffer{}, s, []Image{{Name: "app@" + single.Digest.String(), Target: single}}, arm64)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "not by digest") {
		t.Errorf("name with a digest: %v", err)
	}
}

func TestDockerArchiveRefusesLayersItCannotDescribe(t *testing.T) {
	s := newMemStore()
	layer := s.add(ocispec.MediaTypeImageLayerZstd, []byte{0x28, 0xb5, 0x2f, 0xfd, 0})
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: s.add(ocispec.MediaTypeImageConfig, []byte("{}")), Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	img := s.addJSON(t, ocispec.MediaTypeImageManifest, m)
	_, err := WriteDocker(context.Background(), &bytes.Buffer{}, s, []Image{{Target: img}}, arm64)
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "zstd") {
		t.Errorf("zstd layer: %v", err)
	}

	// A docker-archive holding a zstd layer cannot be described either.
	data := tarOf(t,
		tarFile{name: "c.json", data: "{}"},
		tarFile{name: "l.tar.zst", data: string(s.blobs[layer.Digest])},
		tarFile{name: "manifest.json", data: `[{"Config":"c.json","Layers":["l.tar.zst"]}]`})
	if _, err := Open(bytes.NewReader(data), int64(len(data))); !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "l.tar.zst is zstd-compressed") {
		t.Errorf("reading a zstd layer: %v", err)
	}
}

func TestDockerArchiveManifestIsDeterministic(t *testing.T) {
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	plain := layerTar(t, "a", "uncompressed layer")
	gz := gzipped(t, layerTar(t, "b", "gzip layer"))
	cfgName := digest.FromBytes(config).Encoded() + ".json"
	// docker save before Docker 25: <id>/layer.tar, a layer used twice is a
	// symlink to the first copy.
	files := []tarFile{
		{name: cfgName, data: string(config)},
		{name: "aaa/layer.tar", data: string(plain)},
		{name: "bbb/layer.tar", data: string(gz)},
		{name: "ccc/layer.tar", link: "../aaa/layer.tar"},
		{name: "manifest.json", data: `[{"Config":"` + cfgName + `","RepoTags":["busybox:latest"],"Layers":["aaa/layer.tar","./bbb/layer.tar","ccc/layer.tar"]}]`},
		{name: "repositories", data: `{"busybox":{"latest":"ccc"}}`},
	}
	desc := func(mt string, data []byte) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, digest.FromBytes(data), len(data))
	}
	want := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",` +
		`"config":` + desc("application/vnd.docker.container.image.v1+json", config) + `,"layers":[` +
		desc("application/vnd.docker.image.rootfs.diff.tar", plain) + "," +
		desc("application/vnd.docker.image.rootfs.diff.tar.gzip", gz) + "," +
		desc("application/vnd.docker.image.rootfs.diff.tar", plain) + `]}`

	reversed := make([]tarFile, len(files))
	for i, f := range files {
		reversed[len(files)-1-i] = f
	}
	for _, order := range [][]tarFile{files, reversed} {
		r := openBytes(t, tarOf(t, order...))
		img, err := r.Find("")
		if err != nil {
			t.Fatal(err)
		}
		if img.Name != "busybox:latest" || img.Target.Digest != digest.FromString(want) || img.Target.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
			t.Errorf("image %q %s %s, want busybox:latest %s", img.Name, img.Target.MediaType, img.Target.Digest, digest.FromString(want))
		}
		got := objects(t, r, img.Target)
		if string(got[img.Target.Digest]) != want {
			t.Errorf("manifest\n%s\nwant\n%s", got[img.Target.Digest], want)
		}
		if !bytes.Equal(got[digest.FromBytes(plain)], plain) || !bytes.Equal(got[digest.FromBytes(gz)], gz) {
			t.Error("layers read back differ")
		}
	}
}

func TestReadsDockerArchiveWrittenByGoContainerregistry(t *testing.T) {
	img := ggcrImage(t)
	tag, err := name.NewTag("example.com/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "app.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	r, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	found, err := r.Find("example.com/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	got := objects(t, r, found.Target)
	var m ocispec.Manifest
	if err := json.Unmarshal(got[found.Target.Digest], &m); err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigName()
	layers, _ := img.Layers()
	if m.Config.Digest.String() != cfg.String() || len(m.Layers) != len(layers) {
		t.Fatalf("config %s with %d layers, want %s with %d", m.Config.Digest, len(m.Layers), cfg, len(layers))
	}
	for i, l := range layers {
		d, _ := l.Digest()
		if m.Layers[i].Digest.String() != d.String() || m.Layers[i].MediaType != mediaTypeDockerLayerGzip {
			t.Errorf("layer %d: %s %s, want %s gzip", i, m.Layers[i].Digest, m.Layers[i].MediaType, d)
		}
	}
}

func TestDockerArchiveIsReadByGoContainerregistry(t *testing.T) {
	s := newMemStore()
	idx := s.testIndex(t, "linux/amd64", "linux/arm64/v8")
	p := filepath.Join(t.TempDir(), "app.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	picked, err := WriteDocker(context.Background(), f, s, []Image{{Name: "example.com/app:1.0", Target: idx}}, arm64)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("example.com/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("go-containerregistry: %v", err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(s.blobs[picked[0].Digest], &m); err != nil {
		t.Fatal(err)
	}
	if cfg, err := img.ConfigName(); err != nil || cfg.String() != m.Config.Digest.String() {
		t.Errorf("config %s (%v), want %s", cfg, err, m.Config.Digest)
	}
}
