package images

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CreateOptions choose how Create records an image.
type CreateOptions struct {
	// Unpack unpacks the platform's layers into snapshots.
	Unpack bool
	// Platform to unpack, like "linux/arm64/v8"; empty means the host's.
	Platform string
}

// Create records the image name for target, whose content is already in
// the content store (written by a client, as `berth load` does). It is a
// pull from the content store instead of a registry:
//
//   - It first checks that every blob target references is present: the
//     platform's manifest (when unpacking an index) with its config and
//     layers, and each other manifest of an index that is present, with
//     its blobs. A missing one fails the call with ErrFailedPrecondition,
//     naming it, before anything is written.
//   - It then writes the same GC reference labels a pull writes and, with
//     opts.Unpack, unpacks the platform's layers into snapshots with the
//     pull's applier, under a lease.
//   - Last it points name at target, creating the image or updating an
//     existing one (its labels are kept), as a pull does.
func (p *Puller) Create(ctx context.Context, name string, target ocispec.Descriptor, opts CreateOptions) (Result, error) {
	if name == "" {
		return Result{}, fmt.Errorf("create image: empty name: %w", errdefs.ErrInvalidArgument)
	}
	if err := content.ValidateDigest(target.Digest); err != nil {
		return Result{}, fmt.Errorf("create image %q: target: %w", name, err)
	}
	if !remote.IsIndex(target.MediaType) && !remote.IsManifest(target.MediaType) {
		return Result{}, fmt.Errorf("create image %q: target media type %q is not an OCI or Docker manifest or index: %w", name, target.MediaType, errdefs.ErrInvalidArgument)
	}
	platform := remote.DefaultPlatform()
	if opts.Platform != "" {
		var err error
		if platform, err = remote.ParsePlatform(opts.Platform); err != nil {
			return Result{}, err
		}
	}
	needed, err := p.platformOf(ctx, target, platform, opts.Unpack)
	if err != nil {
		return Result{}, fmt.Errorf("create image %q: %w", name, err)
	}
	optional := func(m ocispec.Descriptor) bool { return m.Digest != needed.Digest }
	if _, err := walkImage(ctx, p.cfg.Content, target, optional); err != nil {
		return Result{}, fmt.Errorf("create image %q: %w", name, err)
	}
	pl := &pull{Puller: p, rep: &reporter{}, local: true, skipUnpack: !opts.Unpack}
	res, err := pl.run(ctx, name, target, platform, true, "berth.io/create")
	if err != nil {
		return Result{}, fmt.Errorf("create image %q: %w", name, err)
	}
	return res, nil
}

// platformOf returns the manifest of the index target that must be present
// to unpack it for platform; the zero descriptor when target is not an
// index or is not unpacked.
func (p *Puller) platformOf(ctx context.Context, target ocispec.Descriptor, platform ocispec.Platform, unpack bool) (ocispec.Descriptor, error) {
	if !unpack || !remote.IsIndex(target.MediaType) {
		return ocispec.Descriptor{}, nil
	}
	data, err := content.ReadBlob(ctx, p.cfg.Content, target.Digest)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("index %s: %w", target.Digest, missing(err))
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("index %s: %v: %w", target.Digest, err, errdefs.ErrInvalidArgument)
	}
	return remote.MatchPlatform(idx, platform)
}
