package server

import (
	"context"

	imagesapi "github.com/berth-dev/berth/api/images/v1"
)

func (i *imagesService) Get(ctx context.Context, req *imagesapi.GetImageRequest) (*imagesapi.GetImageResponse, error) {
	img, err := i.s.db.GetImage(ctx, imageName(req.GetName()))
	if err != nil {
		return nil, err
	}
	return &imagesapi.GetImageResponse{Image: i.imageToProto(ctx, img)}, nil
}
