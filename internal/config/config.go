// Package config is berthd's configuration: the TOML schema, its defaults
// and its validation. It reads files; it does not look at flags or the
// environment (cmd/berthd applies those on top).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/pelletier/go-toml/v2"
)

// Version is the config schema version this build reads.
const Version = 1

// Config is the whole daemon configuration.
type Config struct {
	// Version of the schema; must be 1.
	Version int `toml:"version" comment:"Schema version of this file."`
	// Root holds persistent state: meta.db, content, snapshots.
	Root string `toml:"root" comment:"Persistent state: metadata database, content, snapshots (mode 0700)."`
	// State holds runtime state: the socket, task bundles, shim sockets.
	State string `toml:"state" comment:"Runtime state: API socket, task bundles (mode 0711)."`
	// LogLevel is debug, info, warn or error.
	LogLevel    string      `toml:"log_level" comment:"debug, info, warn or error."`
	GRPC        GRPC        `toml:"grpc"`
	Metrics     Metrics     `toml:"metrics"`
	Content     Content     `toml:"content"`
	GC          GC          `toml:"gc"`
	Snapshotter Snapshotter `toml:"snapshotter"`
	Registry    Registry    `toml:"registry"`
	Runtime     Runtime     `toml:"runtime"`
	Network     Network     `toml:"network"`
}

// Snapshotter chooses how image layers and container filesystems are stored.
type Snapshotter struct {
	Name string `toml:"name" comment:"\"overlayfs\", \"native\" (plain copies), or empty: overlayfs when the root supports it, else native."`
}

// Runtime configures how containers run.
type Runtime struct {
	Default string `toml:"default" comment:"The OCI runtime containers use unless they name one: \"runc\" or \"crun\"."`
	Runc    string `toml:"runc" comment:"Path of the runc binary."`
	Crun    string `toml:"crun" comment:"Path of the crun binary."`
	// Shim is found next to berthd when empty.
	Shim        string `toml:"shim" comment:"Path of berth-shim; empty means the one next to berthd, else on PATH."`
	LogMaxSize  int64  `toml:"log_max_size" comment:"Bytes a container log file may reach before it is rotated."`
	LogMaxFiles int    `toml:"log_max_files" comment:"Log files kept per container, the live one included."`
}

// Network configures container networking (CNI).
type Network struct {
	PluginDirs []string `toml:"plugin_dirs" comment:"Directories searched for CNI plugins (bridge, host-local, portmap, loopback)."`
	Bridge     string   `toml:"bridge" comment:"Linux bridge of the default network."`
	Subnet     string   `toml:"subnet" comment:"IPv4 subnet of the default network."`
}

// Registry configures pulls.
type Registry struct {
	ConfigPath             string `toml:"config_path" comment:"Directory of per-registry hosts.toml files (mirrors, TLS, plain HTTP)."`
	MaxConcurrentDownloads int    `toml:"max_concurrent_downloads" comment:"Blobs one pull fetches at once."`
}

// GRPC configures the API socket.
type GRPC struct {
	Address string `toml:"address" comment:"Unix socket of the API (mode 0660)."`
	// Group owns the socket; a name or a numeric gid. Empty means root's group.
	Group string `toml:"group" comment:"Group (name or gid) that may use the socket besides its owner; empty keeps the daemon's group (root only, when run as root)."`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Address string `toml:"address" comment:"TCP address of the Prometheus /metrics endpoint, e.g. \"127.0.0.1:9323\"; empty turns it off."`
}

// Content configures the content store.
type Content struct {
	Sharing string `toml:"sharing" comment:"\"shared\": a namespace may adopt a blob stored by another by naming its digest; \"isolated\": it must send the bytes."`
}

// GC configures garbage collection.
type GC struct {
	Delay        Duration `toml:"delay" comment:"Delay between a delete and the automatic collection it triggers."`
	IngestExpiry Duration `toml:"ingest_expiry" comment:"How long an ingest that no lease holds is kept."`
}

