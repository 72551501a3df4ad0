package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	imagesapi "github.com/berth-dev/berth/api/images/v1"
)

// PushProgress reports one item of a push: the index, a manifest, the
// config or a layer. It has PullProgress's fields.
type PushProgress struct {
	Kind   string // "index", "manifest", "config" or "layer"
	Digest string
	// Phase: waiting, uploading, done, exists (the registry had it),
	// mounted (from another repository of the registry).
	Phase  string
	Offset int64 // bytes uploaded so far
	Total  int64
}

// PushOptions choose what a push sends.
type PushOptions struct {
	// Platform ("linux/arm64"), when set, pushes only that platform's
	// manifest of an index, as ref.
	Platform string
	// Auth authenticates the push to the registry ref names.
	Auth RegistryAuth
	// Progress, when set, receives each progress report.
	Progress func(PushProgress)
}

// Push uploads the image name to the registry as ref (name itself when
// ref is empty) and returns the descriptor ref now names. Blobs the
// registry has are skipped, blobs in another repository of the registry
// are mounted, and the manifests go last.
func (c *Client) Push(ctx context.Context, name, ref string, opts PushOptions) (Descriptor, error) {
	stream, err := c.images.Push(ctx, &imagesapi.PushRequest{Name: name, Ref: ref, Platform: opts.Platform, Auth: opts.Auth.toProto()})
	if err != nil {
		return Descriptor{}, err
	}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return Descriptor{}, fmt.Errorf("push %s: the daemon ended the stream without a result", name)
		} else if err != nil {
			return Descriptor{}, err
		}
		if t := r.GetTarget(); t != nil {
			return Descriptor{MediaType: t.GetMediaType(), Digest: t.GetDigest(), Size: t.GetSize()}, nil
		}
		if opts.Progress != nil {
			opts.Progress(PushProgress{Kind: r.GetKind(), Digest: r.GetDigest(), Phase: r.GetPhase(), Offset: r.GetOffset(), Total: r.GetTotal()})
		}
	}
}
