package server

import (
	"context"

	imagesapi "github.com/berth-dev/berth/api/images/v1"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type imagesService struct {
	imagesapi.UnimplementedImagesServer
	s *Server
}

func descriptorToProto(d ocispec.Descriptor) *imagesapi.Descriptor {
	return &imagesapi.Descriptor{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size}
}

// imageToProto describes img for the host platform: its size is that of the
// platform's manifest, when the content store has it.
func (i *imagesService) imageToProto(ctx context.Context, img metadata.Image) *imagesapi.Image {
	out := &imagesapi.Image{
		Name: img.Name, Target: descriptorToProto(img.Target), Labels: img.Labels,
		CreatedAt: timestamp(img.CreatedAt), UpdatedAt: timestamp(img.UpdatedAt),
	}
	platform := remote.DefaultPlatform()
	desc, m, err := images.Manifest(ctx, i.s.content, img.Target, platform)
	if err != nil {
		log.G(ctx).Debug("describe image", "image", img.Name, "error", err)
		return out
	}
	out.Size = images.Size(m)
	if chainID, err := images.TopChainID(ctx, i.s.content, m); err == nil {
		out.Snapshot = chainID.String()
	}
	if desc.Platform != nil {
		platform = *desc.Platform
	}
	out.Platform = remote.FormatPlatform(platform)
	return out
}
