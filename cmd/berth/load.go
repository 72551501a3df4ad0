package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/archive"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// loadLeaseExpiry bounds how long an interrupted load's blobs are kept.
const loadLeaseExpiry = 24 * time.Hour

func newLoadCommand(a *app) *cobra.Command {
	var input, platform string
	cmd := &cobra.Command{
		Use:   "load -i FILE [--platform P]",
		Short: "Load images from a tar archive",
		Long: `Load the images of a tar archive into berthd: an OCI archive (berth save,
skopeo's oci-archive) or a docker-archive (docker save). Every blob is
written through the daemon's content service under a lease, then each image
is created and unpacked for the daemon's platform (or --platform). An OCI
archive must hold every manifest its indexes list. Images keep the names
the archive gives them; an unnamed one is named by its digest.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if input == "" {
				return usagef("%q requires -i FILE", cmd.CommandPath())
			}
			return noArgs(cmd, args)
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, err := archive.OpenFile(input)
			if err != nil {
				return err
			}
			defer r.Close()
			images := r.Images()
			if len(images) == 0 {
				return fmt.Errorf("load %s: the archive holds no image: %w", input, client.ErrInvalidArgument)
			}
			lease, err := a.client.CreateLease(ctx, "", loadLeaseExpiry, map[string]string{"berth.io/load": input})
			if err != nil {
				return err
			}
			defer func() {
				// The images now hold what the lease protected.
				if err := a.client.DeleteLease(context.WithoutCancel(ctx), lease.ID, false); err != nil {
					fmt.Fprintf(a.stderr, "berth: warning: lease %s of this load stays until it expires: %v\n", lease.ID, err)
				}
			}()
			lctx := client.WithLease(ctx, lease.ID)
			var roots []ocispec.Descriptor
			for _, img := range images {
				roots = append(roots, img.Target)
			}
			err = archive.Walk(ctx, r, roots, func(desc ocispec.Descriptor, manifest []byte) error {
				return ingestBlob(lctx, a.client, r, desc, manifest)
			})
			if err != nil {
				return fmt.Errorf("load %s: %w", input, err)
			}
			for _, img := range images {
				created, err := a.client.CreateImage(lctx, loadName(img), client.Descriptor{
					MediaType: img.Target.MediaType, Digest: img.Target.Digest.String(), Size: img.Target.Size,
				}, client.CreateImageOptions{Unpack: true, Platform: platform})
				if err != nil {
					return fmt.Errorf("load %s: %w", input, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", created.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read the archive from `FILE`")
	cmd.Flags().StringVar(&platform, "platform", "", "unpack for `OS/ARCH[/VARIANT]` instead of the daemon's platform")
	return cmd
}

// loadName is the name a loaded image gets: the full reference Docker and
// containerd annotate, else the archive's name, else its digest.
func loadName(img archive.Image) string {
	if n := img.Target.Annotations[archive.AnnotationImageName]; n != "" {
		return n
	}
	if img.Name != "" {
		return img.Name
	}
	return img.Target.Digest.String()
}

// ingestBlob writes the blob desc (whose bytes are manifest, for an index
// or manifest) from r into the content store; the daemon verifies it.
func ingestBlob(ctx context.Context, c *client.Client, r archive.Fetcher, desc ocispec.Descriptor, manifest []byte) error {
	var src io.Reader = bytes.NewReader(manifest)
	if manifest == nil {
		rc, err := r.Fetch(ctx, desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		src = rc
	}
	_, err := c.Ingest(ctx, src, client.IngestOpts{Ref: "load-" + desc.Digest.String(), Size: desc.Size, Expected: desc.Digest.String()})
	return err
}