// Duration is a time.Duration written as "100ms", "24h".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration like \"100ms\" or \"24h\": %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Version:  Version,
		Root:     "/var/lib/berth",
		State:    "/run/berth",
		LogLevel: "info",
		GRPC:     GRPC{Address: "/run/berth/berth.sock"},
		Content:  Content{Sharing: "shared"},
		GC:       GC{Delay: Duration(100 * time.Millisecond), IngestExpiry: Duration(24 * time.Hour)},
		Registry: Registry{ConfigPath: "/etc/berth/certs.d", MaxConcurrentDownloads: 3},
		Runtime:  Runtime{Default: "runc", Runc: "/usr/sbin/runc", Crun: "/usr/bin/crun", LogMaxSize: 10 << 20, LogMaxFiles: 3},
		Network:  Network{PluginDirs: []string{"/usr/lib/cni", "/opt/cni/bin"}, Bridge: "berth0", Subnet: "10.87.0.0/16"},
	}
}

// Load reads the file at path over the defaults. A missing file is not an
// error when missingOK is set (the default path need not exist). Unknown keys
// and bad values are errors naming the file and the key.
func Load(path string, missingOK bool) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && missingOK {
			return cfg, nil
		}
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := decode(bytes.NewReader(data), &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func decode(r io.Reader, cfg *Config) error {
	dec := toml.NewDecoder(r).DisallowUnknownFields()
	err := dec.Decode(cfg)
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var keys []string
		for _, e := range strict.Errors {
			keys = append(keys, strings.Join(e.Key(), "."))
		}
		return fmt.Errorf("unknown key %s: %w", strings.Join(keys, ", "), errdefs.ErrInvalidArgument)
	}
	var derr *toml.DecodeError
	if errors.As(err, &derr) {
		row, col := derr.Position()
		key := strings.Join(derr.Key(), ".")
		if key != "" {
			key = "key " + key + ": "
		}
		return fmt.Errorf("line %d column %d: %s%s: %w", row, col, key, derr.Error(), errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Validate checks values the decoder cannot.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %w", key, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
	}
	if c.Version != Version {
		return bad("version", "%d is not supported (this berthd reads version %d)", c.Version, Version)
	}
	for key, p := range map[string]string{"root": c.Root, "state": c.State, "grpc.address": c.GRPC.Address} {
		if p == "" || !filepath.IsAbs(p) {
			return bad(key, "must be an absolute path, got %q", p)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.Content.Sharing != "shared" && c.Content.Sharing != "isolated" {
		return bad("content.sharing", "%q is not \"shared\" or \"isolated\"", c.Content.Sharing)
	}
	if c.GC.Delay < 0 {
		return bad("gc.delay", "must not be negative")
	}
	if c.GC.IngestExpiry <= 0 {
		return bad("gc.ingest_expiry", "must be positive")
	}
	switch c.Snapshotter.Name {
	case "", "overlayfs", "native":
	default:
		return bad("snapshotter.name", "%q is not \"overlayfs\", \"native\" or empty", c.Snapshotter.Name)
	}
	if c.Registry.ConfigPath == "" || !filepath.IsAbs(c.Registry.ConfigPath) {
		return bad("registry.config_path", "must be an absolute path, got %q", c.Registry.ConfigPath)
	}
	if n := c.Registry.MaxConcurrentDownloads; n < 1 || n > 64 {
		return bad("registry.max_concurrent_downloads", "%d is not between 1 and 64", n)
	}
	switch c.Runtime.Default {
	case "runc", "crun":
	default:
		return bad("runtime.default", "%q is not \"runc\" or \"crun\"", c.Runtime.Default)
	}
	for key, p := range map[string]string{"runtime.runc": c.Runtime.Runc, "runtime.crun": c.Runtime.Crun} {
		if p == "" || !filepath.IsAbs(p) {
			return bad(key, "must be an absolute path, got %q", p)
		}
	}
	if c.Runtime.LogMaxSize < 4096 {
		return bad("runtime.log_max_size", "%d is less than 4096 bytes", c.Runtime.LogMaxSize)
	}
	if c.Runtime.LogMaxFiles < 1 {
		return bad("runtime.log_max_files", "must be at least 1")
	}
	if _, err := netip.ParsePrefix(c.Network.Subnet); err != nil {
		return bad("network.subnet", "%q is not a CIDR subnet like 10.87.0.0/16", c.Network.Subnet)
	}
	if a := c.Metrics.Address; a != "" && !strings.Contains(a, ":") {
		return bad("metrics.address", "%q is not host:port", a)
	}
	return nil
}

// Encode writes cfg as TOML with comments.
func Encode(w io.Writer, cfg Config) error {
	return toml.NewEncoder(w).Encode(cfg)
}
