package containers

import (
	"github.com/berth-dev/berth/internal/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociOptions turns a container's Config into the spec generator's options.
// The network namespace is left without a path: the runtime creates one per
// task and puts its path into the bundle's spec.
func (s *Service) ociOptions(img ocispec.ImageConfig, ns, id, hostname string, cfg Config, users *oci.ImageUsers, etc etcFiles) oci.Options {
	o := oci.Options{
		ID:            id,
		Hostname:      hostname,
		Entrypoint:    cfg.Entrypoint,
		EntrypointSet: cfg.EntrypointSet,
		Args:          cfg.Args,
		Env:           cfg.Env,
		WorkingDir:    cfg.WorkingDir,
		User:          cfg.User,
		ReadOnly:      cfg.ReadOnly,
		Privileged:    cfg.Privileged,
		TTY:           cfg.TTY,
		CapAdd:        cfg.CapAdd,
		CapDrop:       cfg.CapDrop,
		SecurityOpt:   cfg.SecurityOpt,
		CgroupsPath:   "/berth/" + ns + "/" + id,
		Annotations:   stopSignal(img),
		Users:         users,
		Resources:     ociResources(cfg.Resources),
	}
	for _, m := range cfg.Mounts {
		om := oci.Mount{Type: m.Type, Source: m.Source, Destination: m.Destination}
		for _, opt := range m.Options {
			switch {
			case m.Type == oci.MountBind && opt == "ro":
				om.ReadOnly = true
			case m.Type == oci.MountBind && opt == "rw":
			default:
				om.Options = append(om.Options, opt)
			}
		}
		o.Mounts = append(o.Mounts, om)
	}
	for _, m := range [][2]string{{etc.hosts, "/etc/hosts"}, {etc.hostname, "/etc/hostname"}, {etc.resolvConf, "/etc/resolv.conf"}} {
		o.Mounts = append(o.Mounts, oci.Mount{Type: "bind", Source: m[0], Destination: m[1]})
	}
	return o
}

// AnnotationStopSignal records the image's StopSignal in the spec (the OCI
// image-spec's conversion rule), where `berth stop` finds it.
const AnnotationStopSignal = "org.opencontainers.image.stopSignal"

func stopSignal(img ocispec.ImageConfig) map[string]string {
	if img.StopSignal == "" {
		return nil
	}
	return map[string]string{AnnotationStopSignal: img.StopSignal}
}

// withNetworkNamespace gives spec a new network namespace unless the
// container uses the host's.
func withNetworkNamespace(spec *specs.Spec, network string) {
	if network == NetworkHost || spec.Linux == nil {
		return
	}
	for _, n := range spec.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			return
		}
	}
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
}
