package server

import (
	"context"
	"sync"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	imagesapi "github.com/berth-dev/berth/api/images/v1"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type imagesService struct {
	imagesapi.UnimplementedImagesServer
	s *Server
}

// authFromProto is the registry credentials a pull or push request brings.
func authFromProto(a *imagesapi.RegistryAuth) remote.Auth {
	return remote.Auth{Username: a.GetUsername(), Password: a.GetPassword(), IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken()}
}

// progressStream turns a transfer's progress reports into stream messages
// made by msg and sent by send, one at a time; after a send fails it sends
// nothing more. last sends the final message, or returns the first send
// error.
func progressStream[M any](send func(M) error, msg func(images.Progress) M) (progress func(images.Progress), last func(M) error) {
	var (
		mu      sync.Mutex
		sendErr error
	)
	progress = func(p images.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if sendErr == nil {
			sendErr = send(msg(p))
		}
	}
	last = func(m M) error {
		mu.Lock()
		defer mu.Unlock()
		if sendErr != nil {
			return sendErr
		}
		return send(m)
	}
	return progress, last
}

// imageExists reports whether the image name exists, before a pull or
// create records it.
func (i *imagesService) imageExists(ctx context.Context, name string) (bool, error) {
	_, err := i.s.db.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// publishRecorded publishes the event of an image a pull or create
// recorded: /images/update if it existed before, else /images/create.
func (i *imagesService) publishRecorded(ctx context.Context, img metadata.Image, existed bool) {
	if existed {
		i.s.events.Publish(ctx, "/images/update", &eventsapi.ImageUpdate{Name: img.Name, Digest: img.Target.Digest.String()})
	} else {
		i.s.events.Publish(ctx, "/images/create", &eventsapi.ImageCreate{Name: img.Name, Digest: img.Target.Digest.String()})
	}
}

func descriptorToProto(d ocispec.Descriptor) *imagesapi.Descriptor {
	return &imagesapi.Descriptor{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size}
}

// imageToProto describes img for the host platform: its size is that of the
// platform's manifest, when the content store has it.
func (i *imagesService) imageToProto(ctx context.Context, img metadata.Image) *imagesapi.Image {
	out := &imagesapi.Image{
		Name: img.Name, Target: descriptorToProto(img.Target), Labels: img.Labels,
		CreatedAt: timestamp(img.CreatedAt), UpdatedAt: timestamp(img.UpdatedAt),
	}
	platform := remote.DefaultPlatform()
	desc, m, err := images.Manifest(ctx, i.s.content, img.Target, platform)
	if err != nil {
		log.G(ctx).Debug("describe image", "image", img.Name, "error", err)
		return out
	}
	out.Size = images.Size(m)
	if chainID, err := images.TopChainID(ctx, i.s.content, m); err == nil {
		out.Snapshot = chainID.String()
	}
	if desc.Platform != nil {
		platform = *desc.Platform
	}
	out.Platform = remote.FormatPlatform(platform)
	return out
}
