package server

import (
	imagesapi "github.com/berth-dev/berth/api/images/v1"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/remote"
)

func (i *imagesService) Pull(req *imagesapi.PullRequest, stream imagesapi.Images_PullServer) error {
	ctx := stream.Context()
	ref, err := remote.ParseReference(req.GetRef())
	if err != nil {
		return err
	}
	progress, last := progressStream(stream.Send, func(p images.Progress) *imagesapi.PullResponse {
		return &imagesapi.PullResponse{Kind: p.Kind, Digest: p.Digest.String(), Phase: string(p.Phase), Offset: p.Offset, Total: p.Total}
	})
	existed, err := i.imageExists(ctx, ref.String())
	if err != nil {
		return err
	}
	res, err := i.s.puller.Pull(ctx, ref.String(), images.PullOptions{Platform: req.GetPlatform(), AllPlatforms: req.GetAllPlatforms(), Auth: authFromProto(req.GetAuth())}, progress)
	if err != nil {
		return err
	}
	img, err := i.s.db.GetImage(ctx, res.Name)
	if err != nil {
		return err
	}
	i.publishRecorded(ctx, img, existed)
	return last(&imagesapi.PullResponse{Phase: string(images.PhaseDone), Image: i.imageToProto(ctx, img)})
}
