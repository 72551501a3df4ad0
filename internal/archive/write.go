package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
)

// WriteOCI writes images to w as an OCI archive: a tar of an OCI image
// layout holding every platform of each image, each blob once, and an
// index.json entry per image named by its Name (see addToIndex). Blobs
// are streamed from f in walk order and checked against their
// descriptors; on error w holds a partial tar, so write to a temporary
// file and rename it. The output depends only on the images: entries
// carry no times, owners or modes of their own.
func WriteOCI(ctx context.Context, w io.Writer, f Fetcher, images []Image) error {
	tw := newTarWriter(w)
	if err := tw.file(layoutFile, layoutJSON()); err != nil {
		return err
	}
	err := Walk(ctx, f, targets(images), func(desc ocispec.Descriptor, manifest []byte) error {
		return tw.blob(ctx, f, desc, manifest)
	})
	if err != nil {
		return err
	}
	var entries []ocispec.Descriptor
	for _, img := range images {
		entries = addToIndex(entries, img)
	}
	data, err := json.Marshal(newIndex(entries))
	if err != nil {
		return err
	}
	if err := tw.file(indexFile, data); err != nil {
		return err
	}
	return tw.Close()
}

// WriteDocker writes images to w as a docker-archive (docker save's
// format), one platform each: from an index the manifest for platform
// (remote.MatchPlatform: the same variant or the best lower one), a single
// manifest whatever its platform. Names become RepoTags in Docker's short
// form ("busybox:latest"); they must be references with a tag, not a
// digest. Images that pick the same manifest share one manifest.json
// entry. It returns the manifest picked for each image, in order. Configs
// and layers are written as blobs/<alg>/<encoded>, layers as stored
// (uncompressed or gzip; other compressions fail with ErrNotImplemented).
// As with WriteOCI, w holds a partial tar on error.
func WriteDocker(ctx context.Context, w io.Writer, f Fetcher, images []Image, platform ocispec.Platform) ([]ocispec.Descriptor, error) {
	var (
		picked  []ocispec.Descriptor
		entries []*dockerEntry
		blobs   []ocispec.Descriptor
		repos   = map[string]map[string]string{}
		byDesc  = map[digest.Digest]*dockerEntry{}
		inBlobs = map[digest.Digest]bool{}
	)
	for _, img := range images {
		desc, m, err := pickManifest(ctx, f, img, platform)
		if err != nil {
			return nil, err
		}
		picked = append(picked, desc)
		e := byDesc[desc.Digest]
		if e == nil {
			e = &dockerEntry{Config: blobPath(m.Config.Digest), RepoTags: []string{}, Layers: []string{}}
			for _, l := range m.Layers {
				e.Layers = append(e.Layers, blobPath(l.Digest))
			}
			for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if !inBlobs[b.Digest] {
					inBlobs[b.Digest] = true
					blobs = append(blobs, b)
				}
			}
			byDesc[desc.Digest] = e
			entries = append(entries, e)
		}
		if img.Name == "" {
			continue
		}
		repo, tag, err := repoTag(img.Name)
		if err != nil {
			return nil, err
		}
		if rt := repo + ":" + tag; !slices.Contains(e.RepoTags, rt) {
			e.RepoTags = append(e.RepoTags, rt)
		}
		if repos[repo] == nil {
			repos[repo] = map[string]string{}
		}
		top := m.Config.Digest
		if len(m.Layers) > 0 {
			top = m.Layers[len(m.Layers)-1].Digest
		}
		repos[repo][tag] = top.Encoded()
	}

	tw := newTarWriter(w)
	for _, b := range blobs {
		if err := tw.blob(ctx, f, b, nil); err != nil {
			return nil, err
		}
	}
	data, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	if err := tw.file(dockerManifestFile, data); err != nil {
		return nil, err
	}
	if len(repos) > 0 {
		if data, err = json.Marshal(repos); err != nil {
			return nil, err
		}
		if err := tw.file(dockerRepositoriesFile, data); err != nil {
			return nil, err
		}
	}
	return picked, tw.Close()
}

