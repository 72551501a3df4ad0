package oci

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// BundleRootfs is the spec's root.path: the root filesystem is the
// directory "rootfs" of the bundle, where the runtime service mounts it.
const BundleRootfs = "rootfs"

// Options are a container's settings beyond its image config, as the flags
// of berth run/create give them. The zero value of each field means the
// default described in docs/security.md.
type Options struct {
	// ID is the container ID; the default hostname.
	ID string
	// Hostname is the container's hostname (--hostname); default ID.
	Hostname string

	// Entrypoint replaces the image's entrypoint when EntrypointSet
	// (--entrypoint; "" or nil leaves none), and then the image's command is
	// dropped too, as in Docker.
	Entrypoint    []string
	EntrypointSet bool
	// Args replace the image's command when not empty.
	Args []string
	// Env entries, KEY=VALUE, are set over the image's environment. PATH,
	// HOSTNAME, HOME (the user's home directory) and, with TTY, TERM=xterm
	// are added when neither sets them.
	Env []string
	// WorkingDir (-w) replaces the image's; it must be absolute. Default "/".
	WorkingDir string
	// User (-u) replaces the image's: NAME, UID, NAME:GROUP or UID:GID, looked
	// up in the image's /etc/passwd and /etc/group. Default root.
	User string

	// Mounts are the user's bind mounts (-v) and tmpfs mounts (--tmpfs),
	// made after the default mounts, replacing one at the same path.
	Mounts []Mount
	// Resources are the cgroup limits.
	Resources Resources
	// Ulimits (--ulimit, see ParseUlimit) replace the default rlimits of the
	// same type.
	Ulimits []specs.POSIXRlimit
	// OOMScoreAdj (--oom-score-adj), -1000 to 1000; nil keeps berthd's.
	// Negative needs CAP_SYS_RESOURCE in berthd.
	OOMScoreAdj *int

	// ReadOnly makes the root filesystem read-only (--read-only).
	ReadOnly bool
	// Privileged (--privileged): every capability berthd holds, no seccomp
	// filter, no masked or read-only paths, read-write /sys, all devices.
	// CapDrop and SecurityOpt still apply.
	Privileged bool
	// TTY gives the process a terminal (-t).
	TTY bool
	// CapAdd and CapDrop change the capability set (--cap-add,
	// --cap-drop): names with or without CAP_, any case, or ALL.
	CapAdd, CapDrop []string
	// SecurityOpt are --security-opt values; see docs/security.md.
	SecurityOpt []string

	// CgroupsPath is the container's cgroup, for example
	// "/berth/<namespace>/<id>"; "" lets the runtime choose.
	CgroupsPath string
	// NetNSPath is the network namespace to join, such as one CNI set up;
	// "" shares the host's network namespace.
	NetNSPath string
	// Users are the image's /etc/passwd and /etc/group (ReadImageUsers),
	// which resolve User; nil allows numeric users only.
	Users *ImageUsers
	// Annotations are copied into the spec.
	Annotations map[string]string
}

// Generate returns the OCI runtime spec for a container of an image whose
// config is img, with the options o. Invalid options or image config values
// are errdefs.ErrInvalidArgument naming the flag or field and the value;
// asking for what berthd itself lacks (a capability, a higher hard rlimit)
// is errdefs.ErrFailedPrecondition.
func Generate(img ocispec.ImageConfig, o Options) (*specs.Spec, error) {
	h, err := probeHost()
	if err != nil {
		return nil, err
	}
	return generate(img, o, h)
}

// SpecVersion is the ociVersion of generated specs: 1.0.2, because crun
// 1.8 (Debian 12) refuses 1.2.0 and later, and berth uses no field newer
// than 1.0.
const SpecVersion = "1.0.2"

