// Package transfer copies an image, with every platform, between
// registries, OCI image layouts and archives: the daemonless
// `berth remote copy`. It opens the source (package remote for a registry,
// package archive for the others), walks the image graph and streams it
// object by object into the destination, checking every digest on the
// way. A registry-to-registry copy is remote.Client.Copy, which mounts
// blobs across repositories of one registry. Blobs the destination has
// are skipped: a registry answers HEAD, a layout has the file; archives
// are written whole.
//
// It must not store images anywhere but the destination it is given, and
// it never talks to berthd.
package transfer

import (
	"bytes"
	"context"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
)

// Options tunes one Copy.
type Options struct {
	// Platform picks the manifest of an index written to a
	// docker-archive, which holds one platform; nil means this host's
	// (remote.DefaultPlatform).
	Platform *ocispec.Platform
	// Progress, when set, gets one line per object read from the source:
	// "copying layer sha256:… (N bytes)". Objects the destination has are
	// not read.
	Progress io.Writer
}

// Copy copies the image src names to dst and returns the manifest or
// index written: src's root, or for a docker-archive the manifest picked
// for the platform (the archive keeps its config and layers).
//
// Writing to an oci: directory adds the image to the layout (replacing an
// image of the same name); writing an archive replaces the file, through
// a temporary file renamed into place, so a failed copy leaves no partial
// file. A docker-archive written without a name is named after a registry
// source's reference, or a docker-archive source's name.
//
// Errors name the copy and the object: ErrNotFound for a missing file,
// layout or image (an unknown name lists the images there are),
// ErrInvalidArgument for a malformed source or an ambiguous one (several
// images and no name), ErrFailedPrecondition for a blob whose size or
// digest does not match its descriptor.
func Copy(ctx context.Context, c *remote.Client, src, dst Endpoint, opts Options) (ocispec.Descriptor, error) {
	if src.Transport == Docker && dst.Transport == Docker {
		return c.Copy(ctx, src.Ref, dst.Ref)
	}
	op := fmt.Sprintf("copy %s to %s", src, dst)
	s, img, err := openSource(ctx, c, src)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", op, err)
	}
	defer s.Close()
	var f archive.Fetcher = s
	if opts.Progress != nil {
		f = progress{f: s, w: opts.Progress}
	}
	desc, err := write(ctx, c, f, img, dst, opts)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", op, err)
	}
	return desc, nil
}

// source is an opened source endpoint.
type source interface {
	archive.Fetcher
	Close() error
}

// openSource opens the source and finds its image. The image's Name is a
// registry reference usable as a docker-archive name, or empty.
func openSource(ctx context.Context, c *remote.Client, e Endpoint) (source, archive.Image, error) {
	if e.Transport == Docker {
		_, desc, err := c.Resolve(ctx, e.Ref)
		if err != nil {
			return nil, archive.Image{}, err
		}
		img := archive.Image{Target: desc}
		if e.Ref.Tag != "" {
			ref := e.Ref
			ref.Digest = ""
			img.Name = ref.Familiar()
		}
		return registrySource{c: c, ref: e.Ref}, img, nil
	}
	var (
		r   *archive.Reader
		err error
	)
	if e.Transport == OCI {
		r, err = archive.OpenLayout(e.Path)
	} else {
		r, err = archive.OpenFile(e.Path)
	}
	if err != nil {
		return nil, archive.Image{}, err
	}
	img, err := r.Find(e.Name)
	if err != nil {
		r.Close()
		return nil, archive.Image{}, fmt.Errorf("%s %s: %w", e.Transport, e.Path, err)
	}
	if r.Format() != archive.FormatDocker {
		img.Name = img.Target.Annotations[archive.AnnotationImageName]
	}
	return r, img, nil
}

// write copies img from f into the destination.
func write(ctx context.Context, c *remote.Client, f archive.Fetcher, img archive.Image, dst Endpoint, opts Options) (ocispec.Descriptor, error) {
	switch dst.Transport {
	case Docker:
		return img.Target, push(ctx, c, dst.Ref, f, img.Target)
	case OCI:
		return img.Target, archive.WriteLayout(ctx, dst.Path, f, []archive.Image{{Name: dst.Name, Target: img.Target}})
	case OCIArchive:
		return img.Target, archive.WriteFile(dst.Path, func(w io.Writer) error {
			return archive.WriteOCI(ctx, w, f, []archive.Image{{Name: dst.Name, Target: img.Target}})
		})
	case DockerArchive:
		platform := remote.DefaultPlatform()
		if opts.Platform != nil {
			platform = *opts.Platform
		}
		name := dst.Name
		if name == "" {
			name = img.Name
		}
		var picked []ocispec.Descriptor
		err := archive.WriteFile(dst.Path, func(w io.Writer) (err error) {
			picked, err = archive.WriteDocker(ctx, w, f, []archive.Image{{Name: name, Target: img.Target}}, platform)
			return err
		})
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		return picked[0], nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("transport %q: %w", dst.Transport, errdefs.ErrInvalidArgument)
}

// push stores the image under root in ref's repository: every blob and
// child manifest by digest (remote.Client.Push skips what the repository
// has), the root last, under ref's tag.
func push(ctx context.Context, c *remote.Client, ref remote.Reference, f archive.Fetcher, root ocispec.Descriptor) error {
	if ref.Digest != "" && ref.Digest != root.Digest {
		return fmt.Errorf("destination %q: the source is %s: %w", ref.String(), root.Digest, errdefs.ErrInvalidArgument)
	}
	return archive.Walk(ctx, f, []ocispec.Descriptor{root}, func(desc ocispec.Descriptor, manifest []byte) error {
		target := ref.WithDigest(desc.Digest)
		if desc.Digest == root.Digest {
			target = ref
		}
		return c.Push(ctx, target, desc, func() (io.ReadCloser, error) {
			if manifest != nil {
				return io.NopCloser(bytes.NewReader(manifest)), nil
			}
			rc, err := f.Fetch(ctx, desc)
			if err != nil {
				return nil, err
			}
			return verifying{Reader: remote.VerifyReader(rc, desc), Closer: rc}, nil
		}, remote.PushOptions{})
	})
}

type verifying struct {
	io.Reader
	io.Closer
}

// registrySource fetches from one repository of a registry.
type registrySource struct {
	c   *remote.Client
	ref remote.Reference
}

func (s registrySource) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return s.c.Fetch(ctx, s.ref, desc)
}

func (registrySource) Close() error { return nil }

// progress reports each object it fetches.
type progress struct {
	f archive.Fetcher
	w io.Writer
}

func (p progress) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := p.f.Fetch(ctx, desc)
	if err == nil {
		fmt.Fprintf(p.w, "copying %s %s (%d bytes)\n", archive.Kind(desc.MediaType), desc.Digest, desc.Size)
	}
	return rc, err
}
