package images

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/diff"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/gc"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Leases creates and deletes the lease a pull holds (metadata.DB).
type Leases interface {
	CreateLease(ctx context.Context, l leases.Lease) (leases.Lease, error)
	DeleteLease(ctx context.Context, id string, sync bool) error
}

// Recorder records the image a pull produced (metadata.DB): it creates the
// image, or points an existing one at target, keeping its labels.
type Recorder interface {
	RecordImage(ctx context.Context, name string, target ocispec.Descriptor) error
}

// Config wires a Puller. Content and Snapshotter are the namespaced ones:
// the namespace of each Pull's context decides where the image lands.
type Config struct {
	Content         content.Store
	Snapshotter     snapshots.Snapshotter // must implement snapshots.UpperDirer
	SnapshotterName string                // for GC labels ("overlayfs")
	Whiteouts       diff.WhiteoutMode     // how this snapshotter represents deletions
	Remote          *remote.Client
	// RemoteConfig is Remote's configuration, from which a call that
	// brings its own credentials (PullOptions.Auth, PushOptions.Auth) gets
	// a client of its own.
	RemoteConfig remote.Config
	Leases       Leases
	Images       Recorder
	// Concurrency is how many blobs a pull fetches, or a push uploads, at
	// once (default 3).
	Concurrency int
	// ApplyLimits bound what one layer may unpack to.
	ApplyLimits diff.Limits
	// Observer, when set, records each pull and push (metrics).
	Observer Observer
}

// Puller pulls images, and creates them from content already in the
// content store (Create). It is safe for concurrent use; concurrent pulls
// of the same blob share one download.
type Puller struct {
	cfg     Config
	flights flights
}

// New returns a Puller.
func New(cfg Config) *Puller {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 3
	}
	return &Puller{cfg: cfg}
}

// PullOptions choose what a pull fetches.
type PullOptions struct {
	// Platform to unpack, like "linux/arm64/v8"; empty means the host's.
	Platform string
	// AllPlatforms fetches the content of every platform of an index (only
	// Platform is unpacked).
	AllPlatforms bool
	// Auth authenticates this pull to the reference's registry; the zero
	// value means none (hosts.toml credentials still apply).
	Auth remote.Auth
}

// Result is what a pull recorded.
type Result struct {
	Name     string             // the normalised reference, the image's name
	Target   ocispec.Descriptor // the manifest or index the image points at
	Manifest ocispec.Descriptor // the manifest unpacked
	ChainID  digest.Digest      // the top snapshot
}

// pullLeaseExpiry bounds how long a crashed pull's lease protects its data.
const pullLeaseExpiry = 24 * time.Hour

// Pull fetches ref and unpacks it for opts.Platform, reporting progress to
// fn (called from one goroutine at a time; nil for none). The image record
// appears only when every blob and snapshot it needs is present.
func (p *Puller) Pull(ctx context.Context, refStr string, opts PullOptions, fn func(Progress)) (res Result, err error) {
	finished := p.cfg.track(OpPull)
	defer func() { finished(err) }()
	ref, err := remote.ParseReference(refStr)
	if err != nil {
		return Result{}, err
	}
	platform := remote.DefaultPlatform()
	if opts.Platform != "" {
		if platform, err = remote.ParsePlatform(opts.Platform); err != nil {
			return Result{}, err
		}
	}
	rc, release := p.cfg.remoteFor(ref.Registry, opts.Auth)
	defer release()
	rep := &reporter{fn: fn}
	rep.report(Progress{Kind: "manifest", Phase: PhaseResolving})
	name, target, err := rc.Resolve(ctx, ref)
	if err != nil {
		return Result{}, fmt.Errorf("resolve %s: %w", ref, explainAuth(err, ref.Registry, opts.Auth))
	}
	pl := &pull{Puller: p, ref: ref, rep: rep, remote: rc}
	res, err = pl.run(ctx, name, target, platform, opts.AllPlatforms, "berth.io/pull")
	return res, explainAuth(err, ref.Registry, opts.Auth)
}

// pull is the state of one Pull, or of one Create, which runs the same
// pipeline over the content store alone.
type pull struct {
	*Puller
	ref    remote.Reference
	rep    *reporter
	remote *remote.Client // nil when local
	// local (Create): blobs must be in the content store; a missing one is
	// an error of kind ErrFailedPrecondition, and an index's manifests
	// other than the platform's are taken only when present.
	local bool
	// skipUnpack (Create without unpacking) leaves even the platform's
	// layers packed.
	skipUnpack bool
}

