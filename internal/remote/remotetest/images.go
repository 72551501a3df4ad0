package remotetest

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RandomImage builds an image of layers random layers of about layerSize
// bytes each (Docker schema 2 media types).
func RandomImage(t testing.TB, layers int, layerSize int64) v1.Image {
	t.Helper()
	img, err := random.Image(layerSize, int64(layers))
	if err != nil {
		t.Fatalf("remotetest: random image: %v", err)
	}
	return img
}

// Index builds an OCI index with one small random image per platform
// ("linux/amd64", "linux/arm64/v8"), each image's config naming its
// platform too.
func Index(t testing.TB, platforms ...string) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	for _, s := range platforms {
		parts := strings.Split(s, "/")
		if len(parts) < 2 || len(parts) > 3 {
			t.Fatalf("remotetest: platform %q is not os/arch[/variant]", s)
		}
		p := v1.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
		img := withPlatform(t, RandomImage(t, 1, 512), p)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx
}

func withPlatform(t testing.TB, img v1.Image, p v1.Platform) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("remotetest: config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("remotetest: set platform: %v", err)
	}
	return img
}

// ImageFromDir builds a linux/amd64 image whose single gzip layer is the
// tree under dir (regular files, directories and symlinks).
func ImageFromDir(t testing.TB, dir string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatalf("remotetest: tar %s: %v", dir, err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatalf("remotetest: layer from %s: %v", dir, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatalf("remotetest: image from %s: %v", dir, err)
	}
	return withPlatform(t, img, v1.Platform{OS: "linux", Architecture: "amd64"})
}

// PushImage stores img in the registry as repoTag ("library/app:1.0",
// no host) and returns its manifest descriptor. Seeding bypasses
// authentication and faults.
func (r *Registry) PushImage(t testing.TB, repoTag string, img v1.Image) ocispec.Descriptor {
	t.Helper()
	repo, tag := splitRepoTag(t, repoTag)
	return r.pushImage(t, repo, tag, img)
}

func (r *Registry) pushImage(t testing.TB, repo, ref string, img v1.Image) ocispec.Descriptor {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("remotetest: layers: %v", err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("remotetest: layer: %v", err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("remotetest: layer: %v", err)
		}
		r.PutBlob(t, repo, data)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatalf("remotetest: config: %v", err)
	}
	r.PutBlob(t, repo, cfg)
	return r.putManifest(t, repo, ref, img)
}

// PushIndex stores idx and all its images as repoTag and returns the
// index descriptor.
func (r *Registry) PushIndex(t testing.TB, repoTag string, idx v1.ImageIndex) ocispec.Descriptor {
	t.Helper()
	repo, tag := splitRepoTag(t, repoTag)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("remotetest: index: %v", err)
	}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatalf("remotetest: index image %s: %v", m.Digest, err)
		}
		r.pushImage(t, repo, m.Digest.String(), img)
	}
	return r.putManifest(t, repo, tag, idx)
}

func (r *Registry) putManifest(t testing.TB, repo, ref string, m interface {
	RawManifest() ([]byte, error)
}) ocispec.Descriptor {
	t.Helper()
	raw, err := m.RawManifest()
	if err != nil {
		t.Fatalf("remotetest: manifest: %v", err)
	}
	var mt string
	switch m := m.(type) {
	case v1.Image:
		v, _ := m.MediaType()
		mt = string(v)
	case v1.ImageIndex:
		v, _ := m.MediaType()
		mt = string(v)
	}
	r.call(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mt, raw)
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
}
