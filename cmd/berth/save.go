package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// Archive formats of save's --format.
const (
	formatOCIArchive    = "oci-archive"
	formatDockerArchive = "docker-archive"
)

// archiveFormat is the --format flag of save; other values are usage errors.
type archiveFormat string

func (f *archiveFormat) String() string { return string(*f) }
func (f *archiveFormat) Type() string   { return "oci-archive|docker-archive" }
func (f *archiveFormat) Set(s string) error {
	switch s {
	case formatOCIArchive, formatDockerArchive:
		*f = archiveFormat(s)
		return nil
	}
	return fmt.Errorf("want %s or %s", formatOCIArchive, formatDockerArchive)
}

func newSaveCommand(a *app) *cobra.Command {
	var (
		output   string
		platform string
		format   = archiveFormat(formatOCIArchive)
	)
	cmd := &cobra.Command{
		Use:   "save -o FILE [--format oci-archive|docker-archive] [--platform P] IMAGE...",
		Short: "Write images to a tar archive",
		Long: `Write images from berthd's content store to a tar archive ("-o -" for
stdout), read through the daemon's content service.

oci-archive (the default) is a tar of an OCI image layout, holding every
platform of each image, named by its full reference; an image pulled for one
platform is saved with --platform, which saves that platform's manifest.
docker-archive is what "docker save" writes: one platform per image (the
host's, or --platform), named repository:tag. "berth load", skopeo and
docker read both.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usagef("%q requires -o FILE (or -o - for stdout)", cmd.CommandPath())
			}
			return minArgs(1)(cmd, args)
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f := contentFetcher{c: a.client}
			var images []archive.Image
			for _, name := range args {
				img, err := a.client.GetImage(ctx, name)
				if err != nil {
					return err
				}
				target := ocispecDescriptor(img.Target)
				if platform != "" && format == formatOCIArchive {
					if target, err = platformTarget(ctx, f, target, platform); err != nil {
						return fmt.Errorf("save %s: %w", img.Name, err)
					}
				}
				images = append(images, archive.Image{Name: img.Name, Target: target})
			}
			return writeOutput(cmd, output, func(w io.Writer) error {
				if format == formatOCIArchive {
					return archive.WriteOCI(ctx, w, f, images)
				}
				p := remote.DefaultPlatform()
				if platform != "" {
					var err error
					if p, err = remote.ParsePlatform(platform); err != nil {
						return err
					}
				}
				_, err := archive.WriteDocker(ctx, w, f, images, p)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the archive to `FILE` (- for stdout)")
	cmd.Flags().Var(&format, "format", "archive format: oci-archive or docker-archive")
	cmd.Flags().StringVar(&platform, "platform", "", "save only the `OS/ARCH[/VARIANT]` manifest of each image")
	return cmd
}

// writeOutput runs write on stdout for "-", else on a temporary file beside
// path that replaces path only once write succeeded.
func writeOutput(cmd *cobra.Command, path string, write func(io.Writer) error) error {
	if path == "-" {
		return write(cmd.OutOrStdout())
	}
	return archive.WriteFile(path, write)
}

// platformTarget returns the manifest of target for platform: the
// matching entry of an index, or target itself.
func platformTarget(ctx context.Context, f contentFetcher, target ocispec.Descriptor, platform string) (ocispec.Descriptor, error) {
	if !remote.IsIndex(target.MediaType) {
		return target, nil
	}
	want, err := remote.ParsePlatform(platform)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var buf bytes.Buffer
	if _, err := f.c.ReadBlob(ctx, target.Digest.String(), 0, 0, &buf); err != nil {
		return ocispec.Descriptor{}, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(buf.Bytes(), &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("index %s: %w", target.Digest, err)
	}
	return remote.MatchPlatform(idx, want)
}

func ocispecDescriptor(d client.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: digest.Digest(d.Digest), Size: d.Size}
}

// contentFetcher serves blobs from berthd's content store (an
// archive.Fetcher): each Fetch streams one blob over the content service.
type contentFetcher struct{ c *client.Client }

func (f contentFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if _, err := f.c.BlobInfo(ctx, desc.Digest.String()); err != nil {
		return nil, fmt.Errorf("%s %s: %w", archive.Kind(desc.MediaType), desc.Digest, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := f.c.ReadBlob(ctx, desc.Digest.String(), 0, 0, pw)
		pw.CloseWithError(err)
	}()
	return &blobReader{PipeReader: pr, stop: func() { cancel(); <-done }}, nil
}

// blobReader reads a blob streamed by a goroutine that Close stops and
// waits for.
type blobReader struct {
	*io.PipeReader
	stop func()
}

func (r *blobReader) Close() error {
	err := r.PipeReader.Close()
	r.stop()
	return err
}
