package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
)

// Fetcher opens the bytes of a blob, manifest or index by descriptor.
//
// Fetch returns an error of kind ErrNotFound when it does not have the
// object. The bytes need not be verified: everything in this package that
// copies them checks size and digest. The caller closes the reader.
// Implementations are safe for concurrent use.
type Fetcher interface {
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Image is one named image of a layout or archive.
type Image struct {
	// Name is the image's name: the org.opencontainers.image.ref.name
	// annotation in an OCI layout, a RepoTags entry in a docker-archive;
	// empty for an unnamed image.
	Name string
	// Target is the image's index or manifest. Read from an OCI layout it
	// is the index.json entry, with all its annotations (Docker 25 and
	// containerd add io.containerd.image.name, the full reference).
	Target ocispec.Descriptor
}

// Walk visits every object of the images under roots: indexes, manifests,
// configs and layers, children before the manifest or index that names
// them, each digest once. fn gets the bytes of indexes and manifests (read
// through f and verified, at most remote.MaxManifestSize), and nil for
// other blobs, which fn fetches itself if it needs them. A media type
// other than an OCI or Docker schema 2 index or manifest is a blob.
//
// Writers that must only ever name complete images walk so: by the time
// fn sees a root, everything under it was visited.
func Walk(ctx context.Context, f Fetcher, roots []ocispec.Descriptor, fn func(desc ocispec.Descriptor, manifest []byte) error) error {
	seen := map[digest.Digest]bool{}
	var visit func(desc ocispec.Descriptor) error
	visit = func(desc ocispec.Descriptor) error {
		if seen[desc.Digest] {
			return nil
		}
		seen[desc.Digest] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		if !remote.IsIndex(desc.MediaType) && !remote.IsManifest(desc.MediaType) {
			return fn(desc, nil)
		}
		data, err := readManifest(ctx, f, desc)
		if err != nil {
			return err
		}
		children, err := children(desc, data)
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := visit(c); err != nil {
				return err
			}
		}
		return fn(desc, data)
	}
	for _, r := range roots {
		if err := visit(r); err != nil {
			return err
		}
	}
	return nil
}

// children lists what an index or manifest names: the manifests of an
// index; the config and layers of a manifest.
func children(desc ocispec.Descriptor, data []byte) ([]ocispec.Descriptor, error) {
	var doc struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w: %w", Kind(desc.MediaType), desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	out := doc.Manifests
	if doc.Config != nil {
		out = append(out, *doc.Config)
	}
	out = append(out, doc.Layers...)
	for _, c := range out {
		if err := c.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%s %s names %q: %w: %w", Kind(desc.MediaType), desc.Digest, c.Digest, err, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}

// readManifest fetches an index, manifest or config of at most
// remote.MaxManifestSize bytes and checks it against desc.
func readManifest(ctx context.Context, f Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > remote.MaxManifestSize {
		return nil, fmt.Errorf("%s %s: %d bytes is over the %d MiB limit: %w", Kind(desc.MediaType), desc.Digest, desc.Size, remote.MaxManifestSize>>20, errdefs.ErrInvalidArgument)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(remote.VerifyReader(rc, desc))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", Kind(desc.MediaType), desc.Digest, err)
	}
	return data, nil
}

// copyBlob writes the blob desc describes from f to w, checking its size
// and digest. It stops between mebibytes when ctx is done.
func copyBlob(ctx context.Context, w io.Writer, f Fetcher, desc ocispec.Descriptor) error {
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := remote.VerifyReader(rc, desc)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := io.CopyN(w, vr, 1<<20)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("copy %s %s: %w", Kind(desc.MediaType), desc.Digest, err)
		}
	}
}

// Kind names what a media type is, for messages: index, manifest,
// config, layer or blob.
func Kind(mediaType string) string {
	switch {
	case remote.IsIndex(mediaType):
		return "index"
	case remote.IsManifest(mediaType):
		return "manifest"
	case mediaType == ocispec.MediaTypeImageConfig || mediaType == mediaTypeDockerConfig:
		return "config"
	case strings.HasPrefix(mediaType, "application/vnd.oci.image.layer."), strings.HasPrefix(mediaType, "application/vnd.docker.image.rootfs."):
		return "layer"
	}
	return "blob"
}
