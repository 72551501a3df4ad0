package client

import (
	"context"
	"time"

	introspectionapi "github.com/berth-dev/berth/api/introspection/v1"
)

// ServerInfo describes the daemon.
type ServerInfo struct {
	Version        string    `json:"version"`
	Revision       string    `json:"revision"`
	GoVersion      string    `json:"go_version"`
	PID            int64     `json:"pid"`
	Root           string    `json:"root"`
	State          string    `json:"state"`
	Address        string    `json:"address"`
	MetricsAddress string    `json:"metrics_address,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	Services       []string  `json:"services"`
	Features       []string  `json:"features"`
	Namespaces     int64     `json:"namespaces"`
}

// Server returns what the daemon says of itself.
func (c *Client) Server(ctx context.Context) (ServerInfo, error) {
	r, err := c.introspection.Server(ctx, &introspectionapi.ServerRequest{})
	if err != nil {
		return ServerInfo{}, err
	}
	return ServerInfo{
		Version: r.GetVersion(), Revision: r.GetRevision(), GoVersion: r.GetGoVersion(), PID: r.GetPid(),
		Root: r.GetRoot(), State: r.GetState(), Address: r.GetAddress(), MetricsAddress: r.GetMetricsAddress(),
		StartedAt: timeOf(r.GetStartedAt()), Services: r.GetServices(), Features: r.GetFeatures(), Namespaces: r.GetNamespaces(),
	}, nil
}
