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

// Manifest returns the manifest target stands for on platform: target
// itself, or the index entry matching platform, read from the content store.
func Manifest(ctx context.Context, p content.Provider, target ocispec.Descriptor, platform ocispec.Platform) (ocispec.Descriptor, ocispec.Manifest, error) {
	desc := target
	if remote.IsIndex(target.MediaType) {
		data, err := content.ReadBlob(ctx, p, target.Digest)
		if err != nil {
			return ocispec.Descriptor{}, ocispec.Manifest{}, err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return ocispec.Descriptor{}, ocispec.Manifest{}, fmt.Errorf("index %s: %v: %w", target.Digest, err, errdefs.ErrInvalidArgument)
		}
		if desc, err = remote.MatchPlatform(idx, platform); err != nil {
			return ocispec.Descriptor{}, ocispec.Manifest{}, err
		}
	}
	data, err := content.ReadBlob(ctx, p, desc.Digest)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, fmt.Errorf("manifest %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	return desc, m, nil
}

// Size returns the bytes of m's config and layers as stored (compressed).
func Size(m ocispec.Manifest) int64 {
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// TopChainID reads m's config and returns the chainID of all its layers: the
// name of the snapshot an unpacked image's root filesystem is in.
func TopChainID(ctx context.Context, p content.Provider, m ocispec.Manifest) (digest.Digest, error) {
	data, err := content.ReadBlob(ctx, p, m.Config.Digest)
	if err != nil {
		return "", err
	}
	var img ocispec.Image
	if err := json.Unmarshal(data, &img); err != nil {
		return "", fmt.Errorf("image config %s: %v: %w", m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	if len(img.RootFS.DiffIDs) == 0 {
		return "", fmt.Errorf("image config %s lists no layers: %w", m.Config.Digest, errdefs.ErrInvalidArgument)
	}
	ids := ChainIDs(img.RootFS.DiffIDs)
	return ids[len(ids)-1], nil
}
