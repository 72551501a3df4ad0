package images

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// contentReader reads blobs and their info (content.Store).
type contentReader interface {
	content.Provider
	Info(ctx context.Context, dgst digest.Digest) (content.Info, error)
}

// imageContents is what an image's root (an index or a manifest)
// references in the content store.
type imageContents struct {
	// manifests are the manifests and indexes below the root, each after
	// the ones it references: the order to push them in.
	manifests []ocispec.Descriptor
	// blobs are the configs and layers of every manifest, each once.
	blobs []item
	// labels holds each blob's labels.
	labels map[digest.Digest]map[string]string
}

// item is a blob with its kind ("config" or "layer").
type item struct {
	ocispec.Descriptor
	kind string
}

// walkImage reads root and everything it references from cs and checks
// that every blob is present. An index entry for which optional returns
// true is skipped when absent; any other missing object is an error naming
// it and wrapping errMissingContent.
func walkImage(ctx context.Context, cs contentReader, root ocispec.Descriptor, optional func(ocispec.Descriptor) bool) (imageContents, error) {
	w := &walker{cs: cs, optional: optional, seen: map[digest.Digest]bool{}}
	w.out.labels = map[digest.Digest]map[string]string{}
	if err := w.object(ctx, root, rootKind(root), true); err != nil {
		return imageContents{}, err
	}
	return w.out, nil
}

type walker struct {
	cs       contentReader
	optional func(ocispec.Descriptor) bool
	seen     map[digest.Digest]bool
	out      imageContents
}

// rootKind is "index" or "manifest", as progress reports name them.
func rootKind(desc ocispec.Descriptor) string {
	if remote.IsIndex(desc.MediaType) {
		return "index"
	}
	return "manifest"
}

func (w *walker) object(ctx context.Context, desc ocispec.Descriptor, kind string, root bool) error {
	if w.seen[desc.Digest] {
		return nil
	}
	w.seen[desc.Digest] = true
	name := fmt.Sprintf("%s %s", kind, desc.Digest)
	if desc.Platform != nil {
		name += " (" + remote.FormatPlatform(*desc.Platform) + ")"
	}
	if desc.Size > maxSmallBlob {
		return fmt.Errorf("%s is %d bytes, over the %d-byte limit: %w", name, desc.Size, maxSmallBlob, errdefs.ErrInvalidArgument)
	}
	data, err := content.ReadBlob(ctx, w.cs, desc.Digest)
	if err != nil {
		return fmt.Errorf("%s: %w", name, missing(err))
	}
	switch {
	case remote.IsIndex(desc.MediaType):
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return fmt.Errorf("%s: %v: %w", name, err, errdefs.ErrInvalidArgument)
		}
		for _, m := range idx.Manifests {
			if !remote.IsManifest(m.MediaType) && !remote.IsIndex(m.MediaType) {
				continue
			}
			if w.optional != nil && w.optional(m) {
				if _, err := w.cs.Info(ctx, m.Digest); errdefs.IsNotFound(err) {
					continue
				}
			}
			if err := w.object(ctx, m, rootKind(m), false); err != nil {
				return err
			}
		}
	case remote.IsManifest(desc.MediaType):
		var m ocispec.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("%s: %v: %w", name, err, errdefs.ErrInvalidArgument)
		}
		if m.Config.Digest == "" || len(m.Layers) == 0 {
			return fmt.Errorf("%s: no config or no layers: %w", name, errdefs.ErrInvalidArgument)
		}
		if err := w.blob(ctx, item{m.Config, "config"}); err != nil {
			return err
		}
		for _, l := range m.Layers {
			if err := w.blob(ctx, item{l, "layer"}); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s has media type %q, not a manifest or index: %w", name, desc.MediaType, errdefs.ErrInvalidArgument)
	}
	if !root {
		w.out.manifests = append(w.out.manifests, desc)
	}
	return nil
}

func (w *walker) blob(ctx context.Context, b item) error {
	if w.seen[b.Digest] {
		return nil
	}
	w.seen[b.Digest] = true
	info, err := w.cs.Info(ctx, b.Digest)
	if err != nil {
		return fmt.Errorf("%s %s: %w", b.kind, b.Digest, missing(err))
	}
	if info.Size != b.Size {
		return fmt.Errorf("%s %s is %d bytes in the content store, but its descriptor says %d: %w", b.kind, b.Digest, info.Size, b.Size, errdefs.ErrFailedPrecondition)
	}
	w.out.blobs = append(w.out.blobs, b)
	w.out.labels[b.Digest] = info.Labels
	return nil
}
