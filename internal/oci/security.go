package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// securityOpts is what the --security-opt values ask for.
type securityOpts struct {
	noNewPrivileges bool
	// seccompUnconfined: no seccomp filter at all.
	seccompUnconfined bool
	// seccomp is a profile given by the user, replacing the default.
	seccomp *specs.LinuxSeccomp
	// systemPathsUnconfined: no masked or read-only /proc and /sys paths.
	systemPathsUnconfined bool
}

// parseSecurityOpts parses --security-opt values:
//
//	no-new-privileges[=true|false]   the default is true
//	seccomp=unconfined               no seccomp filter
//	seccomp=/abs/path/profile.json   an OCI runtime-spec seccomp profile (linux.seccomp)
//	seccomp={...}                    the same profile given inline, as Docker's CLI sends it
//	systempaths=unconfined           no masked or read-only paths
//	apparmor=unconfined, label=disable  accepted: berth applies no AppArmor or SELinux
//
// Any other apparmor= or label= value is ErrNotImplemented.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	s := securityOpts{noNewPrivileges: true}
	for _, o := range opts {
		key, value, hasValue := strings.Cut(o, "=")
		bad := func(why string) error {
			return fmt.Errorf("--security-opt %q: %s: %w", o, why, errdefs.ErrInvalidArgument)
		}
		switch key {
		case "no-new-privileges":
			switch {
			case !hasValue || value == "true":
				s.noNewPrivileges = true
			case value == "false":
				s.noNewPrivileges = false
			default:
				return s, bad("want true or false")
			}
		case "seccomp":
			switch {
			case value == "unconfined":
				s.seccompUnconfined, s.seccomp = true, nil
			case strings.HasPrefix(value, "{"):
				p, err := decodeSeccomp([]byte(value))
				if err != nil {
					return s, bad(err.Error())
				}
				s.seccompUnconfined, s.seccomp = false, p
			case filepath.IsAbs(value):
				data, err := os.ReadFile(value)
				if err != nil {
					return s, bad("read profile: " + err.Error())
				}
				p, err := decodeSeccomp(data)
				if err != nil {
					return s, bad(err.Error())
				}
				s.seccompUnconfined, s.seccomp = false, p
			default:
				return s, bad("want unconfined, an absolute path to a profile, or the profile as JSON")
			}
		case "systempaths":
			if value != "unconfined" {
				return s, bad("want unconfined")
			}
			s.systemPathsUnconfined = true
		case "apparmor", "label":
			if (key == "apparmor" && value == "unconfined") || (key == "label" && value == "disable") {
				continue
			}
			return s, fmt.Errorf("--security-opt %q: berth applies no AppArmor or SELinux profiles: %w", o, errdefs.ErrNotImplemented)
		default:
			return s, bad("unknown option (want no-new-privileges, seccomp, systempaths, apparmor or label)")
		}
	}
	return s, nil
}

// decodeSeccomp decodes an OCI runtime-spec seccomp profile. Unknown fields
// are an error, so that a profile in Docker's own format, whose conditional
// rules (includes, excludes) would otherwise be read as unconditional, is
// refused rather than applied wrongly.
func decodeSeccomp(data []byte) (*specs.LinuxSeccomp, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p specs.LinuxSeccomp
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("not an OCI runtime-spec seccomp profile (Docker's format is not supported): %v", err)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile has no defaultAction")
	}
	return &p, nil
}

// maskedPaths are made unreadable in unprivileged containers: they expose
// host hardware, kernel memory or keys, or timing side channels, and are
// not namespaced.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

// readonlyPaths are read-only in unprivileged containers: writing them
// changes the host's kernel.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