// run stores target (fetching what the content store lacks, unless local)
// under a lease labelled leaseLabel=name, unpacks it for platform, and
// records it as the image name. With all, every platform of an index is
// stored.
func (pl *pull) run(ctx context.Context, name string, target ocispec.Descriptor, platform ocispec.Platform, all bool, leaseLabel string) (Result, error) {
	lease, err := pl.cfg.Leases.CreateLease(ctx, leases.Lease{Labels: map[string]string{
		leases.LabelExpire: time.Now().Add(pullLeaseExpiry).UTC().Format(time.RFC3339),
		leaseLabel:         name,
	}})
	if err != nil {
		return Result{}, err
	}
	defer func() {
		// The image (if recorded) now holds what the lease protected.
		if err := pl.cfg.Leases.DeleteLease(context.WithoutCancel(ctx), lease.ID, false); err != nil {
			log.G(ctx).Warn("delete pull lease", "lease", lease.ID, "error", err)
		}
	}()
	ctx = leases.WithLease(ctx, lease.ID)
	res := Result{Name: name, Target: target}
	if remote.IsIndex(target.MediaType) {
		res.Manifest, res.ChainID, err = pl.index(ctx, name, target, platform, all)
	} else {
		res.Manifest = target
		res.ChainID, err = pl.manifest(ctx, target, !pl.skipUnpack)
	}
	if err != nil {
		return Result{}, err
	}
	if err := pl.cfg.Images.RecordImage(ctx, name, target); err != nil {
		return Result{}, err
	}
	return res, nil
}

