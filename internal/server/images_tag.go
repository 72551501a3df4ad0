package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	imagesapi "github.com/berth-dev/berth/api/images/v1"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/remote"
)

func (i *imagesService) Tag(ctx context.Context, req *imagesapi.TagImageRequest) (*imagesapi.TagImageResponse, error) {
	src, err := i.s.db.GetImage(ctx, imageName(req.GetSource()))
	if err != nil {
		return nil, err
	}
	ref, err := remote.ParseReference(req.GetTarget())
	if err != nil {
		return nil, err
	}
	img, err := i.s.db.PutImage(ctx, metadata.Image{Name: ref.String(), Target: src.Target, Labels: src.Labels})
	if err != nil {
		return nil, err
	}
	i.s.events.Publish(ctx, "/images/create", &eventsapi.ImageCreate{Name: img.Name, Digest: img.Target.Digest.String()})
	return &imagesapi.TagImageResponse{Image: i.imageToProto(ctx, img)}, nil
}

// imageName normalises name as a reference ("busybox" ->
// "docker.io/library/busybox:latest"); a name that is not a valid reference
// is used as given, so any stored name can still be addressed.
func imageName(name string) string {
	if ref, err := remote.ParseReference(name); err == nil {
		return ref.String()
	}
	return name
}
