package oci

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The kinds of Mount.
const (
	MountBind  = "bind"
	MountTmpfs = "tmpfs"
)

// Mount is a mount the user asked for: a bind mount of a host path (-v) or
// a tmpfs (--tmpfs).
type Mount struct {
	// Type is MountBind or MountTmpfs.
	Type string
	// Source is the absolute host path of a bind mount; empty for tmpfs.
	Source string
	// Destination is the absolute path in the container.
	Destination string
	// ReadOnly mounts it read-only.
	ReadOnly bool
	// Options are tmpfs options (size=64m, mode=1777, uid=, gid=,
	// nr_inodes=, exec, noatime, ...); none for a bind mount.
	Options []string
}

// ParseVolume parses a -v value, HOST:CONTAINER[:ro|rw], into a bind mount.
// Both paths must be absolute: named volumes are not supported. Whether the
// host path exists is checked by Generate.
func ParseVolume(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, fmt.Errorf("-v %q: want HOST:CONTAINER[:ro|rw]: %w", s, errdefs.ErrInvalidArgument)
	}
	m := Mount{Type: MountBind, Source: parts[0], Destination: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return Mount{}, fmt.Errorf("-v %q: unsupported option %q (want ro or rw): %w", s, parts[2], errdefs.ErrInvalidArgument)
		}
	}
	if err := m.validate(); err != nil {
		return Mount{}, fmt.Errorf("-v %q: %w", s, err)
	}
	return m, nil
}

// ParseTmpfs parses a --tmpfs value, CONTAINER[:OPTIONS] with OPTIONS
// comma-separated (for example "/run:size=64m,mode=755").
func ParseTmpfs(s string) (Mount, error) {
	dst, opts, _ := strings.Cut(s, ":")
	m := Mount{Type: MountTmpfs, Destination: dst}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "ro":
				m.ReadOnly = true
			case "rw":
			default:
				m.Options = append(m.Options, o)
			}
		}
	}
	if err := m.validate(); err != nil {
		return Mount{}, fmt.Errorf("--tmpfs %q: %w", s, err)
	}
	return m, nil
}

// tmpfsFlags are the tmpfs options that are mount flags.
var tmpfsFlags = []string{
	"exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "dirsync",
	"atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
	"strictatime", "nostrictatime",
}

// tmpfsValue matches the values of tmpfs's key=value options: a number
// with an optional size unit or percent sign (the kernel checks the rest).
var tmpfsValue = regexp.MustCompile(`^[0-9]+[kKmMgG%]?$`)

// tmpfsMode matches tmpfs's mode= option, octal.
var tmpfsMode = regexp.MustCompile(`^[0-7]{1,4}$`)

func (m Mount) validate() error {
	if err := validateDestination(m.Destination); err != nil {
		return err
	}
	switch m.Type {
	case MountBind:
		if !path.IsAbs(m.Source) || strings.ContainsRune(m.Source, 0) {
			return fmt.Errorf("host path %q must be absolute (named volumes are not supported): %w", m.Source, errdefs.ErrInvalidArgument)
		}
		if len(m.Options) > 0 {
			return fmt.Errorf("bind mount options %q: only ro or rw are supported: %w", m.Options, errdefs.ErrInvalidArgument)
		}
	case MountTmpfs:
		if m.Source != "" {
			return fmt.Errorf("tmpfs has no source, got %q: %w", m.Source, errdefs.ErrInvalidArgument)
		}
		for _, o := range m.Options {
			k, v, isKV := strings.Cut(o, "=")
			switch {
			case !isKV && slices.Contains(tmpfsFlags, o):
			case isKV && slices.Contains([]string{"size", "nr_blocks", "nr_inodes", "uid", "gid"}, k) && tmpfsValue.MatchString(v):
			case isKV && k == "mode" && tmpfsMode.MatchString(v):
			default:
				return fmt.Errorf("unsupported tmpfs option %q: %w", o, errdefs.ErrInvalidArgument)
			}
		}
	default:
		return fmt.Errorf("mount type %q: want %q or %q: %w", m.Type, MountBind, MountTmpfs, errdefs.ErrInvalidArgument)
	}
	return nil
}

func validateDestination(d string) error {
	if !path.IsAbs(d) || strings.ContainsRune(d, 0) {
		return fmt.Errorf("container path %q must be absolute: %w", d, errdefs.ErrInvalidArgument)
	}
	if path.Clean(d) == "/" {
		return fmt.Errorf("container path %q: cannot mount over the root: %w", d, errdefs.ErrInvalidArgument)
	}
	return nil
}

// spec returns the spec mount: a bind is recursive ("rbind") and private
// ("rprivate"), so mounts made later on either side do not propagate; a
// tmpfs is nosuid, nodev and noexec unless its options say otherwise.
func (m Mount) spec() specs.Mount {
	rw := "rw"
	if m.ReadOnly {
		rw = "ro"
	}
	dst := path.Clean(m.Destination)
	if m.Type == MountBind {
		return specs.Mount{Destination: dst, Type: "bind", Source: m.Source, Options: []string{"rbind", rw, "rprivate"}}
	}
	opts := append([]string{"nosuid", "nodev", "noexec"}, m.Options...)
	return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: append(opts, rw)}
}

// defaultMounts are the filesystems every container gets. /sys and
// /sys/fs/cgroup are read-only unless privileged.
func defaultMounts(privileged bool) []specs.Mount {
	sys := []string{"nosuid", "noexec", "nodev"}
	if !privileged {
		sys = append(sys, "ro")
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sys},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: append(slices.Clone(sys), "relatime")},
	}
}

// mounts returns the default mounts followed by the user's. A user mount
// replaces a default mount at the same destination; two user mounts at one
// destination are an error, and so is a bind mount whose host path does not
// exist.
func mounts(user []Mount, privileged bool) ([]specs.Mount, error) {
	var out []specs.Mount
	seen := map[string]bool{}
	for _, m := range user {
		if err := m.validate(); err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.Destination, err)
		}
		sm := m.spec()
		if seen[sm.Destination] {
			return nil, fmt.Errorf("mount %s: more than one mount at this container path: %w", sm.Destination, errdefs.ErrInvalidArgument)
		}
		seen[sm.Destination] = true
		if m.Type == MountBind {
			if _, err := os.Stat(m.Source); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil, fmt.Errorf("bind mount %s:%s: host path %q does not exist: %w", m.Source, m.Destination, m.Source, errdefs.ErrInvalidArgument)
				}
				return nil, fmt.Errorf("bind mount %s:%s: %w", m.Source, m.Destination, err)
			}
		}
		out = append(out, sm)
	}
	var defaults []specs.Mount
	for _, d := range defaultMounts(privileged) {
		if !seen[d.Destination] {
			defaults = append(defaults, d)
		}
	}
	return append(defaults, out...), nil
}
