package server

import (
	"sync"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	imagesapi "github.com/berth-dev/berth/api/images/v1"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/remote"
)

func (i *imagesService) Pull(req *imagesapi.PullRequest, stream imagesapi.Images_PullServer) error {
	ctx := stream.Context()
	ref, err := remote.ParseReference(req.GetRef())
	if err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		sendErr error
	)
	progress := func(p images.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if sendErr == nil {
			sendErr = stream.Send(&imagesapi.PullResponse{Kind: p.Kind, Digest: p.Digest.String(), Phase: string(p.Phase), Offset: p.Offset, Total: p.Total})
		}
	}
	_, err = i.s.db.GetImage(ctx, ref.String())
	existed := err == nil
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	res, err := i.s.puller.Pull(ctx, ref.String(), images.PullOptions{Platform: req.GetPlatform(), AllPlatforms: req.GetAllPlatforms()}, progress)
	if err != nil {
		return err
	}
	img, err := i.s.db.GetImage(ctx, res.Name)
	if err != nil {
		return err
	}
	if existed {
		i.s.events.Publish(ctx, "/images/update", &eventsapi.ImageUpdate{Name: img.Name, Digest: img.Target.Digest.String()})
	} else {
		i.s.events.Publish(ctx, "/images/create", &eventsapi.ImageCreate{Name: img.Name, Digest: img.Target.Digest.String()})
	}
	mu.Lock()
	defer mu.Unlock()
	if sendErr != nil {
		return sendErr
	}
	return stream.Send(&imagesapi.PullResponse{Phase: string(images.PhaseDone), Image: i.imageToProto(ctx, img)})
}
