package client

import (
	"context"

	imagesapi "github.com/berth-dev/berth/api/images/v1"
)

// CreateImageOptions choose how CreateImage records an image.
type CreateImageOptions struct {
	// Labels of the image; when set they replace an existing image's.
	Labels map[string]string
	// Unpack unpacks the image into snapshots for Platform.
	Unpack bool
	// Platform to unpack ("linux/arm64/v8"); empty: the daemon's host.
	Platform string
}

// CreateImage names target, a manifest or index whose content the caller
// already wrote to the content store (Ingest, under a lease), as the image
// name, creating it or pointing an existing one at target. Every blob
// target references must be present: the platform's, when unpacking an
// index, and those of each of its manifests that is present; a missing one
// is ErrFailedPrecondition, naming it.
func (c *Client) CreateImage(ctx context.Context, name string, target Descriptor, opts CreateImageOptions) (Image, error) {
	r, err := c.images.Create(ctx, &imagesapi.CreateImageRequest{
		Image: &imagesapi.Image{
			Name:   name,
			Target: &imagesapi.Descriptor{MediaType: target.MediaType, Digest: target.Digest, Size: target.Size},
			Labels: opts.Labels,
		},
		Unpack:   opts.Unpack,
		Platform: opts.Platform,
	})
	if err != nil {
		return Image{}, err
	}
	return imageFromProto(r.GetImage()), nil
}
