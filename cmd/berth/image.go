package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newImageCommand(a *app) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "image",
		Short: "Manage images",
	})
	ls := newImagesCommand(a)
	ls.Use, ls.Aliases = "ls", []string{"list"}
	rm := newRmiCommand(a)
	rm.Use, rm.Aliases = "rm IMAGE...", []string{"remove"}
	cmd.AddCommand(newPullCommand(a), newPushCommand(a), newSaveCommand(a), newLoadCommand(a), ls, rm, newTagCommand(a), newImageInspectCommand(a),
		newImageMountCommand(a), newImageUnmountCommand(a))
	return cmd
}

func newPullCommand(a *app) *cobra.Command {
	var (
		opts  client.PullOptions
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "pull IMAGE",
		Short: "Pull an image from a registry and unpack it",
		Long: `Pull an image from a registry and unpack it.

IMAGE is a reference like busybox, registry.local:5000/app:v1 or
app@sha256:…; short names are Docker Hub's (docker.io/library/busybox:latest).
Mirrors, TLS and plain-HTTP registries are configured in the daemon's
/etc/berth/certs.d/<host>/hosts.toml. The credentials "berth login" saved
for the image's registry are sent to the daemon for this pull.`,
		Args:        exactArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			auth, err := registryAuth(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			opts.Auth = auth
			view := newProgressView(a.stderr, isTerminal(a.stderr))
			if !quiet {
				opts.Progress = view.update
			}
			img, err := a.client.Pull(cmd.Context(), args[0], opts)
			view.finish()
			if err != nil {
				return err
			}
			if quiet {
				_, err = fmt.Fprintln(cmd.OutOrStdout(), img.Name)
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: pulled %s (%s, %s) in %s\n", img.Name, img.Target.Digest,
				img.Platform, humanSize(img.Size), time.Since(start).Round(time.Millisecond))
			return err
		},
	}
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "unpack for `OS/ARCH[/VARIANT]` instead of the daemon's platform")
	cmd.Flags().BoolVar(&opts.AllPlatforms, "all-platforms", false, "fetch the content of every platform of an index")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image name, no progress")
	return cmd
}

func newImagesCommand(a *app) *cobra.Command {
	var (
		out     output
		filters []string
	)
	cmd := &cobra.Command{
		Use:         "images",
		Short:       "List images",
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			imgs, err := a.client.ListImages(cmd.Context(), filters...)
			if err != nil {
				return err
			}
			now := time.Now()
			return printList(cmd.OutOrStdout(), out, imgs,
				func(i client.Image) string { return i.Name },
				[]string{"name", "digest", "size", "platform", "created"},
				func(i client.Image) []string {
					return []string{i.Name, shortDigest(i.Target.Digest), humanSize(i.Size), i.Platform, relativeTime(now, i.CreatedAt)}
				})
		},
	}
	out.addListFlags(cmd.Flags(), "name")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "list only images matching `FILTER` (fields: name, target.digest, labels.KEY)")
	return cmd
}

// shortDigest is the first 12 hex digits of a digest, as docker shows it.
func shortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return hex[:12]
}

func newRmiCommand(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images by name, or every name of a digest, printing each name removed",
		Long: `Remove images by name, or every name of a digest (sha256:…), printing each
name removed. Blobs and snapshots only the removed images used are deleted.
An image a container was created from is kept unless -f (the container
keeps its own snapshot either way).`,
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, arg := range args {
				if !strings.HasPrefix(arg, "sha256:") {
					names = append(names, arg)
					continue
				}
				imgs, err := a.client.ListImages(cmd.Context(), "target.digest=="+arg)
				if err != nil {
					return err
				}
				if len(imgs) == 0 {
					return fmt.Errorf("no image has digest %s: %w", arg, client.ErrNotFound)
				}
				for _, img := range imgs {
					names = append(names, img.Name)
				}
			}
			return removeEach(cmd, a, names, func(name string) error {
				return a.client.DeleteImage(cmd.Context(), name, client.DeleteImageOptions{Force: force})
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the image even if containers were created from it")
	return cmd
}

func newTagCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "tag SOURCE TARGET",
		Short:       "Give an image another name",
		Args:        exactArgs(2),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := a.client.TagImage(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), img.Name)
			return err
		},
	}
}

func newImageInspectCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "inspect IMAGE",
		Short:       "Show an image's record, manifest and config as JSON",
		Args:        exactArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := inspectImage(cmd.Context(), a.client, args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), doc)
		},
	}
}

// imageDoc is what `image inspect` prints.
type imageDoc struct {
	Image    client.Image    `json:"image"`
	Index    json.RawMessage `json:"index,omitempty"`
	Manifest json.RawMessage `json:"manifest"`
	Config   json.RawMessage `json:"config"`
}

func inspectImage(ctx context.Context, c *client.Client, name string) (imageDoc, error) {
	img, err := c.GetImage(ctx, name)
	if err != nil {
		return imageDoc{}, err
	}
	doc := imageDoc{Image: img}
	read := func(dgst string) (json.RawMessage, error) {
		var buf bytes.Buffer
		if _, err := c.ReadBlob(ctx, dgst, 0, 0, &buf); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	manifest := img.Target.Digest
	if strings.Contains(img.Target.MediaType, "index") || strings.Contains(img.Target.MediaType, "manifest.list") {
		if doc.Index, err = read(img.Target.Digest); err != nil {
			return imageDoc{}, err
		}
		var idx struct {
			Manifests []struct {
				Digest   string `json:"digest"`
				Platform struct {
					OS           string `json:"os"`
					Architecture string `json:"architecture"`
					Variant      string `json:"variant"`
				} `json:"platform"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(doc.Index, &idx); err != nil {
			return imageDoc{}, fmt.Errorf("image %s: index: %w", name, err)
		}
		for _, m := range idx.Manifests {
			p := m.Platform.OS + "/" + m.Platform.Architecture
			if m.Platform.Variant != "" {
				p += "/" + m.Platform.Variant
			}
			if p == img.Platform {
				manifest = m.Digest
			}
		}
	}
	if doc.Manifest, err = read(manifest); err != nil {
		return imageDoc{}, err
	}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal(doc.Manifest, &m); err != nil {
		return imageDoc{}, fmt.Errorf("image %s: manifest: %w", name, err)
	}
	if doc.Config, err = read(m.Config.Digest); err != nil {
		return imageDoc{}, err
	}
	return doc, nil
}
