package server

import (
	"context"

	imagesapi "github.com/berth-dev/berth/api/images/v1"
)

func (i *imagesService) List(ctx context.Context, req *imagesapi.ListImagesRequest) (*imagesapi.ListImagesResponse, error) {
	list, err := i.s.db.ListImages(ctx, req.GetFilters()...)
	if err != nil {
		return nil, err
	}
	resp := &imagesapi.ListImagesResponse{}
	for _, img := range list {
		resp.Images = append(resp.Images, i.imageToProto(ctx, img))
	}
	return resp, nil
}
