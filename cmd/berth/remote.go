package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/berth-dev/berth/internal/transfer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The commands here and in login.go and registry.go talk to registries
// directly through package remote; they do not need berthd.

// addHostsDirFlag adds --hosts-dir to fs.
func addHostsDirFlag(fs *pflag.FlagSet, dir *string) {
	fs.StringVar(dir, "hosts-dir", remote.DefaultHostsDir, "`DIR` of <registry>/hosts.toml files (mirrors, TLS, plain HTTP)")
}

// newRemoteClient returns a registry client using the hosts.toml files in
// hostsDir and the credentials of the Docker config file, which it also
// returns.
func newRemoteClient(hostsDir string) (*remote.Client, *remote.DockerConfig) {
	creds := remote.DockerConfigCredentials(remote.DefaultDockerConfigPath())
	return remote.New(remote.Config{HostsDir: hostsDir, Credentials: creds}), creds
}

// parseRef parses an image reference argument; a malformed one is a usage
// error.
func parseRef(s string) (remote.Reference, error) {
	ref, err := remote.ParseReference(s)
	if err != nil {
		return remote.Reference{}, &usageError{err}
	}
	return ref, nil
}

func newRemoteCommand(a *app) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "remote",
		Short: "Inspect and copy images in registries, without berthd",
	})
	cmd.AddCommand(newRemoteInspectCommand(a), newRemoteTagsCommand(a), newRemoteCopyCommand(a))
	return cmd
}

func newRemoteInspectCommand(_ *app) *cobra.Command {
	var (
		raw      bool
		platform string
		hostsDir string
	)
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show an image's manifest and config as JSON, without pulling its layers",
		Long: `Show an image's manifest and config as JSON, without pulling its layers:
its digest, the platforms of an index, and for one manifest (this host's
platform, or --platform) its layers, config and total size. --raw prints the
manifest bytes as the registry stores them.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args[0])
			if err != nil {
				return err
			}
			var want *ocispec.Platform
			if platform != "" {
				p, err := remote.ParsePlatform(platform)
				if err != nil {
					return &usageError{err}
				}
				want = &p
			}
			c, _ := newRemoteClient(hostsDir)
			defer c.Close()
			return remoteInspect(cmd.Context(), cmd.OutOrStdout(), c, ref, want, raw)
		},
	}
	cmd.Flags().BoolVar(&raw, "raw", false, "print the manifest (or index) bytes as stored")
	cmd.Flags().StringVar(&platform, "platform", "", "describe the manifest for `OS/ARCH[/VARIANT]` of an index (default: this host's)")
	addHostsDirFlag(cmd.Flags(), &hostsDir)
	return cmd
}

// remoteDoc is what `remote inspect` prints.
type remoteDoc struct {
	Name      string             `json:"name"`
	Digest    string             `json:"digest"`
	MediaType string             `json:"mediaType"`
	Platforms []remotePlatform   `json:"platforms,omitempty"`
	Manifest  *remotePlatform    `json:"manifest,omitempty"` // the manifest picked from an index
	Config    remoteConfig       `json:"config"`
	Layers    []remoteDescriptor `json:"layers"`
	Size      int64              `json:"size"` // manifest, config and layers
}

type remotePlatform struct {
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

type remoteDescriptor struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

type remoteConfig struct {
	Digest       string            `json:"digest"`
	Architecture string            `json:"architecture"`
	OS           string            `json:"os"`
	Variant      string            `json:"variant,omitempty"`
	Created      *time.Time        `json:"created,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	History      []ocispec.History `json:"history,omitempty"`
}

func remoteInspect(ctx context.Context, w io.Writer, c *remote.Client, ref remote.Reference, want *ocispec.Platform, raw bool) error {
	name, desc, err := c.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	data, err := c.FetchManifest(ctx, ref, desc)
	if err != nil {
		return err
	}
	doc := remoteDoc{Name: name, Digest: desc.Digest.String(), MediaType: desc.MediaType}
	mdesc, mdata := desc, data
	if remote.IsIndex(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return fmt.Errorf("index %s of %s: %w", desc.Digest, name, err)
		}
		for _, m := range idx.Manifests {
			p := "-"
			if m.Platform != nil {
				p = remote.FormatPlatform(*m.Platform)
			}
			doc.Platforms = append(doc.Platforms, remotePlatform{Platform: p, Digest: m.Digest.String(), MediaType: m.MediaType, Size: m.Size})
		}
		if raw && want == nil {
			_, err := w.Write(data)
			return err
		}
		p := remote.DefaultPlatform()
		if want != nil {
			p = *want
		}
		if mdesc, err = remote.MatchPlatform(idx, p); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if mdata, err = c.FetchManifest(ctx, ref, mdesc); err != nil {
			return err
		}
		doc.Manifest = &remotePlatform{Platform: remote.FormatPlatform(*mdesc.Platform), Digest: mdesc.Digest.String(),
			MediaType: mdesc.MediaType, Size: mdesc.Size}
	}
	if raw {
		_, err := w.Write(mdata)
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mdata, &m); err != nil {
		return fmt.Errorf("manifest %s of %s: %w", mdesc.Digest, name, err)
	}
	cfg, err := fetchConfig(ctx, c, ref, m.Config)
	if err != nil {
		return fmt.Errorf("config of %s: %w", name, err)
	}
	if want != nil && doc.Manifest == nil && (cfg.OS != want.OS || cfg.Architecture != want.Architecture) {
		return fmt.Errorf("%s is a single manifest for %s, not %s: %w", name,
			remote.FormatPlatform(cfg.Platform), remote.FormatPlatform(*want), errdefs.ErrNotFound)
	}
	doc.Config = remoteConfig{
		Digest: m.Config.Digest.String(), Architecture: cfg.Architecture, OS: cfg.OS, Variant: cfg.Variant,
		Created: cfg.Created, Env: cfg.Config.Env, Cmd: cfg.Config.Cmd, Entrypoint: cfg.Config.Entrypoint,
		Labels: cfg.Config.Labels, History: cfg.History,
	}
	doc.Size = mdesc.Size + m.Config.Size
	doc.Layers = []remoteDescriptor{}
	for _, l := range m.Layers {
		doc.Layers = append(doc.Layers, remoteDescriptor{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType})
		doc.Size += l.Size
	}
	return printJSON(w, doc)
}

