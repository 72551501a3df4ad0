package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"
)

// Manager sets up and tears down the networks of containers. Its methods
// are safe for concurrent use; Managers of later daemon starts pick up the
// state of earlier ones from StateDir.
type Manager struct {
	cfg    Config
	cni    *libcni.CNIConfig
	bridge *Network // for containers that publish ports
	// bridgeNoPorts is the same network without the portmap plugin, for
	// the containers that publish none.
	bridgeNoPorts *Network
	netnsDir      string
	pendingDir    string

	mu          sync.Mutex
	netnsReady  bool                     // netnsDir is a shared mount point
	bridgeReady bool                     // bridgeRules are in place
	attached    map[string][]PortMapping // containers set up (or being set up) on a network, with their published ports
}

// pendingAdd records an ADD in progress (StateDir/pending/<id>.json): what
// Teardown needs to undo an ADD that a crash interrupted, for which
// libcni's cache has nothing.
type pendingAdd struct {
	Config json.RawMessage `json:"config"`
	Ports  []PortMapping   `json:"ports,omitempty"`
}

// New returns a Manager for cfg. It checks that the CNI plugins of the
// bridge network and iptables are installed (ErrFailedPrecondition naming
// what is missing), and reads which containers a previous daemon set up
// from StateDir. It changes nothing on the host: the bridge and its
// iptables rules appear with the first bridge-mode Setup.
func New(cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, p := range requiredPlugins {
		if !findPlugin(cfg.PluginDirs, p) {
			return nil, fmt.Errorf("cni plugin %q not found in %s: install containernetworking-plugins: %w",
				p, strings.Join(cfg.PluginDirs, ", "), errdefs.ErrFailedPrecondition)
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, fmt.Errorf("iptables not found on PATH (berth and the bridge and portmap plugins run it): install iptables: %w", errdefs.ErrFailedPrecondition)
	}
	ipamDir := filepath.Join(cfg.StateDir, "ipam")
	bridge, err := parseNetwork(bridgeConfList(cfg, ipamDir, true))
	if err != nil {
		return nil, fmt.Errorf("bridge network config: %w", err)
	}
	bridgeNoPorts, err := parseNetwork(bridgeConfList(cfg, ipamDir, false))
	if err != nil {
		return nil, fmt.Errorf("bridge network config: %w", err)
	}
	m := &Manager{
		cfg: cfg,
		// An explicit exec: libcni would set its default lazily, a data race
		// between concurrent calls. Plugins' diagnostics go to our stderr.
		cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.StateDir, "cache"), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		bridge:        bridge,
		bridgeNoPorts: bridgeNoPorts,
		netnsDir:      filepath.Join(cfg.StateDir, "netns"),
		pendingDir:    filepath.Join(cfg.StateDir, "pending"),
		attached:      map[string][]PortMapping{},
	}
	atts, err := m.cni.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("read cni cache in %q: %w", cfg.StateDir, err)
	}
	for _, a := range atts {
		ports, err := portMappingsFromCapability(a.CapabilityArgs["portMappings"])
		if err != nil {
			return nil, fmt.Errorf("cni cache of container %q: port mappings: %w", a.ContainerID, err)
		}
		m.attached[a.ContainerID] = append(m.attached[a.ContainerID], ports...)
	}
	ents, err := os.ReadDir(m.pendingDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read pending network setups: %w", err)
	}
	for _, e := range ents {
		id := strings.TrimSuffix(e.Name(), ".json")
		p, err := m.readPending(id)
		if err != nil {
			return nil, err
		}
		m.attached[id] = append(m.attached[id], p.Ports...)
	}
	return m, nil
}

