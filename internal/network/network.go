package network

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/containernetworking/cni/libcni"
)

// Defaults for the zero fields of Config. The subnet is not podman's and
// the CNI examples' 10.88.0.0/16, whose route would clash on a host that
// runs both.
const (
	DefaultStateDir   = "/run/berth/net"
	DefaultBridgeName = "berth0"
	DefaultSubnet     = "10.87.0.0/16"
)

// DefaultPluginDirs are searched for CNI plugins when Config.PluginDirs is
// empty: Debian's containernetworking-plugins, then the upstream location.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// BridgeNetworkName is the CNI network name of berth's bridge network. It
// appears in iptables comments, libcni cache file names and host-local's
// data dir.
const BridgeNetworkName = "berth"

// cniVersion is the CNI spec version of berth's generated configuration.
// Debian's plugins (1.1) support up to 1.0.0.
const cniVersion = "1.0.0"

// containerIfName is the container's interface on a network.
const containerIfName = "eth0"

// requiredPlugins are the plugin binaries the bridge network runs.
var requiredPlugins = []string{"bridge", "host-local", "portmap"}

// Config configures a Manager. Zero fields take the defaults above.
type Config struct {
	// PluginDirs are searched in order for CNI plugin binaries.
	PluginDirs []string
	// StateDir holds the network namespace bind mounts (netns/), libcni's
	// result cache (cache/), records of setups in progress (pending/) and
	// host-local's address allocations (ipam/).
	// It belongs on a tmpfs such as /run: a reboot clears these together
	// with the namespaces and iptables rules they describe.
	StateDir string
	// BridgeName is the Linux bridge of the bridge network (at most 15
	// bytes). The bridge plugin creates it on first use.
	BridgeName string
	// Subnet is the IPv4 subnet of the bridge network; the bridge gets its
	// first address and containers the rest.
	Subnet string
}

// withDefaults returns cfg with its zero fields set to the defaults and the
// rest validated.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.BridgeName == "" {
		cfg.BridgeName = DefaultBridgeName
	}
	if cfg.Subnet == "" {
		cfg.Subnet = DefaultSubnet
	}
	if !filepath.IsAbs(cfg.StateDir) {
		return cfg, fmt.Errorf("network state dir %q: must be absolute: %w", cfg.StateDir, errdefs.ErrInvalidArgument)
	}
	if err := validIfName(cfg.BridgeName); err != nil {
		return cfg, fmt.Errorf("bridge name %q: %s: %w", cfg.BridgeName, err, errdefs.ErrInvalidArgument)
	}
	p, err := netip.ParsePrefix(cfg.Subnet)
	switch {
	case err != nil:
		return cfg, fmt.Errorf("subnet %q: %w", cfg.Subnet, errdefs.ErrInvalidArgument)
	case !p.Addr().Is4():
		return cfg, fmt.Errorf("subnet %q: must be IPv4: %w", cfg.Subnet, errdefs.ErrInvalidArgument)
	case p.Masked() != p:
		return cfg, fmt.Errorf("subnet %q: host bits set (did you mean %s?): %w", cfg.Subnet, p.Masked(), errdefs.ErrInvalidArgument)
	case p.Bits() > 30:
		return cfg, fmt.Errorf("subnet %q: too small, at most /30: %w", cfg.Subnet, errdefs.ErrInvalidArgument)
	}
	return cfg, nil
}

// validIfName applies the kernel's rules for a network interface name.
func validIfName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("not a valid interface name")
	case len(name) > 15:
		return fmt.Errorf("longer than 15 bytes")
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("contains '/', ':' or white space")
	}
	return nil
}

