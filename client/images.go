package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	imagesapi "github.com/berth-dev/berth/api/images/v1"
)

// Descriptor points at a blob: its media type, digest and size.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Image is a named manifest or index.
type Image struct {
	Name      string            `json:"name"`
	Target    Descriptor        `json:"target"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Size is the compressed size of the host platform's config and layers.
	Size int64 `json:"size"`
	// Platform is the platform Size refers to ("linux/amd64").
	Platform string `json:"platform,omitempty"`
	// Snapshot is the committed snapshot (top chainID) holding the
	// platform's root filesystem, once unpacked.
	Snapshot string `json:"snapshot,omitempty"`
}

func imageFromProto(i *imagesapi.Image) Image {
	t := i.GetTarget()
	return Image{
		Name: i.GetName(), Target: Descriptor{MediaType: t.GetMediaType(), Digest: t.GetDigest(), Size: t.GetSize()},
		Labels: i.GetLabels(), CreatedAt: timeOf(i.GetCreatedAt()), UpdatedAt: timeOf(i.GetUpdatedAt()),
		Size: i.GetSize(), Platform: i.GetPlatform(), Snapshot: i.GetSnapshot(),
	}
}

// PullProgress reports one item of a pull.
type PullProgress struct {
	Kind   string // "index", "manifest", "config" or "layer"
	Digest string
	// Phase: resolving, waiting, downloading, verifying, unpacking, done, exists.
	Phase  string
	Offset int64
	Total  int64
}

// PullOptions choose what a pull fetches.
type PullOptions struct {
	Platform     string // "linux/arm64/v8"; empty: the daemon's host
	AllPlatforms bool   // fetch every platform of an index (unpack only Platform)
	// Auth authenticates the pull to the registry ref names; the zero value
	// pulls anonymously (the daemon's hosts.toml credentials still apply).
	Auth RegistryAuth
	// Progress, when set, receives each progress report.
	Progress func(PullProgress)
}

// RegistryAuth is what authenticates one pull or push to a registry, as
// `berth login` saved it in the Docker config file. The daemon uses it for
// that call only, and never sends it to the registry's mirrors.
type RegistryAuth struct {
	Username, Password string
	// IdentityToken is an OAuth2 refresh token (Docker's "identitytoken").
	IdentityToken string
	// RegistryToken is a bearer token sent as is (Docker's "registrytoken").
	RegistryToken string
}

// toProto returns a's message, nil for the zero value.
func (a RegistryAuth) toProto() *imagesapi.RegistryAuth {
	if a == (RegistryAuth{}) {
		return nil
	}
	return &imagesapi.RegistryAuth{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
}

// Pull fetches and unpacks ref in the daemon and returns the image.
func (c *Client) Pull(ctx context.Context, ref string, opts PullOptions) (Image, error) {
	stream, err := c.images.Pull(ctx, &imagesapi.PullRequest{Ref: ref, Platform: opts.Platform, AllPlatforms: opts.AllPlatforms, Auth: opts.Auth.toProto()})
	if err != nil {
		return Image{}, err
	}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return Image{}, fmt.Errorf("pull %s: the daemon ended the stream without an image", ref)
		} else if err != nil {
			return Image{}, err
		}
		if r.GetImage() != nil {
			return imageFromProto(r.GetImage()), nil
		}
		if opts.Progress != nil {
			opts.Progress(PullProgress{Kind: r.GetKind(), Digest: r.GetDigest(), Phase: r.GetPhase(), Offset: r.GetOffset(), Total: r.GetTotal()})
		}
	}
}

// GetImage returns one image; name may be short ("busybox").
func (c *Client) GetImage(ctx context.Context, name string) (Image, error) {
	r, err := c.images.Get(ctx, &imagesapi.GetImageRequest{Name: name})
	if err != nil {
		return Image{}, err
	}
	return imageFromProto(r.GetImage()), nil
}

// ListImages returns the images matching any of filters (fields: name,
// target.digest, target.mediatype, labels.KEY).
func (c *Client) ListImages(ctx context.Context, filters ...string) ([]Image, error) {
	r, err := c.images.List(ctx, &imagesapi.ListImagesRequest{Filters: filters})
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(r.GetImages()))
	for _, i := range r.GetImages() {
		out = append(out, imageFromProto(i))
	}
	return out, nil
}

// TagImage gives the image source the additional name target.
func (c *Client) TagImage(ctx context.Context, source, target string) (Image, error) {
	r, err := c.images.Tag(ctx, &imagesapi.TagImageRequest{Source: source, Target: target})
	if err != nil {
		return Image{}, err
	}
	return imageFromProto(r.GetImage()), nil
}

// DeleteImageOptions modify DeleteImage.
type DeleteImageOptions struct {
	// Sync collects what only the image held before the call returns.
	Sync bool
	// Force removes the name even while containers were created from it.
	Force bool
}

// DeleteImage removes an image name. It is refused (ErrFailedPrecondition)
// while a container was created from it, unless opts.Force.
func (c *Client) DeleteImage(ctx context.Context, name string, opts DeleteImageOptions) error {
	_, err := c.images.Delete(ctx, &imagesapi.DeleteImageRequest{Name: name, Sync: opts.Sync, Force: opts.Force})
	return err
}
