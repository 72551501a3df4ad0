package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/keylock"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/remote"
	berthruntime "github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/snapshots"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options configure a Service.
type Options struct {
	DB          *metadata.DB
	Snapshotter string // the snapshotter containers are prepared on
	Runtime     *berthruntime.Manager
	// Root is where containers' own files live: Root/<namespace>/<id>/
	// holds the log and the hosts, hostname and resolv.conf files.
	Root string
	// DefaultRuntime names the runtime used when a container names none.
	DefaultRuntime string
	// Events are told of container lifecycle changes (may be nil).
	Events func(ctx context.Context, e Event)
	// ResolvConf is the host file containers copy (default /etc/resolv.conf).
	ResolvConf string
	// Images records and unpacks the images Commit makes.
	Images *images.Puller
}

// Event is a container lifecycle change for the API layer to publish.
type Event struct {
	Topic     string // "/containers/create", "/containers/update", "/containers/delete"
	Container metadata.Container
}

// Service creates, starts and deletes containers. It is safe for
// concurrent use; operations on one container are serialised.
type Service struct {
	opts    Options
	content content.Store
	sn      snapshots.Snapshotter
	locks   keylock.Locks // one per namespace/container id
	users   usersCache
	wg      sync.WaitGroup // restart-policy goroutines
	closing chan struct{}
	once    sync.Once
}

// New returns a Service; call Restore once the runtime has reconnected its
// tasks, and Close at shutdown.
func New(opts Options) *Service {
	if opts.ResolvConf == "" {
		opts.ResolvConf = "/etc/resolv.conf"
	}
	return &Service{opts: opts, content: opts.DB.ContentStore(), sn: opts.DB.Snapshotter(opts.Snapshotter), closing: make(chan struct{})}
}

// Close stops pending restarts and waits for them.
func (s *Service) Close() {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dir is where a container's own files live.
func (s *Service) dir(ns, id string) string { return filepath.Join(s.opts.Root, ns, id) }

// Create records a container from cfg: the image must be present; the spec
// is generated from its config and cfg; a read-write snapshot is prepared on
// its layers. Bad input leaves nothing behind.
func (s *Service) Create(ctx context.Context, id, name string, cfg Config) (_ metadata.Container, retErr error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return metadata.Container{}, err
	}
	if err := cfg.validate(); err != nil {
		return metadata.Container{}, err
	}
	if id == "" {
		id = newID()
	}
	if cfg.Runtime == "" {
		cfg.Runtime = s.opts.DefaultRuntime
	}
	if _, err := s.opts.Runtime.RuntimePath(cfg.Runtime); err != nil {
		return metadata.Container{}, err
	}
	img, imgCfg, chainID, err := s.image(ctx, cfg.Image, cfg.Platform)
	if err != nil {
		return metadata.Container{}, err
	}
	if name != "" {
		if _, err := s.opts.DB.GetContainer(ctx, name); err == nil {
			return metadata.Container{}, fmt.Errorf("container name %q is already in use: %w", name, errdefs.ErrAlreadyExists)
		}
	}
	// The collector keeps off the new snapshot until the container record
	// holds it.
	defer s.opts.DB.HoldGC()()
	mounts, err := s.sn.Prepare(ctx, id, chainID)
	if err != nil {
		return metadata.Container{}, fmt.Errorf("prepare snapshot for container %s: %w", id, err)
	}
	dir := s.dir(ns, id)
	defer func() {
		if retErr != nil {
			if err := s.sn.Remove(context.WithoutCancel(ctx), id); err != nil {
				log.G(ctx).Warn("remove snapshot of failed container", "container_id", id, "error", err)
			}
			os.RemoveAll(dir)
		}
	}()
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return metadata.Container{}, err
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = id[:min(12, len(id))]
	}
	etc, err := writeEtcFiles(dir, hostname, cfg.Network, s.opts.ResolvConf)
	if err != nil {
		return metadata.Container{}, err
	}
	users, err := s.imageUsers(ctx, chainID, mounts)
	if err != nil {
		return metadata.Container{}, err
	}
	spec, err := oci.Generate(imgCfg.Config, s.ociOptions(imgCfg.Config, ns, id, hostname, cfg, users, etc))
	if err != nil {
		return metadata.Container{}, err
	}
	spec.Root.Path = "rootfs"
	withNetworkNamespace(spec, cfg.Network)
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return metadata.Container{}, err
	}
	labels := oci.ImageLabels(imgCfg.Config)
	for k, v := range cfg.Labels {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[k] = v
	}
	c, err := s.opts.DB.CreateContainer(ctx, metadata.Container{
		ID: id, Name: name, Image: img.Name, ImageDigest: img.Target.Digest,
		Snapshotter: s.opts.Snapshotter, SnapshotKey: id, Spec: specJSON,
		Runtime: cfg.Runtime, Config: encodeConfig(cfg), LogPath: filepath.Join(dir, "container.log"),
		Labels: labels,
	})
	if err != nil {
		return metadata.Container{}, err
	}
	s.event(ctx, "/containers/create", c)
	return c, nil
}

