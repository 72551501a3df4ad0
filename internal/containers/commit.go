package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/diff"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions describe the image Commit makes.
type CommitOptions struct {
	Message, Author string
	// NoPause leaves a running container running while its files are read.
	NoPause bool
}

// Commit makes an image of a container's changes: the image it was created
// from with one more layer, the container's snapshot against the image's,
// recorded and unpacked as name. It returns the new manifest's descriptor.
func (s *Service) Commit(ctx context.Context, ref, name string, opts CommitOptions) (ocispec.Descriptor, error) {
	if s.opts.Images == nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit: %w", errdefs.ErrNotImplemented)
	}
	if r, err := remote.ParseReference(name); err == nil {
		name = r.String()
	} else {
		return ocispec.Descriptor{}, err
	}
	c, err := s.opts.DB.GetContainer(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg, err := DecodeConfig(c.Config)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	base, baseCfg, chainID, err := s.image(ctx, c.Image, cfg.Platform)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit %s: its image: %w", ref, err)
	}
	if base.Target.Digest != c.ImageDigest {
		return ocispec.Descriptor{}, fmt.Errorf("commit %s: image %s now points elsewhere than when the container was created: %w", ref, c.Image, errdefs.ErrFailedPrecondition)
	}
	_, manifest, err := images.Manifest(ctx, s.content, base.Target, platformOf(baseCfg))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if p, err := s.opts.Runtime.Get(ctx, c.ID, ""); err == nil && p.Status == "running" && !opts.NoPause {
		if err := s.opts.Runtime.Pause(ctx, c.ID); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("commit %s: pause: %w", ref, err)
		}
		defer func() {
			if err := s.opts.Runtime.Resume(context.WithoutCancel(ctx), c.ID); err != nil {
				log.G(ctx).Warn("resume after commit", "container_id", c.ID, "error", err)
			}
		}()
	}
	lease, err := s.opts.DB.CreateLease(ctx, leases.Lease{Labels: map[string]string{
		leases.LabelExpire: time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	}})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer func() {
		if err := s.opts.DB.DeleteLease(context.WithoutCancel(ctx), lease.ID, false); err != nil {
			log.G(ctx).Warn("delete commit lease", "lease", lease.ID, "error", err)
		}
	}()
	ctx = leases.WithLease(ctx, lease.ID)

	layer, diffID, err := s.writeLayer(ctx, c.SnapshotKey, chainID)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit %s: %w", ref, err)
	}
	now := time.Now().UTC()
	img := baseCfg
	img.Created = &now
	img.Author = opts.Author
	img.RootFS.DiffIDs = append(append([]digest.Digest(nil), img.RootFS.DiffIDs...), diffID)
	img.History = append(append([]ocispec.History(nil), img.History...), ocispec.History{
		Created: &now, CreatedBy: "berth commit", Author: opts.Author, Comment: opts.Message,
	})
	configDesc, err := s.writeJSON(ctx, ocispec.MediaTypeImageConfig, img)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    append(append([]ocispec.Descriptor(nil), manifest.Layers...), layer),
	}
	m.SchemaVersion = 2
	target, err := s.writeJSON(ctx, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := s.opts.Images.Create(ctx, name, target, images.CreateOptions{Unpack: true}); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit %s: record image %s: %w", ref, name, err)
	}
	return target, nil
}

func platformOf(img ocispec.Image) ocispec.Platform {
	return ocispec.Platform{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant}
}

// writeLayer writes the changes of the active snapshot key against its
// parent as a gzip layer into the content store.
func (s *Service) writeLayer(ctx context.Context, key, parent string) (ocispec.Descriptor, digest.Digest, error) {
	pr, pw := io.Pipe()
	diffIDs := digest.SHA256.Digester()
	go func() {
		gz := gzip.NewWriter(pw)
		err := s.writeDiff(ctx, io.MultiWriter(gz, diffIDs.Hash()), key, parent)
		if err == nil {
			err = gz.Close()
		}
		pw.CloseWithError(err)
	}()
	counter := &countingReader{r: pr}
	digests := digest.SHA256.Digester()
	ref := "commit-" + key + "-" + fmt.Sprint(time.Now().UnixNano())
	if err := content.WriteBlob(ctx, s.content, content.WriterOpts{Ref: ref}, io.TeeReader(counter, digests.Hash()), nil); err != nil {
		pr.CloseWithError(err)
		return ocispec.Descriptor{}, "", fmt.Errorf("write layer: %w", err)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digests.Digest(), Size: counter.n}, diffIDs.Digest(), nil
}

// writeDiff writes the tar of key's changes: straight from the upper
// directory when the snapshotter has one, else by comparing the mounted
// trees.
func (s *Service) writeDiff(ctx context.Context, w io.Writer, key, parent string) error {
	if ud, ok := s.sn.(snapshots.UpperDirer); ok {
		if upper, _, err := ud.UpperDir(ctx, key); err == nil {
			return diff.WriteDiffFromUpper(ctx, w, upper)
		}
	}
	upperMounts, err := s.sn.Mounts(ctx, key)
	if err != nil {
		return err
	}
	viewKey := "commit-view-" + key
	lowerMounts, err := s.sn.View(ctx, viewKey, parent)
	if err != nil {
		return err
	}
	defer func() {
		if err := s.sn.Remove(context.WithoutCancel(ctx), viewKey); err != nil {
			log.G(ctx).Warn("remove commit view", "key", viewKey, "error", err)
		}
	}()
	return mount.WithTempMount(ctx, lowerMounts, func(lower string) error {
		return mount.WithTempMount(ctx, upperMounts, func(upper string) error {
			return diff.WriteDiff(ctx, w, lower, upper)
		})
	})
}

func (s *Service) writeJSON(ctx context.Context, mediaType string, v any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	err = content.WriteBlob(ctx, s.content, content.WriterOpts{Ref: "commit-" + desc.Digest.String(), Total: desc.Size, Expected: desc.Digest},
		bytes.NewReader(data), nil)
	return desc, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
