// Package daemon is berthd's composition root: New builds every store,
// service and server in dependency order from a config.Config, and Serve runs
// them until the context ends. Reading New explains the daemon. It owns the
// root and state directories, the root lock and the API socket, and nothing
// else.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/containers"
	"github.com/berth-dev/berth/internal/content/local"
	"github.com/berth-dev/berth/internal/diff"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/metrics"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/remote"
	berthruntime "github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/snapshots"
	"github.com/berth-dev/berth/internal/snapshots/native"
	"github.com/berth-dev/berth/internal/snapshots/overlay"
	"github.com/berth-dev/berth/internal/version"
	"google.golang.org/grpc"
)

// Daemon is a running berthd.
type Daemon struct {
	cfg         config.Config
	lock        *os.File
	snapshotter snapshots.Snapshotter
	remote      *remote.Client
	db          *metadata.DB
	events      *events.Exchange
	metrics     *metrics.Metrics
	grpc        *grpc.Server
	listener    net.Listener
	runtime     *berthruntime.Manager
	containers  *containers.Service
	network     *network.Manager // nil when networking is unavailable
}

// shutdownGrace is how long Serve waits for in-flight calls at shutdown
// before cutting them off.
const shutdownGrace = 10 * time.Second

// New builds the daemon: directories and lock, content store, metadata
// database, events, metrics, gRPC services, and finally the socket.
func New(ctx context.Context, cfg config.Config) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	var err error
	if err := prepareDirs(ctx, cfg); err != nil {
		return nil, err
	}
	if d.lock, err = lockRoot(cfg.Root); err != nil {
		return nil, err
	}
	cs, err := local.New(filepath.Join(cfg.Root, "content"))
	if err != nil {
		return nil, err
	}
	sn, err := openSnapshotter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.snapshotter = sn.backend
	d.events = events.New()
	var m *metrics.Metrics
	d.db, err = metadata.Open(ctx, filepath.Join(cfg.Root, "meta.db"), cs, metadata.Options{
		ContentSharing: cfg.Content.Sharing,
		Snapshotters:   map[string]snapshots.Snapshotter{sn.name: sn.backend},
		IngestExpiry:   time.Duration(cfg.GC.IngestExpiry),
		GCDelay:        time.Duration(cfg.GC.Delay),
		OnCollect: func(ctx context.Context, s metadata.GCStats) {
			m.ObserveGC(s.BlobsRemoved, s.BytesFreed, s.LeasesExpired, s.Duration)
			d.events.Publish(context.WithoutCancel(ctx), "/gc/collect", &eventsapi.GarbageCollect{
				BlobsRemoved: s.BlobsRemoved, BytesFreed: s.BytesFreed, LeasesExpired: s.LeasesExpired,
				IngestsRemoved: s.IngestsRemoved, DurationNs: s.Duration.Nanoseconds(),
			})
			log.G(ctx).Info("garbage collected", "blobs_removed", s.BlobsRemoved, "bytes_freed", s.BytesFreed,
				"leases_expired", s.LeasesExpired, "ingests_removed", s.IngestsRemoved, "duration", s.Duration)
		},
	})
	if err != nil {
		return nil, err
	}
	m = metrics.New(d.db)
	d.metrics = m
	if err := d.db.EnsureNamespace(ctx, namespaces.Default); err != nil {
		return nil, err
	}
	remoteCfg := remote.Config{HostsDir: cfg.Registry.ConfigPath, UserAgent: "berth/" + version.Version}
	d.remote = remote.New(remoteCfg)
	imagesCfg := images.Config{
		Content:         d.db.ContentStore(),
		Snapshotter:     d.db.Snapshotter(sn.name),
		SnapshotterName: sn.name,
		Whiteouts:       sn.whiteouts,
		Remote:          d.remote,
		RemoteConfig:    remoteCfg,
		Leases:          d.db,
		Images:          d.db,
		Concurrency:     cfg.Registry.MaxConcurrentDownloads,
		Observer:        m,
	}
	puller, pusher := images.New(imagesCfg), images.NewPusher(imagesCfg)
	d.runtime, d.containers, d.network = newContainers(ctx, cfg, d.db, sn.name, puller, d.events)
	m.WatchContainers(d.runtime)
	srv := server.New(d.db, d.events, puller, pusher, server.Info{
		Root: cfg.Root, State: cfg.State, Address: cfg.GRPC.Address, MetricsAddress: cfg.Metrics.Address,
		StartedAt: time.Now(),
		Features: []string{"content.sha256", "content.sha512", "content.sharing=" + cfg.Content.Sharing, "leases.expire", "events", "gc",
			"images.pull", "images.push", "images.create", "snapshotter=" + sn.name},
		Snapshotter: sn.name,
	})
	d.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(server.UnaryInterceptor(m)),
		grpc.ChainStreamInterceptor(server.StreamInterceptor(m)),
	)
	srv.WithContainers(d.containers, d.runtime).Register(d.grpc)
	if d.listener, err = listenSocket(ctx, cfg.GRPC); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// Serve answers API calls (and metrics scrapes, if configured) until ctx