// index handles an index: it picks the platform's manifest (and, with all,
// fetches the others), and stores the index with references to them.
func (pl *pull) index(ctx context.Context, name string, desc ocispec.Descriptor, platform ocispec.Platform, all bool) (ocispec.Descriptor, digest.Digest, error) {
	data, err := pl.smallBlob(ctx, desc, "index")
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("index %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	chosen, err := remote.MatchPlatform(idx, platform)
	if err != nil && (!pl.local || !pl.skipUnpack) {
		return ocispec.Descriptor{}, "", fmt.Errorf("image %s: %w", name, err)
	}
	fetch := []ocispec.Descriptor{chosen}
	if all {
		fetch = nil
		for _, m := range idx.Manifests {
			if remote.IsManifest(m.MediaType) {
				fetch = append(fetch, m)
			}
		}
	}
	refs := map[string]string{}
	var chainID digest.Digest
	for i, m := range fetch {
		unpack := m.Digest == chosen.Digest && !pl.skipUnpack
		if pl.local && !unpack && !pl.present(ctx, m.Digest) {
			continue
		}
		top, err := pl.manifest(ctx, m, unpack)
		if err != nil {
			return ocispec.Descriptor{}, "", err
		}
		if unpack {
			chainID = top
		}
		refs[fmt.Sprintf("%s.m.%d", gc.LabelRefContentPrefix, i)] = m.Digest.String()
	}
	if len(refs) == 0 {
		return ocispec.Descriptor{}, "", fmt.Errorf("image %s: index %s: none of its manifests is in the content store: %w", name, desc.Digest, errMissingContent)
	}
	if err := pl.store(ctx, desc, data, refs); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return chosen, chainID, nil
}

// manifest fetches a manifest's config and layers, unpacks them when asked,
// and stores the manifest with references to its blobs. It returns the top
// chainID.
func (pl *pull) manifest(ctx context.Context, desc ocispec.Descriptor, unpack bool) (digest.Digest, error) {
	data, err := pl.smallBlob(ctx, desc, "manifest")
	if err != nil {
		return "", err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("manifest %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if m.Config.Digest == "" || len(m.Layers) == 0 {
		return "", fmt.Errorf("manifest %s: no config or no layers: %w", desc.Digest, errdefs.ErrInvalidArgument)
	}
	cfgData, err := pl.smallBlob(ctx, m.Config, "config")
	if err != nil {
		return "", err
	}
	var img ocispec.Image
	if err := json.Unmarshal(cfgData, &img); err != nil {
		return "", fmt.Errorf("image config %s: %v: %w", m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		return "", fmt.Errorf("image config %s lists %d diffIDs for %d layers: %w", m.Config.Digest, len(img.RootFS.DiffIDs), len(m.Layers), errdefs.ErrInvalidArgument)
	}
	chainIDs := ChainIDs(img.RootFS.DiffIDs)
	top := chainIDs[len(chainIDs)-1]
	if err := pl.layers(ctx, m.Layers, img.RootFS.DiffIDs, chainIDs, unpack); err != nil {
		return "", err
	}
	var cfgRefs map[string]string
	if unpack {
		cfgRefs = map[string]string{gc.LabelRefSnapshotPrefix + pl.cfg.SnapshotterName: top.String()}
	}
	if err := pl.store(ctx, m.Config, cfgData, cfgRefs); err != nil {
		return "", err
	}
	refs := map[string]string{gc.LabelRefContentPrefix + ".config": m.Config.Digest.String()}
	for i, l := range m.Layers {
		refs[fmt.Sprintf("%s.l.%d", gc.LabelRefContentPrefix, i)] = l.Digest.String()
	}
	return top, pl.store(ctx, desc, data, refs)
}

// layers fetches the layers concurrently and, when unpack is set, applies
// each in order as soon as it and its parent are ready.
func (pl *pull) layers(ctx context.Context, layers []ocispec.Descriptor, diffIDs, chainIDs []digest.Digest, unpack bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make([]chan error, len(layers))
	sem := make(chan struct{}, pl.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, l := range layers {
		done[i] = make(chan error, 1)
		pl.rep.report(Progress{Kind: "layer", Digest: l.Digest, Phase: PhaseWaiting, Total: l.Size})
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				done[i] <- ctx.Err()
				return
			}
			defer func() { <-sem }()
			done[i] <- pl.fetch(ctx, l, "layer")
		}()
	}
	parent := ""
	for i, l := range layers {
		if err := <-done[i]; err != nil {
			return err
		}
		if !unpack {
			pl.rep.report(Progress{Kind: "layer", Digest: l.Digest, Phase: PhaseDone, Offset: l.Size, Total: l.Size})
			continue
		}
		if err := pl.unpack(ctx, i, l, diffIDs[i], chainIDs[i], parent); err != nil {
			return err
		}
		parent = chainIDs[i].String()
	}
	return nil
}

// unpack applies layer i into a new snapshot on parent and commits it as
// chainID, unless that snapshot exists already.
func (pl *pull) unpack(ctx context.Context, i int, l ocispec.Descriptor, diffID, chainID digest.Digest, parent string) error {
	sn := pl.cfg.Snapshotter
	if _, err := sn.Stat(ctx, chainID.String()); err == nil {
		pl.rep.report(Progress{Kind: "layer", Digest: l.Digest, Phase: PhaseExists, Offset: l.Size, Total: l.Size})
		return nil
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	pl.rep.report(Progress{Kind: "layer", Digest: l.Digest, Phase: PhaseUnpacking, Offset: l.Size, Total: l.Size})
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	key := fmt.Sprintf("extract-%s-%s", hex.EncodeToString(nonce[:]), chainID.Encoded())
	if _, err := sn.Prepare(ctx, key, parent); err != nil {
		return fmt.Errorf("unpack layer %d (%s): %w", i, l.Digest, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	ud, ok := sn.(snapshots.UpperDirer)
	if !ok {
		return fmt.Errorf("unpack layer %d: snapshotter %s cannot be written without a mount: %w", i, pl.cfg.SnapshotterName, errdefs.ErrNotImplemented)
	}
	dir, lowers, err := ud.UpperDir(ctx, key)
	if err != nil {
		return fmt.Errorf("unpack layer %d (%s): %w", i, l.Digest, err)
	}
	ra, err := pl.cfg.Content.ReaderAt(ctx, l.Digest)
	if err != nil {
		return fmt.Errorf("unpack layer %d (%s): %w", i, l.Digest, err)
	}
	res, err := diff.Apply(ctx, dir, io.NewSectionReader(ra, 0, ra.Size()), diff.ApplyOptions{Whiteouts: pl.cfg.Whiteouts, Lowers: lowers, Limits: pl.cfg.ApplyLimits})
	ra.Close()
	if err != nil {
		return fmt.Errorf("unpack layer %d (%s): %w", i, l.Digest, err)
	}
	if res.DiffID != diffID {
		return fmt.Errorf("unpack layer %d (%s): its uncompressed digest is %s but the image config says %s: %w", i, l.Digest, res.DiffID, diffID, errdefs.ErrFailedPrecondition)
	}
	if err := sn.Commit(ctx, chainID.String(), key); err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("unpack layer %d (%s): %w", i, l.Digest, err)
	} else if err == nil {
		committed = true
	}
	pl.rep.report(Progress{Kind: "layer", Digest: l.Digest, Phase: PhaseDone, Offset: l.Size, Total: l.Size})
	return nil
}

// maxSmallBlob caps manifests, indexes and configs read into memory.
const maxSmallBlob = remote.MaxManifestSize

// smallBlob returns a manifest, index or config, from the content store if
// present, else from the registry (verified). It is stored later, with its
// references, by store.
func (pl *pull) smallBlob(ctx context.Context, desc ocispec.Descriptor, kind string) ([]byte, error) {
	if desc.Size > maxSmallBlob {
		return nil, fmt.Errorf("%s %s is %d bytes, over the %d-byte limit: %w", kind, desc.Digest, desc.Size, maxSmallBlob, errdefs.ErrInvalidArgument)
	}
	if data, err := content.ReadBlob(ctx, pl.cfg.Content, desc.Digest); err == nil {
		pl.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseExists, Offset: desc.Size, Total: desc.Size})
		return data, nil
	} else if pl.local {
		return nil, fmt.Errorf("%s %s: %w", kind, desc.Digest, missing(err))
	}
	if kind == "config" {
		// A blob like the layers: shared between concurrent pulls.
		if err := pl.fetch(ctx, desc, kind); err != nil {
			return nil, err
		}
		return content.ReadBlob(ctx, pl.cfg.Content, desc.Digest)
	}
	pl.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseDownloading, Total: desc.Size})
	data, err := pl.remote.FetchManifest(ctx, pl.ref.WithDigest(desc.Digest), desc)
	if err != nil {
		return nil, fmt.Errorf("fetch %s %s: %w", kind, desc.Digest, err)
	}
	pl.cfg.transferred(OpPull, int64(len(data)))
	pl.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseDone, Offset: desc.Size, Total: desc.Size})
	return data, nil
}