// hostnameRE matches the hostnames accepted (RFC 1123 labels, plus "_").
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?$`)

func generate(img ocispec.ImageConfig, o Options, h host) (*specs.Spec, error) {
	if o.ID == "" || strings.ContainsAny(o.ID, "/\x00") {
		return nil, fmt.Errorf("container id %q: must be non-empty without / or NUL: %w", o.ID, errdefs.ErrInvalidArgument)
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = o.ID[:min(len(o.ID), 64)]
	}
	if !hostnameRE.MatchString(hostname) {
		return nil, fmt.Errorf("hostname %q: want up to 64 letters, digits, '-', '.' or '_': %w", hostname, errdefs.ErrInvalidArgument)
	}
	for _, p := range []struct{ flag, value string }{{"cgroups path", o.CgroupsPath}, {"network namespace path", o.NetNSPath}} {
		if p.value != "" && (!path.IsAbs(p.value) || path.Clean(p.value) != p.value) {
			return nil, fmt.Errorf("%s %q: must be an absolute, clean path: %w", p.flag, p.value, errdefs.ErrInvalidArgument)
		}
	}
	sec, err := parseSecurityOpts(o.SecurityOpt)
	if err != nil {
		return nil, err
	}

	process, err := generateProcess(img, o, h, hostname, sec)
	if err != nil {
		return nil, err
	}
	ms, err := mounts(o.Mounts, o.Privileged)
	if err != nil {
		return nil, err
	}
	nodes, rules, err := devices(o.Privileged)
	if err != nil {
		return nil, err
	}
	resources := &specs.LinuxResources{Devices: rules}
	if err := o.Resources.apply(resources, h); err != nil {
		return nil, err
	}
	namespaces := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace}}
	if o.NetNSPath != "" {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: o.NetNSPath})
	}
	if h.cgroupNS {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	linux := &specs.Linux{
		Resources:   resources,
		CgroupsPath: o.CgroupsPath,
		Namespaces:  namespaces,
		Devices:     nodes,
	}
	switch {
	case sec.seccomp != nil:
		linux.Seccomp = sec.seccomp
	case !o.Privileged && !sec.seccompUnconfined:
		linux.Seccomp = seccompProfile(runtime.GOARCH, process.Capabilities.Bounding)
	}
	if !o.Privileged && !sec.systemPathsUnconfined {
		linux.MaskedPaths, linux.ReadonlyPaths = slices.Clone(maskedPaths), slices.Clone(readonlyPaths)
	}
	return &specs.Spec{
		Version:     SpecVersion,
		Process:     process,
		Root:        &specs.Root{Path: BundleRootfs, Readonly: o.ReadOnly},
		Hostname:    hostname,
		Mounts:      ms,
		Linux:       linux,
		Annotations: maps.Clone(o.Annotations),
	}, nil
}

func generateProcess(img ocispec.ImageConfig, o Options, h host, hostname string, sec securityOpts) (*specs.Process, error) {
	args := processArgs(img.Entrypoint, img.Cmd, o)
	if err := validateArgs(args, "command"); err != nil {
		return nil, err
	}
	env, err := mergeEnv(nil, img.Env, "image config Env")
	if err != nil {
		return nil, err
	}
	if env, err = mergeEnv(env, o.Env, "--env"); err != nil {
		return nil, err
	}

	cwd, err := cleanWorkingDir(img.WorkingDir, "image config WorkingDir")
	if err != nil {
		return nil, err
	}
	if o.WorkingDir != "" {
		if cwd, err = cleanWorkingDir(o.WorkingDir, "--workdir"); err != nil {
			return nil, err
		}
	}
	if cwd == "" {
		cwd = "/"
	}

	userSpec, source := img.User, "image config User"
	if o.User != "" {
		userSpec, source = o.User, "--user"
	}
	if userSpec != "" {
		if err := validateUser(userSpec); err != nil {
			return nil, fmt.Errorf("%s %q: %w", source, userSpec, err)
		}
	}
	u, home, err := o.Users.resolve(userSpec)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", source, userSpec, err)
	}

	env = setDefaultEnv(env, "PATH", defaultPath)
	env = setDefaultEnv(env, "HOSTNAME", hostname)
	env = setDefaultEnv(env, "HOME", home)
	if o.TTY {
		env = setDefaultEnv(env, "TERM", "xterm")
	}

	caps, err := capabilities(o.CapAdd, o.CapDrop, o.Privileged, h.caps)
	if err != nil {
		return nil, err
	}
	rl, err := rlimits(o.Ulimits, h)
	if err != nil {
		return nil, err
	}
	var oomScoreAdj *int
	if adj := o.OOMScoreAdj; adj != nil {
		switch {
		case *adj < -1000 || *adj > 1000:
			return nil, fmt.Errorf("--oom-score-adj %d: must be from -1000 to 1000: %w", *adj, errdefs.ErrInvalidArgument)
		case *adj < 0 && !h.holds("CAP_SYS_RESOURCE"):
			return nil, fmt.Errorf("--oom-score-adj %d: a negative score needs CAP_SYS_RESOURCE, which berthd lacks: %w", *adj, errdefs.ErrFailedPrecondition)
		}
		oomScoreAdj = ptr(*adj)
	}
	return &specs.Process{
		Terminal: o.TTY,
		User:     u,
		Args:     args,
		Env:      env,
		Cwd:      cwd,
		Capabilities: &specs.LinuxCapabilities{
			Bounding:  caps,
			Effective: slices.Clone(caps),
			Permitted: slices.Clone(caps),
		},
		Rlimits:         rl,
		NoNewPrivileges: sec.noNewPrivileges,
		OOMScoreAdj:     oomScoreAdj,
	}, nil
}
