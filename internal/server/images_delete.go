package server

import (
	"context"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	imagesapi "github.com/berth-dev/berth/api/images/v1"
)

func (i *imagesService) Delete(ctx context.Context, req *imagesapi.DeleteImageRequest) (*imagesapi.DeleteImageResponse, error) {
	name := imageName(req.GetName())
	if err := i.s.db.DeleteImage(ctx, name, req.GetSync()); err != nil {
		return nil, err
	}
	i.s.events.Publish(ctx, "/images/delete", &eventsapi.ImageDelete{Name: name})
	return &imagesapi.DeleteImageResponse{}, nil
}