// bridgeConfList is the CNI configuration list of the bridge network: a
// bridge holding the gateway address, in hairpin mode; host-local addresses
// stored under ipamDir; portmap for published ports, with SNAT so that a
// container reaches its own published ports and the host reaches them on
// 127.0.0.1. Masquerading and forwarding are not per container (the bridge
// plugin's ipMasq, the firewall plugin) but the network's bridgeRules: each
// per-container iptables change costs a few iptables runs under one global
// lock, and those halved the rate of concurrent Setups twice over.
//
// A container that publishes no port is attached without the portmap
// plugin (withPorts false): portmap would have nothing to do, yet its ADD
// and above all its DEL (which looks for the container's rules with a
// series of iptables runs) cost tens of milliseconds. The attachment's
// cached config is what Teardown uses, so each container is detached by
// the list it was attached with.
func bridgeConfList(cfg Config, ipamDir string, withPorts bool) []byte {
	plugins := []map[string]any{
		{
			"type":             "bridge",
			"bridge":           cfg.BridgeName,
			"isGateway":        true,
			"isDefaultGateway": true,
			"hairpinMode":      true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": cfg.Subnet}}},
				"dataDir": ipamDir,
			},
		},
	}
	if withPorts {
		plugins = append(plugins, map[string]any{
			"type":         "portmap",
			"capabilities": map[string]bool{"portMappings": true},
			"snat":         true,
		})
	}
	list := map[string]any{"cniVersion": cniVersion, "name": BridgeNetworkName, "plugins": plugins}
	b, err := json.Marshal(list)
	if err != nil {
		panic(err) // only maps, strings and bools: cannot fail
	}
	return b
}

// iptablesRule is one rule in a table's chain, as iptables arguments.
type iptablesRule struct {
	table, chain string
	args         []string
}

