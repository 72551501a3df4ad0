package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Pusher pushes images from the content store to registries. It is safe
// for concurrent use.
type Pusher struct {
	cfg Config
}

// NewPusher returns a Pusher. It uses cfg's Content, Remote, RemoteConfig,
// Concurrency (blobs uploaded at once, default 3) and Observer.
func NewPusher(cfg Config) *Pusher {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 3
	}
	return &Pusher{cfg: cfg}
}

// PushOptions choose what a push sends.
type PushOptions struct {
	// Platform, like "linux/arm64", pushes only that platform's manifest
	// of an index, as the reference's tag; empty pushes the whole image.
	Platform string
	// Auth authenticates this push to the reference's registry; the zero
	// value means none (hosts.toml credentials still apply).
	Auth remote.Auth
}

// Push uploads the image whose root is target (an image record's target)
// to refStr through the hosts with the push capability (a pull-only mirror
// is never written to), reporting progress to fn (called from one
// goroutine at a time; nil for none). It returns the descriptor pushed as
// refStr: target, or the platform's manifest.
//
// Every blob must be in the content store, so an index pulled for one
// platform is pushed with Platform set. Configs and layers go first,
// Config.Concurrency at once: a blob the repository has is skipped
// (PhaseExists), one that a repository of the same registry is known to
// hold (a distribution source label) is mounted from there
// (PhaseMounted), the others are uploaded (PhaseUploading, then
// PhaseDone). Then the child manifests go by digest, and the root last,
// under the reference's tag, so the tag never names an incomplete image.
// Each blob pushed is labelled with its new source repository.
func (p *Pusher) Push(ctx context.Context, target ocispec.Descriptor, refStr string, opts PushOptions, fn func(Progress)) (desc ocispec.Descriptor, err error) {
	finished := p.cfg.track(OpPush)
	defer func() { finished(err) }()
	ref, err := remote.ParseReference(refStr)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	root := target
	if opts.Platform != "" {
		if root, err = platformManifest(ctx, p.cfg.Content, target, opts.Platform); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("push %s: %w", ref, err)
		}
	}
	if ref.Digest != "" && ref.Digest != root.Digest {
		return ocispec.Descriptor{}, fmt.Errorf("push %s: the image is %s: %w", ref, root.Digest, errdefs.ErrInvalidArgument)
	}
	contents, err := walkImage(ctx, p.cfg.Content, root, nil)
	if err != nil {
		if errors.Is(err, errMissingContent) && remote.IsIndex(root.MediaType) {
			return ocispec.Descriptor{}, fmt.Errorf("push %s: %w (pull the image with --all-platforms, or push one platform with --platform)", ref, err)
		}
		return ocispec.Descriptor{}, fmt.Errorf("push %s: %w", ref, err)
	}
	rc, release := p.cfg.remoteFor(ref.Registry, opts.Auth)
	defer release()
	ps := &push{Pusher: p, ref: ref, rep: &reporter{fn: fn}, remote: rc}
	if err := ps.blobs(ctx, contents); err != nil {
		return ocispec.Descriptor{}, explainAuth(err, ref.Registry, opts.Auth)
	}
	for _, m := range contents.manifests {
		if err := ps.manifest(ctx, ref.WithDigest(m.Digest), m, rootKind(m)); err != nil {
			return ocispec.Descriptor{}, explainAuth(err, ref.Registry, opts.Auth)
		}
	}
	if err := ps.manifest(ctx, ref, root, rootKind(root)); err != nil {
		return ocispec.Descriptor{}, explainAuth(err, ref.Registry, opts.Auth)
	}
	log.G(ctx).Info("pushed image", "ref", ref.String(), "digest", root.Digest, "blobs", len(contents.blobs))
	return root, nil
}

