package server

import (
	contentapi "github.com/berth-dev/berth/api/content/v1"
	"github.com/berth-dev/berth/internal/content"
)

// listBatch is how many infos one List message carries.
const listBatch = 100

func (c *contentService) List(req *contentapi.ListContentRequest, stream contentapi.Content_ListServer) error {
	var batch []*contentapi.Info
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := stream.Send(&contentapi.ListContentResponse{Info: batch})
		batch = nil
		return err
	}
	err := c.s.content.Walk(stream.Context(), func(info content.Info) error {
		batch = append(batch, infoToProto(info))
		if len(batch) == listBatch {
			return flush()
		}
		return nil
	}, req.GetFilters()...)
	if err != nil {
		return err
	}
	return flush()
}