func findPlugin(dirs []string, name string) bool {
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// Setup gives a container the network of mode. id is the container's id
// (letters, digits, '_', '.', '-'; it keys the CNI cache, iptables comments
// and the address allocation); netnsPath is its network namespace from
// NewNetNS. In ModeBridge it attaches eth0 to the bridge network and
// publishes ports; in ModeNone it only checks its arguments (lo is up
// already). Setup of an id already set up is of kind ErrAlreadyExists,
// publishing a host port another container publishes ErrConflict, and
// ModeHost ErrInvalidArgument. On error Setup undoes what the plugins did;
// should that fail too, the error says so and Teardown finishes the job.
func (m *Manager) Setup(ctx context.Context, id, netnsPath string, mode Mode, ports []PortMapping) (*Result, error) {
	switch mode {
	case ModeBridge:
		if err := m.ensureBridgeRules(ctx); err != nil {
			return nil, err
		}
		net := m.bridge
		if len(ports) == 0 {
			net = m.bridgeNoPorts
		}
		return m.SetupNetwork(ctx, id, netnsPath, net, ports)
	case ModeNone:
		if len(ports) > 0 {
			return nil, fmt.Errorf("container %q: publishing ports needs network mode bridge, not none: %w", id, errdefs.ErrInvalidArgument)
		}
		return &Result{}, checkArgs(id, netnsPath)
	case ModeHost:
		return nil, fmt.Errorf("container %q: network mode host uses the host's namespace, nothing to set up: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil, fmt.Errorf("container %q: network mode %q: %w", id, mode, errdefs.ErrInvalidArgument)
}

func checkArgs(id, netnsPath string) error {
	if e := utils.ValidateContainerID(id); e != nil {
		return fmt.Errorf("network setup: container id %q: %s: %w", id, e.Msg, errdefs.ErrInvalidArgument)
	}
	if !isNetNS(netnsPath) {
		return fmt.Errorf("network setup of container %q: %q is not a network namespace: %w", id, netnsPath, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ensureBridgeRules puts the bridge network's iptables rules in place once
// per Manager; rules that exist already are kept.
func (m *Manager) ensureBridgeRules(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bridgeReady {
		return nil
	}
	for _, r := range bridgeRules(m.cfg) {
		if err := ensureRule(ctx, r); err != nil {
			return fmt.Errorf("bridge network %s: %w", m.cfg.BridgeName, err)
		}
	}
	m.bridgeReady = true
	return nil
}

// SetupNetwork is Setup with a network of the caller's, such as one
// LoadNetwork read for a pod sandbox: it attaches eth0 to net. ports reach
// net's plugins as the portMappings capability argument.
func (m *Manager) SetupNetwork(ctx context.Context, id, netnsPath string, net *Network, ports []PortMapping) (*Result, error) {
	if err := checkArgs(id, netnsPath); err != nil {
		return nil, err
	}
	if net == nil {
		return nil, fmt.Errorf("network setup of container %q: no network: %w", id, errdefs.ErrInvalidArgument)
	}
	for i, p := range ports {
		if p.Protocol != "tcp" && p.Protocol != "udp" || p.HostPort == 0 || p.ContainerPort == 0 {
			return nil, fmt.Errorf("network setup of container %q: port mapping %s: %w", id, p, errdefs.ErrInvalidArgument)
		}
		for _, q := range ports[:i] {
			if p.conflicts(q) {
				return nil, fmt.Errorf("network setup of container %q: port mappings %s and %s use the same host port: %w", id, q, p, errdefs.ErrInvalidArgument)
			}
		}
	}
	if err := m.reserve(id, ports); err != nil {
		return nil, err
	}
	if err := m.writePending(id, pendingAdd{Config: net.list.Bytes, Ports: ports}); err != nil {
		m.release(id)
		return nil, err
	}
	rt := m.runtimeConf(id, netnsPath, ports)
	res, err := m.cni.AddNetworkList(ctx, net.list, rt)
	if err == nil {
		var r *Result
		if r, err = convertResult(res); err == nil {
			r.Network = net.list.Name
			m.removePending(id)
			return r, nil
		}
	}
	err = fmt.Errorf("network setup of container %q: network %q: %w", id, net.list.Name, err)
	// Undo what the plugins did before the failure. If that fails too, the
	// pending record stays for Teardown to finish the job.
	if del := m.cni.DelNetworkList(context.WithoutCancel(ctx), net.list, rt); del != nil {
		return nil, fmt.Errorf("%w (undo: %v; Teardown retries)", err, del)
	}
	m.removePending(id)
	m.release(id)
	return nil, err
}

func (m *Manager) runtimeConf(id, netnsPath string, ports []PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netnsPath, IfName: containerIfName}
	if len(ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": toCNIPortMappings(ports)}
	}
	return rt
}

// convertResult picks the container-side interface of a CNI result.
func convertResult(res types.Result) (*Result, error) {
	r100, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert cni result: %w", err)
	}
	r := &Result{}
	for i, ifc := range r100.Interfaces {
		if ifc.Sandbox == "" {
			continue
		}
		r.Interface, r.MAC = ifc.Name, ifc.Mac
		for _, ipc := range r100.IPs {
			if ipc.Interface == nil || *ipc.Interface != i {
				continue
			}
			addr, ok := netip.AddrFromSlice(ipc.Address.IP)
			if !ok {
				continue
			}
			ones, _ := ipc.Address.Mask.Size()
			r.IPs = append(r.IPs, netip.PrefixFrom(addr.Unmap(), ones))
			if gw, ok := netip.AddrFromSlice(ipc.Gateway); ok && !r.Gateway.IsValid() {
				r.Gateway = gw.Unmap()
			}
		}
		break
	}
	return r, nil
}

// reserve records that id is being set up with ports. It fails with
// ErrAlreadyExists when id is set up already, and with ErrConflict when
// another container publishes one of the host ports.
func (m *Manager) reserve(id string, ports []PortMapping) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.attached[id]; ok {
		return fmt.Errorf("network setup of container %q: %w", id, errdefs.ErrAlreadyExists)
	}
	for other, held := range m.attached {
		for _, h := range held {
			for _, p := range ports {
				if p.conflicts(h) {
					return fmt.Errorf("publish %s for container %q: host port held by container %q: %w", p, id, other, errdefs.ErrConflict)
				}
			}
		}
	}
	m.attached[id] = slices.Clone(ports)
	return nil
}

func (m *Manager) release(id string) {
	m.mu.Lock()
	delete(m.attached, id)
	m.mu.Unlock()
}

func (m *Manager) pendingPath(id string) string { return filepath.Join(m.pendingDir, id+".json") }

func (m *Manager) writePending(id string, p pendingAdd) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("network setup of container %q: record: %w", id, err)
	}
	if err := os.MkdirAll(m.pendingDir, 0o700); err != nil {
		return fmt.Errorf("network setup of container %q: record: %w", id, err)
	}
	if err := os.WriteFile(m.pendingPath(id), b, 0o600); err != nil {
		return fmt.Errorf("network setup of container %q: record: %w", id, err)
	}
	return nil
}

// readPending returns the pending record of id, or nil if there is none.
func (m *Manager) readPending(id string) (*pendingAdd, error) {
	b, err := os.ReadFile(m.pendingPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var p pendingAdd
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil {
		return nil, fmt.Errorf("pending network setup of container %q: %w", id, err)
	}
	return &p, nil
}

// removePending drops the pending record of id. A record left behind costs
// Teardown one extra DEL, which plugins must treat as a no-op.
func (m *Manager) removePending(id string) {
	_ = os.Remove(m.pendingPath(id))
}

// Teardown undoes Setup for container id and removes its network namespace
// if NewNetNS created netnsPath. It reads what to undo from StateDir
// (libcni's cache of completed ADDs, berth's record of interrupted ones),
// so it works in a daemon started after the one that ran Setup, and when
// the namespace is already gone: the plugins then release the address and
// port mappings without touching the namespace. Teardown of an id that has
// nothing set up only removes the namespace. On error the namespace is
// kept, and calling Teardown again finishes the job.
func (m *Manager) Teardown(ctx context.Context, id, netnsPath string) error {
	if e := utils.ValidateContainerID(id); e != nil {
		return fmt.Errorf("network teardown: container id %q: %s: %w", id, e.Msg, errdefs.ErrInvalidArgument)
	}
	atts, err := m.cni.GetCachedAttachments(id)
	if err != nil {
		return fmt.Errorf("network teardown of container %q: read cni cache: %w", id, err)
	}
	pending, err := m.readPending(id)
	if err != nil {
		return fmt.Errorf("network teardown: %w", err)
	}
	ns := ""
	if isNetNS(netnsPath) {
		ns = netnsPath
	}
	var errs []error
	done := map[string]bool{}
	for _, a := range atts {
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("network teardown of container %q: cached config of network %q: %w", id, a.Network, err))
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: id, NetNS: ns, IfName: a.IfName, Args: a.CniArgs, CapabilityArgs: a.CapabilityArgs}
		errs = append(errs, m.del(ctx, list, rt))
		done[a.Network] = true
	}
	if pending != nil {
		list, err := libcni.NetworkConfFromBytes(pending.Config)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("network teardown of container %q: pending config: %w", id, err))
		case !done[list.Name]:
			errs = append(errs, m.del(ctx, list, m.runtimeConf(id, ns, pending.Ports)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network teardown of container %q: %w", id, err)
	}
	m.removePending(id)
	m.release(id)
	if filepath.Dir(filepath.Clean(netnsPath)) == m.netnsDir {
		return removeNetNS(netnsPath)
	}
	return nil
}

// del runs DEL for one attachment. When the namespace is gone (rt.NetNS
// empty), it also removes masquerade rules the bridge plugin cannot (see
// removeBridgeMasquerade), using the addresses of the cached result.
func (m *Manager) del(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	var addrs []netip.Prefix
	if rt.NetNS == "" && masquerades(list) {
		if res, err := m.cni.GetNetworkListCachedResult(list, rt); err == nil && res != nil {
			if r, err := convertResult(res); err == nil {
				addrs = r.IPs
			}
		}
	}
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("network %q: %w", list.Name, err)
	}
	if err := removeBridgeMasquerade(ctx, list.Name, rt.ContainerID, addrs); err != nil {
		return fmt.Errorf("network %q: masquerade rules: %w", list.Name, err)
	}
	return nil
}

// isNetNS reports whether path is a namespace file (nsfs).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	return path != "" && unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