// platformManifest returns the manifest of target for platform: the
// matching entry of an index, or target itself if its config is for that
// platform.
func platformManifest(ctx context.Context, cs content.Provider, target ocispec.Descriptor, platform string) (ocispec.Descriptor, error) {
	want, err := remote.ParsePlatform(platform)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, m, err := Manifest(ctx, cs, target, want)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if remote.IsIndex(target.MediaType) {
		return desc, nil
	}
	data, err := content.ReadBlob(ctx, cs, m.Config.Digest)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("config %s: %w", m.Config.Digest, missing(err))
	}
	var img ocispec.Image
	if err := json.Unmarshal(data, &img); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image config %s: %v: %w", m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	desc.Platform = &img.Platform
	if _, err := remote.MatchPlatform(ocispec.Index{Manifests: []ocispec.Descriptor{desc}}, want); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image is for %s, not %s: %w", remote.FormatPlatform(img.Platform), remote.FormatPlatform(want), errdefs.ErrNotFound)
	}
	desc.Platform = nil
	return desc, nil
}

// push is the state of one Push.
type push struct {
	*Pusher
	ref    remote.Reference
	rep    *reporter
	remote *remote.Client
}

// blobs pushes the configs and layers, Concurrency at once, and stops at
// the first failure.
func (ps *push) blobs(ctx context.Context, c imageContents) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, b := range c.blobs {
		ps.rep.report(Progress{Kind: b.kind, Digest: b.Digest, Phase: PhaseWaiting, Total: b.Size})
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, ps.cfg.Concurrency)
	for _, b := range c.blobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := ps.blob(ctx, b, c.labels[b.Digest]); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// blob pushes one config or layer and labels it with its new source.
func (ps *push) blob(ctx context.Context, b item, labels map[string]string) error {
	from := mountSource(labels, ps.ref)
	var uploaded atomic.Bool
	open := func() (io.ReadCloser, error) {
		uploaded.Store(true)
		ra, err := ps.cfg.Content.ReaderAt(ctx, b.Digest)
		if err != nil {
			return nil, err
		}
		ps.rep.report(Progress{Kind: b.kind, Digest: b.Digest, Phase: PhaseUploading, Total: b.Size})
		return &uploadReader{ps: ps, r: io.NewSectionReader(ra, 0, ra.Size()), c: ra, b: b}, nil
	}
	if err := ps.remote.Push(ctx, ps.ref, b.Descriptor, open, remote.PushOptions{From: from}); err != nil {
		return err
	}
	phase := PhaseDone
	switch {
	case uploaded.Load():
	case from != "":
		phase = PhaseMounted
	default:
		phase = PhaseExists
	}
	ps.rep.report(Progress{Kind: b.kind, Digest: b.Digest, Phase: phase, Offset: b.Size, Total: b.Size})
	return addSource(ctx, ps.cfg.Content, b.Digest, labels, ps.ref)
}

// manifest pushes a manifest or index as ref: by digest (skipped if the
// repository has it), or under ref's tag.
func (ps *push) manifest(ctx context.Context, ref remote.Reference, desc ocispec.Descriptor, kind string) error {
	data, err := content.ReadBlob(ctx, ps.cfg.Content, desc.Digest)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, desc.Digest, missing(err))
	}
	ps.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseWaiting, Total: desc.Size})
	uploaded := false
	open := func() (io.ReadCloser, error) {
		uploaded = true
		ps.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseUploading, Total: desc.Size})
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	if err := ps.remote.Push(ctx, ref, desc, open, remote.PushOptions{}); err != nil {
		return err
	}
	phase := PhaseExists
	if uploaded {
		phase = PhaseDone
		ps.cfg.transferred(OpPush, desc.Size)
	}
	ps.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: phase, Offset: desc.Size, Total: desc.Size})
	return nil
}

// uploadReader reads a blob for an upload, reporting progress.
type uploadReader struct {
	ps   *push
	r    io.Reader
	c    io.Closer
	b    item
	n    int64
	last int64
}

func (u *uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if n > 0 {
		u.n += int64(n)
		u.ps.cfg.transferred(OpPush, int64(n))
		if u.n-u.last >= progressEvery || u.n == u.b.Size {
			u.ps.rep.report(Progress{Kind: u.b.kind, Digest: u.b.Digest, Phase: PhaseUploading, Offset: u.n, Total: u.b.Size})
			u.last = u.n
		}
	}
	return n, err
}

func (u *uploadReader) Close() error { return u.c.Close() }