// fetchConfig fetches and decodes an image config blob, checking its digest.
func fetchConfig(ctx context.Context, c *remote.Client, ref remote.Reference, desc ocispec.Descriptor) (ocispec.Image, error) {
	if desc.Size > remote.MaxManifestSize {
		return ocispec.Image{}, fmt.Errorf("config %s: %d bytes is too large: %w", desc.Digest, desc.Size, errdefs.ErrInvalidArgument)
	}
	rc, err := c.Fetch(ctx, ref, desc)
	if err != nil {
		return ocispec.Image{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(remote.VerifyReader(rc, desc))
	if err != nil {
		return ocispec.Image{}, fmt.Errorf("config %s: %w", desc.Digest, err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(data, &img); err != nil {
		return ocispec.Image{}, fmt.Errorf("config %s: %w", desc.Digest, err)
	}
	return img, nil
}

func newRemoteTagsCommand(_ *app) *cobra.Command {
	var (
		out      output
		hostsDir string
	)
	cmd := &cobra.Command{
		Use:   "tags REPOSITORY",
		Short: "List the tags of a repository, one per line",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args[0])
			if err != nil {
				return err
			}
			c, _ := newRemoteClient(hostsDir)
			defer c.Close()
			tags, err := c.Tags(cmd.Context(), ref)
			if err != nil {
				return err
			}
			if out.json() {
				if tags == nil {
					tags = []string{}
				}
				return printJSON(cmd.OutOrStdout(), tags)
			}
			for _, t := range tags {
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), t); err != nil {
					return err
				}
			}
			return nil
		},
	}
	out.addFormatFlag(cmd.Flags())
	addHostsDirFlag(cmd.Flags(), &hostsDir)
	return cmd
}

func newRemoteCopyCommand(_ *app) *cobra.Command {
	var (
		hostsDir string
		platform string
	)
	cmd := &cobra.Command{
		Use:   "copy SOURCE DESTINATION",
		Short: "Copy an image, with every platform, between registries, OCI layouts and archives",
		Long: `Copy an image, with every platform of an index, between registries, OCI
image layouts and archives. SOURCE and DESTINATION are, as for skopeo:

  docker://IMAGE                   an image in a registry
  oci:DIR[:NAME]                   an OCI image layout directory; NAME is the
                                   org.opencontainers.image.ref.name annotation
  oci-archive:FILE[:NAME]          the same layout as a tar
  docker-archive:FILE[:REPO:TAG]   docker save's format, one platform per image
                                   (this host's, or --platform)

A source without NAME must hold exactly one image. Writing to an oci:
directory adds the image (replacing one of the same NAME); writing an
archive replaces the file, atomically. Blobs stream one by one, each
checked against its digest; blobs the destination has are skipped, and
between repositories of one registry they are mounted. Prints a line per
blob read to stderr, and the destination pinned to the copied digest.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseTransportRef(args[0])
			if err != nil {
				return err
			}
			dst, err := parseTransportRef(args[1])
			if err != nil {
				return err
			}
			opts := transfer.Options{Progress: cmd.ErrOrStderr()}
			if platform != "" {
				if dst.Transport != transfer.DockerArchive {
					return usagef("--platform applies to a docker-archive destination; other destinations get every platform")
				}
				p, err := remote.ParsePlatform(platform)
				if err != nil {
					return &usageError{err}
				}
				opts.Platform = &p
			}
			c, _ := newRemoteClient(hostsDir)
			defer c.Close()
			desc, err := transfer.Copy(cmd.Context(), c, src, dst, opts)
			if err != nil {
				return err
			}
			name := dst.String()
			if dst.Transport == transfer.Docker {
				name = dst.Ref.Name()
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", name, desc.Digest)
			return err
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "the `OS/ARCH[/VARIANT]` of an index to write to a docker-archive (default: this host's)")
	addHostsDirFlag(cmd.Flags(), &hostsDir)
	return cmd
}

// otherTransports are the image transports of skopeo that copy does not
// support.
var otherTransports = []string{"dir", "docker-daemon", "containers-storage"}

// parseTransportRef parses a copy argument, TRANSPORT:REF (see
// transfer.ParseEndpoint).
func parseTransportRef(s string) (transfer.Endpoint, error) {
	transport, _, _ := strings.Cut(s, ":")
	for _, t := range otherTransports {
		if transport == t {
			return transfer.Endpoint{}, fmt.Errorf("%q: transport %s: not supported (use docker://, oci:, oci-archive: or docker-archive:): %w", s, t, errdefs.ErrNotImplemented)
		}
	}
	e, err := transfer.ParseEndpoint(s)
	if err != nil {
		return transfer.Endpoint{}, &usageError{err}
	}
	return e, nil
}
