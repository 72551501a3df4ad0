package server

import (
	"context"

	imagesapi "github.com/berth-dev/berth/api/images/v1"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func (i *imagesService) Create(ctx context.Context, req *imagesapi.CreateImageRequest) (*imagesapi.CreateImageResponse, error) {
	name := imageName(req.GetImage().GetName())
	t := req.GetImage().GetTarget()
	target := ocispec.Descriptor{MediaType: t.GetMediaType(), Digest: digest.Digest(t.GetDigest()), Size: t.GetSize()}
	existed, err := i.imageExists(ctx, name)
	if err != nil {
		return nil, err
	}
	if _, err := i.s.puller.Create(ctx, name, target, images.CreateOptions{Unpack: req.GetUnpack(), Platform: req.GetPlatform()}); err != nil {
		return nil, err
	}
	var img metadata.Image
	if labels := req.GetImage().GetLabels(); len(labels) > 0 {
		img, err = i.s.db.UpdateImage(ctx, metadata.Image{Name: name, Labels: labels}, "labels")
	} else {
		img, err = i.s.db.GetImage(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	i.publishRecorded(ctx, img, existed)
	return &imagesapi.CreateImageResponse{Image: i.imageToProto(ctx, img)}, nil
}