// pickManifest returns img's manifest for platform, checking that a
// docker-archive can hold it.
func pickManifest(ctx context.Context, f Fetcher, img Image, platform ocispec.Platform) (ocispec.Descriptor, ocispec.Manifest, error) {
	desc := img.Target
	what := fmt.Sprintf("image %s", desc.Digest)
	if img.Name != "" {
		what = fmt.Sprintf("image %q", img.Name)
	}
	if remote.IsIndex(desc.MediaType) {
		data, err := readManifest(ctx, f, desc)
		if err != nil {
			return desc, ocispec.Manifest{}, fmt.Errorf("%s: %w", what, err)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return desc, ocispec.Manifest{}, fmt.Errorf("%s: decode index %s: %w: %w", what, desc.Digest, err, errdefs.ErrInvalidArgument)
		}
		if desc, err = remote.MatchPlatform(idx, platform); err != nil {
			return desc, ocispec.Manifest{}, fmt.Errorf("%s: %w", what, err)
		}
	}
	if !remote.IsManifest(desc.MediaType) {
		return desc, ocispec.Manifest{}, fmt.Errorf("%s: %s has media type %q, not an image manifest: %w", what, desc.Digest, desc.MediaType, errdefs.ErrNotImplemented)
	}
	data, err := readManifest(ctx, f, desc)
	if err != nil {
		return desc, ocispec.Manifest{}, fmt.Errorf("%s: %w", what, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return desc, ocispec.Manifest{}, fmt.Errorf("%s: decode manifest %s: %w: %w", what, desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if mt := m.Config.MediaType; mt != mediaTypeDockerConfig && mt != ocispec.MediaTypeImageConfig {
		return desc, ocispec.Manifest{}, fmt.Errorf("%s: config %s has media type %q, not an image config: %w", what, m.Config.Digest, mt, errdefs.ErrNotImplemented)
	}
	for _, l := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if err := l.Digest.Validate(); err != nil {
			return desc, ocispec.Manifest{}, fmt.Errorf("%s: manifest %s names %q: %w: %w", what, desc.Digest, l.Digest, err, errdefs.ErrInvalidArgument)
		}
	}
	for _, l := range m.Layers {
		switch l.MediaType {
		case mediaTypeDockerLayer, mediaTypeDockerLayerGzip, ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip:
		default:
			return desc, ocispec.Manifest{}, fmt.Errorf("%s: layer %s has media type %q; a docker-archive holds uncompressed or gzip layers only: %w", what, l.Digest, l.MediaType, errdefs.ErrNotImplemented)
		}
	}
	return desc, m, nil
}

// repoTag splits an image name into the repository and tag of a RepoTags
// entry, in Docker's short form.
func repoTag(name string) (repo, tag string, err error) {
	ref, err := remote.ParseReference(name)
	if err != nil {
		return "", "", fmt.Errorf("docker-archive name: %w", err)
	}
	if ref.Digest != "" {
		return "", "", fmt.Errorf("docker-archive name %q: images are named by repository:tag, not by digest: %w", name, errdefs.ErrInvalidArgument)
	}
	return strings.TrimSuffix(ref.Familiar(), ":"+ref.Tag), ref.Tag, nil
}

// addToIndex adds img to the entries of an index.json: its target, with
// the annotation org.opencontainers.image.ref.name set to its Name and no
// other. An entry with the same name is replaced; an unnamed image
// replaces an unnamed entry with the same digest.
func addToIndex(entries []ocispec.Descriptor, img Image) []ocispec.Descriptor {
	d := img.Target
	d.Annotations = nil
	if img.Name != "" {
		d.Annotations = map[string]string{ocispec.AnnotationRefName: img.Name}
	}
	entries = slices.DeleteFunc(entries, func(e ocispec.Descriptor) bool {
		name := e.Annotations[ocispec.AnnotationRefName]
		return name == img.Name && (name != "" || e.Digest == d.Digest)
	})
	return append(entries, d)
}

func newIndex(entries []ocispec.Descriptor) ocispec.Index {
	if entries == nil {
		entries = []ocispec.Descriptor{}
	}
	return ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: entries}
}

func layoutJSON() []byte {
	return []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`)
}

func targets(images []Image) []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, len(images))
	for i, img := range images {
		out[i] = img.Target
	}
	return out
}

// blobPath is where a layout keeps the blob d.
func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// tarWriter writes files with fixed metadata, and each parent directory
// once before its first file.
type tarWriter struct {
	*tar.Writer
	dirs map[string]bool
}

func newTarWriter(w io.Writer) *tarWriter {
	return &tarWriter{Writer: tar.NewWriter(w), dirs: map[string]bool{}}
}

var epoch = time.Unix(0, 0)

func (tw *tarWriter) header(name string, size int64) error {
	if err := tw.mkdirs(name); err != nil {
		return err
	}
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch})
}

// mkdirs writes the entries of name's parent directories not written yet.
func (tw *tarWriter) mkdirs(name string) error {
	dir := path.Dir(name)
	if dir == "." || tw.dirs[dir] {
		return nil
	}
	if err := tw.mkdirs(dir); err != nil {
		return err
	}
	tw.dirs[dir] = true
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch})
}

func (tw *tarWriter) file(name string, data []byte) error {
	if err := tw.header(name, int64(len(data))); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// blob writes desc's blob: data when given (already verified), else
// fetched from f and verified.
func (tw *tarWriter) blob(ctx context.Context, f Fetcher, desc ocispec.Descriptor, data []byte) error {
	if data != nil {
		return tw.file(blobPath(desc.Digest), data)
	}
	if err := tw.header(blobPath(desc.Digest), desc.Size); err != nil {
		return err
	}
	return copyBlob(ctx, tw, f, desc)
}
