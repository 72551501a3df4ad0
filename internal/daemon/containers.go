package daemon

import (
	"context"
	"path/filepath"

	"github.com/berth-dev/berth/internal/config"
	"github.com/berth-dev/berth/internal/containers"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/images"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/metadata"
	"github.com/berth-dev/berth/internal/network"
	berthruntime "github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/server"
)

// newContainers builds the task runtime (runtimes checked, shim found,
// CNI networking) and the containers service on top of it, reconnects to
// the tasks of a previous daemon and restarts the containers whose restart
// policy asks for it. What is missing (a runtime, the shim, CNI plugins) is
// logged with what to do, and container operations that need it fail saying
// the same.
func newContainers(ctx context.Context, cfg config.Config, db *metadata.DB, snapshotter string, puller *images.Puller, ex *events.Exchange) (*berthruntime.Manager, *containers.Service, *network.Manager) {
	runtimes := map[string]string{}
	for name, path := range map[string]string{"runc": cfg.Runtime.Runc, "crun": cfg.Runtime.Crun} {
		version, err := berthruntime.CheckRuntime(ctx, name, path)
		if err != nil {
			log.G(ctx).Warn("runtime unavailable", "runtime", name, "error", err)
		} else {
			log.G(ctx).Info("runtime found", "runtime", name, "path", path, "version", version)
		}
		runtimes[name] = path // RuntimePath repeats the check's message on use
	}
	shim, shimErr := berthruntime.FindShim(cfg.Runtime.Shim)
	if shimErr != nil {
		log.G(ctx).Warn("containers cannot run", "error", shimErr)
	}
	net, err := network.New(network.Config{
		PluginDirs: cfg.Network.PluginDirs,
		StateDir:   filepath.Join(cfg.State, "net"),
		BridgeName: cfg.Network.Bridge,
		Subnet:     cfg.Network.Subnet,
	})
	if err != nil {
		log.G(ctx).Warn("container networking unavailable: --net host works, bridge and none do not", "error", err)
	}
	var svc *containers.Service
	rt := berthruntime.New(berthruntime.Config{
		State:       cfg.State,
		ShimPath:    shim,
		ShimErr:     shimErr,
		Runtimes:    runtimes,
		Network:     net,
		NetworkErr:  err,
		LogMaxSize:  cfg.Runtime.LogMaxSize,
		LogMaxFiles: cfg.Runtime.LogMaxFiles,
		Events:      server.TaskEvents(ex),
		OnExit:      func(ctx context.Context, id string, exit berthruntime.Exit) { svc.TaskExited(ctx, id, exit) },
	})
	svc = containers.New(containers.Options{
		DB:             db,
		Snapshotter:    snapshotter,
		Runtime:        rt,
		Root:           filepath.Join(cfg.Root, "containers"),
		DefaultRuntime: cfg.Runtime.Default,
		Events:         server.ContainerEvents(ex),
		Images:         puller,
	})
	if err := rt.Restore(ctx); err != nil {
		log.G(ctx).Error("reconnect to running containers", "error", err)
	}
	if nss, err := db.ListNamespaces(ctx); err == nil {
		names := make([]string, 0, len(nss))
		for _, n := range nss {
			names = append(names, n.Name)
		}
		svc.RestartAfterBoot(ctx, names)
	}
	return rt, svc, net
}
