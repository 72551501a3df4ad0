package server

import (
	imagesapi "github.com/berth-dev/berth/api/images/v1"
	"github.com/berth-dev/berth/internal/images"
)

func (i *imagesService) Push(req *imagesapi.PushRequest, stream imagesapi.Images_PushServer) error {
	ctx := stream.Context()
	name := imageName(req.GetName())
	img, err := i.s.db.GetImage(ctx, name)
	if err != nil {
		return err
	}
	ref := req.GetRef()
	if ref == "" {
		ref = name
	}
	progress, last := progressStream(stream.Send, func(p images.Progress) *imagesapi.PushResponse {
		return &imagesapi.PushResponse{Kind: p.Kind, Digest: p.Digest.String(), Phase: string(p.Phase), Offset: p.Offset, Total: p.Total}
	})
	desc, err := i.s.pusher.Push(ctx, img.Target, ref, images.PushOptions{Platform: req.GetPlatform(), Auth: authFromProto(req.GetAuth())}, progress)
	if err != nil {
		return err
	}
	return last(&imagesapi.PushResponse{Phase: string(images.PhaseDone), Target: descriptorToProto(desc)})
}
