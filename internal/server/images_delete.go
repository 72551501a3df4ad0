package server

import (
	"context"
	"fmt"
	"strings"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	imagesapi "github.com/berth-dev/berth/api/images/v1"
	"github.com/berth-dev/berth/internal/errdefs"
)

func (i *imagesService) Delete(ctx context.Context, req *imagesapi.DeleteImageRequest) (*imagesapi.DeleteImageResponse, error) {
	name := imageName(req.GetName())
	if !req.GetForce() {
		if err := i.s.refuseIfInUse(ctx, name); err != nil {
			return nil, err
		}
	}
	if err := i.s.db.DeleteImage(ctx, name, req.GetSync()); err != nil {
		return nil, err
	}
	i.s.events.Publish(ctx, "/images/delete", &eventsapi.ImageDelete{Name: name})
	return &imagesapi.DeleteImageResponse{}, nil
}

// refuseIfInUse fails when containers were created from the image name, as
// docker rmi does: removing it would orphan what `berth ps` shows.
func (s *Server) refuseIfInUse(ctx context.Context, name string) error {
	cs, err := s.db.ListContainers(ctx)
	if err != nil {
		return err
	}
	var users []string
	for _, c := range cs {
		if c.Image == name {
			users = append(users, shortID(c.ID))
		}
	}
	if len(users) == 0 {
		return nil
	}
	return fmt.Errorf("image %s is used by container %s: remove the container first, or use -f: %w",
		name, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
}

func shortID(id string) string { return id[:min(12, len(id))] }