// store writes a small blob (if absent) and sets its GC reference labels.
func (pl *pull) store(ctx context.Context, desc ocispec.Descriptor, data []byte, refs map[string]string) error {
	opts := content.WriterOpts{Ref: "pull-" + desc.Digest.String(), Total: desc.Size, Expected: desc.Digest}
	err := pl.once(ctx, desc.Digest, func() error {
		return content.WriteBlob(ctx, pl.cfg.Content, opts, bytes.NewReader(data), nil)
	})
	if err != nil {
		return fmt.Errorf("store %s: %w", desc.Digest, err)
	}
	if len(refs) == 0 {
		return nil
	}
	paths := make([]string, 0, len(refs))
	for k := range refs {
		paths = append(paths, "labels."+k)
	}
	if _, err := pl.cfg.Content.Update(ctx, content.Info{Digest: desc.Digest, Labels: refs}, paths...); err != nil {
		return fmt.Errorf("label %s: %w", desc.Digest, err)
	}
	return nil
}

// fetch downloads a blob into the content store unless it is there,
// resuming a partial ingest with a ranged request, and labels it with its
// source repository. Concurrent fetches of the same digest share one
// download.
func (pl *pull) fetch(ctx context.Context, desc ocispec.Descriptor, kind string) error {
	if info, err := pl.cfg.Content.Info(ctx, desc.Digest); err == nil {
		pl.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseExists, Offset: desc.Size, Total: desc.Size})
		if pl.local {
			return nil
		}
		return addSource(ctx, pl.cfg.Content, desc.Digest, info.Labels, pl.ref)
	} else if pl.local {
		return fmt.Errorf("%s %s: %w", kind, desc.Digest, missing(err))
	}
	if err := pl.once(ctx, desc.Digest, func() error { return pl.download(ctx, desc, kind) }); err != nil {
		return err
	}
	info, err := pl.cfg.Content.Info(ctx, desc.Digest)
	if err != nil {
		return err
	}
	return addSource(ctx, pl.cfg.Content, desc.Digest, info.Labels, pl.ref)
}