// ends, then stops accepting, lets in-flight calls finish for up to
// shutdownGrace, and closes everything.
func (d *Daemon) Serve(ctx context.Context) error {
	defer d.close()
	errc := make(chan error, 2)
	metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMetrics()
	if addr := d.cfg.Metrics.Address; addr != "" {
		bound, done, err := d.metrics.Serve(metricsCtx, addr)
		if err != nil {
			return err
		}
		log.G(ctx).Info("serving metrics", "address", "http://"+bound+"/metrics")
		go func() {
			if err := <-done; err != nil {
				errc <- err
			}
		}()
	}
	go func() { errc <- d.grpc.Serve(d.listener) }()
	log.G(ctx).Info("berthd ready", "address", d.cfg.GRPC.Address, "root", d.cfg.Root, "state", d.cfg.State)
	var err error
	select {
	case <-ctx.Done():
		log.G(ctx).Info("shutting down")
	case err = <-errc:
		log.G(ctx).Error("server stopped", "error", err)
	}
	d.events.Close() // lets event streams end so graceful stop can finish
	stopped := make(chan struct{})
	go func() {
		d.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		log.G(ctx).Warn("in-flight calls did not finish in time; cutting them off", "grace", shutdownGrace)
		d.grpc.Stop()
	}
	return err
}

// close releases what New acquired, in reverse order.
func (d *Daemon) close() {
	if d.listener != nil {
		d.listener.Close()
		os.Remove(d.cfg.GRPC.Address)
	}
	if d.containers != nil {
		d.containers.Close()
	}
	if d.runtime != nil {
		d.runtime.Close() // stops watching; containers keep running
	}
	if d.network != nil {
		if err := d.network.Close(); err != nil {
			log.G(context.Background()).Warn("close networking", "error", err)
		}
	}
	if d.db != nil {
		d.db.Close()
	}
	if d.remote != nil {
		d.remote.Close()
	}
	if d.snapshotter != nil {
		d.snapshotter.Close()
	}
	if d.lock != nil {
		d.lock.Close() // releases the flock
	}
}

// snapshotter is the chosen snapshot backend.
type snapshotter struct {
	name      string
	backend   snapshots.Snapshotter
	whiteouts diff.WhiteoutMode
}

// openSnapshotter opens the configured snapshotter under ROOT/snapshots/;
// with no name configured it takes overlayfs when the root supports it and
// native otherwise, saying why.
func openSnapshotter(ctx context.Context, cfg config.Config) (snapshotter, error) {
	name := cfg.Snapshotter.Name
	overlayRoot := filepath.Join(cfg.Root, "snapshots", "overlayfs")
	if name == "" {
		name = "overlayfs"
		if err := os.MkdirAll(overlayRoot, 0700); err != nil {
			return snapshotter{}, err
		}
		if err := overlay.Supported(overlayRoot); err != nil {
			log.G(ctx).Warn("overlayfs cannot be used here; using the native snapshotter (plain copies)", "reason", err)
			name = "native"
		}
	}
	switch name {
	case "overlayfs":
		sn, err := overlay.New(overlayRoot, overlay.Config{})
		return snapshotter{name: name, backend: sn, whiteouts: diff.OverlayWhiteouts}, err
	default:
		sn, err := native.New(filepath.Join(cfg.Root, "snapshots", "native"))
		return snapshotter{name: name, backend: sn, whiteouts: diff.DeleteWhiteouts}, err
	}
}

// prepareDirs creates the root (0700) and state (0711) directories and
// refuses a root that others may write to.
func prepareDirs(ctx context.Context, cfg config.Config) error {
	for _, dir := range []struct {
		path string
		mode os.FileMode
		what string
	}{{cfg.Root, 0700, "root"}, {cfg.State, 0711, "state"}} {
		if err := os.MkdirAll(dir.path, dir.mode); err != nil {
			return fmt.Errorf("create %s directory: %w", dir.what, err)
		}
		fi, err := os.Stat(dir.path)
		if err != nil {
			return fmt.Errorf("%s directory: %w", dir.what, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s directory %s: not a directory", dir.what, dir.path)
		}
		if fi.Mode().Perm()&0022 != 0 {
			return fmt.Errorf("%s directory %s has mode %04o: it must not be writable by group or others (chmod %04o %s)", dir.what, dir.path, fi.Mode().Perm(), dir.mode, dir.path)
		}
		if fi.Mode().Perm() != dir.mode {
			log.G(ctx).Warn("tightening directory mode", "path", dir.path, "from", fmt.Sprintf("%04o", fi.Mode().Perm()), "to", fmt.Sprintf("%04o", dir.mode))
			if err := os.Chmod(dir.path, dir.mode); err != nil {
				return fmt.Errorf("%s directory: %w", dir.what, err)
			}
		}
	}
	return nil
}

// listenSocket listens on the API socket with mode 0660 and the configured
// group. A stale socket is replaced; a live one is an error.
func listenSocket(ctx context.Context, cfg config.GRPC) (net.Listener, error) {
	addr := cfg.Address
	if err := os.MkdirAll(filepath.Dir(addr), 0711); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if fi, err := os.Lstat(addr); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket path %s exists and is not a socket", addr)
		}
		if c, err := net.DialTimeout("unix", addr, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another daemon is serving on %s", addr)
		}
		log.G(ctx).Info("removing stale socket", "address", addr)
		if err := os.Remove(addr); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	gid, err := lookupGroup(cfg.Group)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if err := os.Chmod(addr, 0660); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket %s: %w", addr, err)
	}
	if gid < 0 {
		return l, nil
	}
	if err := os.Chown(addr, -1, gid); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket %s: set group %d: %w", addr, gid, err)
	}
	return l, nil
}

// lookupGroup resolves a group name or numeric gid; "" means -1: keep the
// daemon's own group (root's, when it runs as root).
func lookupGroup(group string) (int, error) {
	if group == "" {
		return -1, nil
	}
	if gid, err := strconv.Atoi(group); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		var unknown user.UnknownGroupError
		if errors.As(err, &unknown) {
			return 0, fmt.Errorf("grpc.group: group %q does not exist", group)
		}
		return 0, fmt.Errorf("grpc.group: %w", err)
	}
	return strconv.Atoi(g.Gid)
}
