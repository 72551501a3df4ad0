package containers

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Config is what a container is created with, in the words of `berth run`'s
// flags. It is stored with the container (JSON) so that tasks can be set up
// again, by a restart policy or after a reboot.
type Config struct {
	Image         string            `json:"image"`
	Platform      string            `json:"platform,omitempty"`
	Entrypoint    []string          `json:"entrypoint,omitempty"`
	EntrypointSet bool              `json:"entrypoint_set,omitempty"`
	Args          []string          `json:"args,omitempty"`
	Env           []string          `json:"env,omitempty"`
	WorkingDir    string            `json:"working_dir,omitempty"`
	User          string            `json:"user,omitempty"`
	Hostname      string            `json:"hostname,omitempty"`
	Mounts        []Mount           `json:"mounts,omitempty"`
	Resources     Resources         `json:"resources"`
	ReadOnly      bool              `json:"read_only,omitempty"`
	Privileged    bool              `json:"privileged,omitempty"`
	CapAdd        []string          `json:"cap_add,omitempty"`
	CapDrop       []string          `json:"cap_drop,omitempty"`
	SecurityOpt   []string          `json:"security_opt,omitempty"`
	TTY           bool              `json:"tty,omitempty"`
	Stdin         bool              `json:"stdin,omitempty"`
	Runtime       string            `json:"runtime,omitempty"`
	Network       string            `json:"network,omitempty"`
	Ports         []PortMapping     `json:"ports,omitempty"`
	Restart       string            `json:"restart,omitempty"`
	AutoRemove    bool              `json:"auto_remove,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// Mount is a bind mount or a tmpfs.
type Mount struct {
	Type        string   `json:"type"` // "bind" or "tmpfs"
	Source      string   `json:"source,omitempty"`
	Destination string   `json:"destination"`
	Options     []string `json:"options,omitempty"`
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      uint16 `json:"host_port"`
	ContainerPort uint16 `json:"container_port"`
	Protocol      string `json:"protocol,omitempty"`
}

// Resources are the limits a container's cgroup gets.
type Resources struct {
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
	CPUShares   uint64  `json:"cpu_shares,omitempty"`
	CpusetCPUs  string  `json:"cpuset_cpus,omitempty"`
	PidsLimit   int64   `json:"pids_limit,omitempty"`
}

// Network modes.
const (
	NetworkBridge = "bridge"
	NetworkHost   = "host"
	NetworkNone   = "none"
)

// RestartPolicy is a parsed --restart value.
type RestartPolicy struct {
	Name       string // "no", "always", "unless-stopped" or "on-failure"
	MaxRetries int    // on-failure only; 0 means unlimited
}

// ParseRestartPolicy parses no, always, unless-stopped and on-failure[:N].
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	switch name {
	case "", "no":
		if hasMax {
			break
		}
		return RestartPolicy{Name: "no"}, nil
	case "always", "unless-stopped":
		if hasMax {
			break
		}
		return RestartPolicy{Name: name}, nil
	case "on-failure":
		p := RestartPolicy{Name: name}
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return RestartPolicy{}, fmt.Errorf("restart policy %q: retries must be a number ≥ 0: %w", s, errdefs.ErrInvalidArgument)
			}
			p.MaxRetries = n
		}
		return p, nil
	}
	return RestartPolicy{}, fmt.Errorf("restart policy %q: want no, always, unless-stopped or on-failure[:N]: %w", s, errdefs.ErrInvalidArgument)
}

// ShouldRestart says whether a task that exited with status, after
// restarts so far, is started again. A container stopped by the user is not
// (until the daemon restarts, for always).
func (p RestartPolicy) ShouldRestart(status int32, restarts uint32, stoppedByUser bool) bool {
	if stoppedByUser {
		return false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return status != 0 && (p.MaxRetries == 0 || int(restarts) < p.MaxRetries)
	}
	return false
}

// validate checks what the spec generator does not: network mode, ports,
// restart policy.
func (c *Config) validate() error {
	if c.Image == "" {
		return fmt.Errorf("container: no image given: %w", errdefs.ErrInvalidArgument)
	}
	switch c.Network {
	case "":
		c.Network = NetworkBridge
	case NetworkBridge, NetworkHost, NetworkNone:
	default:
		return fmt.Errorf("network %q: want bridge, host or none: %w", c.Network, errdefs.ErrInvalidArgument)
	}
	if len(c.Ports) > 0 && c.Network != NetworkBridge {
		return fmt.Errorf("published ports need --net bridge, not %s: %w", c.Network, errdefs.ErrInvalidArgument)
	}
	for i, p := range c.Ports {
		if p.ContainerPort == 0 {
			return fmt.Errorf("port mapping %d: no container port: %w", i, errdefs.ErrInvalidArgument)
		}
		switch p.Protocol {
		case "":
			c.Ports[i].Protocol = "tcp"
		case "tcp", "udp":
		default:
			return fmt.Errorf("port mapping %d: protocol %q: want tcp or udp: %w", i, p.Protocol, errdefs.ErrInvalidArgument)
		}
		if c.Ports[i].HostPort == 0 {
			c.Ports[i].HostPort = p.ContainerPort
		}
	}
	if _, err := ParseRestartPolicy(c.Restart); err != nil {
		return err
	}
	if c.AutoRemove && c.Restart != "" && c.Restart != "no" {
		return fmt.Errorf("--rm and --restart %s conflict: %w", c.Restart, errdefs.ErrInvalidArgument)
	}
	return nil
}

func encodeConfig(c Config) []byte {
	data, _ := json.Marshal(c) // plain data: cannot fail
	return data
}

// DecodeConfig reads a Config stored with a container.
func DecodeConfig(data []byte) (Config, error) {
	var c Config
	if len(data) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("container config: %w", err)
	}
	return c, nil
}