// bridgeRules are the iptables rules of the bridge network, the same for
// every container: masquerade what leaves the subnet for elsewhere than the
// bridge, and let the bridge's traffic through FORWARD (replies, published
// ports and everything from the containers) even when its policy is DROP.
func bridgeRules(cfg Config) []iptablesRule {
	comment := func(what string) []string {
		return []string{"-m", "comment", "--comment", "berth bridge " + cfg.BridgeName + ": " + what}
	}
	return []iptablesRule{
		{"nat", "POSTROUTING", slices.Concat([]string{"-s", cfg.Subnet, "!", "-o", cfg.BridgeName}, comment("masquerade"), []string{"-j", "MASQUERADE"})},
		{"filter", "FORWARD", slices.Concat([]string{"-o", cfg.BridgeName, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT"}, comment("replies and published ports"), []string{"-j", "ACCEPT"})},
		{"filter", "FORWARD", slices.Concat([]string{"-i", cfg.BridgeName}, comment("from containers"), []string{"-j", "ACCEPT"})},
	}
}

// Network is a CNI network configuration list that containers can be
// attached to (SetupNetwork).
type Network struct {
	list *libcni.NetworkConfigList
}

// Name is the network's CNI name.
func (n *Network) Name() string { return n.list.Name }

// parseNetwork parses a CNI configuration list.
func parseNetwork(b []byte) (*Network, error) {
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	return &Network{list: list}, nil
}

// LoadNetwork reads the network a CNI configuration directory defines, as
// Kubernetes runtimes do: the first file by name with extension .conflist,
// .conf or .json. It is of kind ErrNotFound when dir has none.
func LoadNetwork(dir string) (*Network, error) {
	files, err := libcni.ConfFiles(dir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		return nil, fmt.Errorf("read cni config dir %q: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("cni config dir %q: no .conflist, .conf or .json file: %w", dir, errdefs.ErrNotFound)
	}
	slices.Sort(files)
	file := files[0]
	var list *libcni.NetworkConfigList
	if strings.HasSuffix(file, ".conflist") {
		list, err = libcni.NetworkConfFromFile(file)
	} else {
		list, err = singleConfFromFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("load cni config %q: %w: %w", file, err, errdefs.ErrInvalidArgument)
	}
	return &Network{list: list}, nil
}

// singleConfFromFile reads a one-plugin network configuration (the older
// .conf format) as a list of that one plugin.
func singleConfFromFile(file string) (*libcni.NetworkConfigList, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var conf struct {
		Name       string `json:"name"`
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		return nil, err
	}
	list, err := json.Marshal(map[string]any{"name": conf.Name, "cniVersion": conf.CNIVersion, "plugins": []json.RawMessage{b}})
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(list)
}

// Mode is a container's network mode (berth run --net).
type Mode string

// The network modes.
const (
	// ModeBridge attaches the container to the berth bridge network: eth0
	// with an address from Config.Subnet; ports can be published.
	ModeBridge Mode = "bridge"
	// ModeNone gives the container its own network namespace with only lo.
	// Setup has nothing to do (NewNetNS brings lo up).
	ModeNone Mode = "none"
	// ModeHost shares the host's network namespace. There is nothing to set
	// up: the container's spec simply has no network namespace, and the
	// Manager is not called.
	ModeHost Mode = "host"
)

// ParseMode parses the value of --net.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeBridge, ModeNone, ModeHost:
		return m, nil
	}
	return "", fmt.Errorf("network mode %q: must be bridge, none or host: %w", s, errdefs.ErrInvalidArgument)
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	// HostIP is the host address the port is published on; empty means
	// every address (0.0.0.0).
	HostIP        string
	HostPort      uint16
	ContainerPort uint16
	// Protocol is "tcp" or "udp".
	Protocol string
}

// String formats m the way ParsePortMapping reads it.
func (m PortMapping) String() string {
	s := fmt.Sprintf("%d:%d/%s", m.HostPort, m.ContainerPort, m.Protocol)
	if m.HostIP != "" {
		s = m.HostIP + ":" + s
	}
	return s
}

// ParsePortMapping parses a -p value: [hostip:]hostport:containerport with
// an optional /tcp or /udp suffix (tcp by default). The host IP must be
// IPv4; 0.0.0.0 is the same as leaving it out.
func ParsePortMapping(s string) (PortMapping, error) {
	bad := func(why string) (PortMapping, error) {
		return PortMapping{}, fmt.Errorf("port mapping %q: %s (want [hostip:]hostport:containerport[/tcp|udp]): %w", s, why, errdefs.ErrInvalidArgument)
	}
	m := PortMapping{Protocol: "tcp"}
	spec := s
	if i := strings.LastIndexByte(spec, '/'); i >= 0 {
		proto := spec[i+1:]
		spec = spec[:i]
		m.Protocol = strings.ToLower(proto)
		if m.Protocol != "tcp" && m.Protocol != "udp" {
			return bad(fmt.Sprintf("protocol %q is not tcp or udp", proto))
		}
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 2:
	case 3:
		ip, err := netip.ParseAddr(parts[0])
		if err != nil {
			return bad(fmt.Sprintf("host IP %q is not an IP address", parts[0]))
		}
		if !ip.Is4() {
			return bad(fmt.Sprintf("host IP %q is not IPv4", parts[0]))
		}
		if !ip.IsUnspecified() {
			m.HostIP = ip.String()
		}
		parts = parts[1:]
	default:
		if strings.Contains(spec, "[") || strings.Count(spec, ":") > 2 {
			return bad("IPv6 host IPs are not supported")
		}
		return bad("need a host port and a container port")
	}
	var err error
	if m.HostPort, err = parsePort(parts[0]); err != nil {
		return bad("host port: " + err.Error())
	}
	if m.ContainerPort, err = parsePort(parts[1]); err != nil {
		return bad("container port: " + err.Error())
	}
	return m, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// conflicts reports whether two mappings claim the same host port: the same
// protocol and port, on the same host IP or with either on every address.
func (m PortMapping) conflicts(o PortMapping) bool {
	return m.Protocol == o.Protocol && m.HostPort == o.HostPort &&
		(m.HostIP == "" || o.HostIP == "" || m.HostIP == o.HostIP)
}

// cniPortMapping is the portMappings capability entry portmap reads.
type cniPortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func toCNIPortMappings(ports []PortMapping) []cniPortMapping {
	out := make([]cniPortMapping, len(ports))
	for i, p := range ports {
		out[i] = cniPortMapping{HostPort: int(p.HostPort), ContainerPort: int(p.ContainerPort), Protocol: p.Protocol, HostIP: p.HostIP}
	}
	return out
}

// portMappingsFromCapability reads the portMappings capability argument back
// from libcni's cache, where it round-trips through JSON.
func portMappingsFromCapability(v any) ([]PortMapping, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var in []cniPortMapping
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	out := make([]PortMapping, len(in))
	for i, p := range in {
		out[i] = PortMapping{HostIP: p.HostIP, HostPort: uint16(p.HostPort), ContainerPort: uint16(p.ContainerPort), Protocol: p.Protocol}
	}
	return out, nil
}

// Result describes a container's network after Setup.
type Result struct {
	// Interface is the container's interface (eth0), or "" with only lo.
	Interface string
	// MAC is Interface's hardware address.
	MAC string
	// IPs are Interface's addresses with their prefix length.
	IPs []netip.Prefix
	// Gateway is the default gateway (the bridge's address), or the zero
	// Addr with only lo.
	Gateway netip.Addr
	// Network is the CNI network name, "" with only lo.
	Network string
}