func (s *Service) event(ctx context.Context, topic string, c metadata.Container) {
	if s.opts.Events != nil {
		s.opts.Events(ctx, Event{Topic: topic, Container: c})
	}
}

// image finds the image named ref and returns its record, config and top
// chainID for platform (the host's when empty). An image for another
// architecture is refused saying so.
func (s *Service) image(ctx context.Context, ref, platformStr string) (metadata.Image, ocispec.Image, string, error) {
	name := ref
	if r, err := remote.ParseReference(ref); err == nil {
		name = r.String()
	}
	img, err := s.opts.DB.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		return metadata.Image{}, ocispec.Image{}, "", fmt.Errorf("image %q: not present here: pull it first (berth pull %s): %w", ref, ref, errdefs.ErrNotFound)
	} else if err != nil {
		return metadata.Image{}, ocispec.Image{}, "", err
	}
	platform := remote.DefaultPlatform()
	if platformStr != "" {
		if platform, err = remote.ParsePlatform(platformStr); err != nil {
			return metadata.Image{}, ocispec.Image{}, "", err
		}
	}
	_, m, err := images.Manifest(ctx, s.content, img.Target, platform)
	if err != nil {
		return metadata.Image{}, ocispec.Image{}, "", fmt.Errorf("image %q: %w", ref, err)
	}
	data, err := content.ReadBlob(ctx, s.content, m.Config.Digest)
	if err != nil {
		return metadata.Image{}, ocispec.Image{}, "", fmt.Errorf("image %q: config: %w", ref, err)
	}
	var ic ocispec.Image
	if err := json.Unmarshal(data, &ic); err != nil {
		return metadata.Image{}, ocispec.Image{}, "", fmt.Errorf("image %q: config: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	if platformStr == "" && ic.Architecture != "" && (ic.OS != runtime.GOOS || ic.Architecture != runtime.GOARCH) {
		return metadata.Image{}, ocispec.Image{}, "", fmt.Errorf("image %q is %s/%s, host is %s/%s: it cannot run here: %w",
			ref, ic.OS, ic.Architecture, runtime.GOOS, runtime.GOARCH, errdefs.ErrFailedPrecondition)
	}
	chainID, err := images.TopChainID(ctx, s.content, m)
	if err != nil {
		return metadata.Image{}, ocispec.Image{}, "", err
	}
	if _, err := s.sn.Stat(ctx, chainID.String()); err != nil {
		return metadata.Image{}, ocispec.Image{}, "", fmt.Errorf("image %q is not unpacked (snapshot %s): pull it again: %w", ref, chainID, errdefs.ErrFailedPrecondition)
	}
	return img, ic, chainID.String(), nil
}

// Get returns a container by id, name or unique id prefix.
func (s *Service) Get(ctx context.Context, ref string) (metadata.Container, error) {
	return s.opts.DB.GetContainer(ctx, ref)
}

// Delete removes a container: its task (refused while running unless
// force), record and snapshot, and files.
func (s *Service) Delete(ctx context.Context, ref string, force bool) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	c, err := s.opts.DB.GetContainer(ctx, ref)
	if err != nil {
		return err
	}
	unlock := s.locks.Lock(ns + "/" + c.ID)
	defer unlock()
	if p, err := s.opts.Runtime.Get(ctx, c.ID, ""); err == nil {
		if p.Status != berthruntime.StatusStopped && !force {
			return fmt.Errorf("container %s is %s: stop it first, or force: %w", ref, p.Status, errdefs.ErrFailedPrecondition)
		}
		if _, err := s.opts.Runtime.Delete(ctx, c.ID, "", true); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	// The record and, in the same commit, the snapshot's.
	if err := s.opts.DB.DeleteContainer(ctx, c.ID); err != nil {
		return err
	}
	if err := os.RemoveAll(s.dir(ns, c.ID)); err != nil {
		log.G(ctx).Warn("remove container files", "container_id", c.ID, "error", err)
	}
	s.event(ctx, "/containers/delete", c)
	return nil
}