// present reports whether the content store has dgst.
func (pl *pull) present(ctx context.Context, dgst digest.Digest) bool {
	_, err := pl.cfg.Content.Info(ctx, dgst)
	return err == nil
}

// missing is the error for a blob the content store lacks (err, of kind
// ErrNotFound), or err itself for any other failure to read it.
func missing(err error) error {
	if errdefs.IsNotFound(err) {
		return errMissingContent
	}
	return err
}

// once runs write, which stores the blob dgst idempotently, so that
// concurrent pulls never write one blob at once (its ingest ref would be
// locked): a pull that finds another writing it waits, then runs write
// itself, which finds the blob present (or adopts it from the other
// namespace, or writes it if sharing is isolated).
func (pl *pull) once(ctx context.Context, dgst digest.Digest, write func() error) error {
	for {
		// A waiter tries again as the leader, so writes never overlap.
		if waited, err := pl.flights.do(ctx, dgst.String(), write); !waited || err != nil {
			return err
		}
	}
}

func (pl *pull) download(ctx context.Context, desc ocispec.Descriptor, kind string) error {
	w, err := pl.cfg.Content.Writer(ctx, content.WriterOpts{Ref: "pull-" + desc.Digest.String(), Total: desc.Size, Expected: desc.Digest})
	if errdefs.IsAlreadyExists(err) {
		pl.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseExists, Offset: desc.Size, Total: desc.Size})
		return nil
	} else if err != nil {
		return fmt.Errorf("fetch %s %s: %w", kind, desc.Digest, err)
	}
	defer w.Close()
	st, err := w.Status()
	if err != nil {
		return err
	}
	offset := st.Offset
	if offset > desc.Size {
		if err := w.Truncate(0); err != nil {
			return err
		}
		offset = 0
	}
	if offset < desc.Size {
		rc, err := pl.remote.FetchRange(ctx, pl.ref, desc, offset)
		if errors.Is(err, remote.ErrRangeUnsupported) {
			if err = w.Truncate(0); err == nil {
				offset = 0
				rc, err = pl.remote.Fetch(ctx, pl.ref, desc)
			}
		}
		if err != nil {
			return fmt.Errorf("fetch %s %s: %w", kind, desc.Digest, err)
		}
		err = pl.copy(w, rc, desc, kind, offset)
		rc.Close()
		if err != nil {
			return fmt.Errorf("fetch %s %s: %w", kind, desc.Digest, err)
		}
	}
	pl.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseVerifying, Offset: desc.Size, Total: desc.Size})
	source := map[string]string{LabelDistributionSourcePrefix + pl.ref.Registry: pl.ref.Repository}
	if err := w.Commit(ctx, desc.Size, desc.Digest, source); err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("fetch %s %s: %w", kind, desc.Digest, err)
	}
	if kind != "layer" {
		pl.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseDone, Offset: desc.Size, Total: desc.Size})
	}
	return nil
}

// progressEvery is how often, in bytes, a download reports its offset.
const progressEvery = 512 << 10

// copy streams rc into w from offset, reporting progress, and never writes
// past desc.Size (the commit then fails on a short or corrupt blob).
func (pl *pull) copy(w io.Writer, rc io.Reader, desc ocispec.Descriptor, kind string, offset int64) error {
	buf := make([]byte, 1<<20)
	src := io.LimitReader(rc, desc.Size-offset)
	last := offset
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			pl.cfg.transferred(OpPull, int64(n))
			offset += int64(n)
			if offset-last >= progressEvery || offset == desc.Size {
				pl.rep.report(Progress{Kind: kind, Digest: desc.Digest, Phase: PhaseDownloading, Offset: offset, Total: desc.Size})
				last = offset
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// flights lets concurrent downloads of one key share the first one.
type flights struct {
	mu    sync.Mutex
	calls map[string]chan struct{}
}

// do runs fn unless a call for key is running, in which case it waits for
// that call and reports waited (fn's error then belongs to the other call).
func (f *flights) do(ctx context.Context, key string, fn func() error) (waited bool, err error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]chan struct{}{}
	}
	if ch, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-ch:
			return true, nil
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
	ch := make(chan struct{})
	f.calls[key] = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(ch)
	}()
	return false, fn()
}
