package oci

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// capNames lists the Linux capabilities by number (capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
	"CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// defaultCaps is the capability set of an unprivileged container.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL",
}

const allCaps = "ALL"

// normalizeCap turns a --cap-add/--cap-drop value ("sys_admin",
// "CAP_SYS_ADMIN", "all") into a capability name or "ALL".
func normalizeCap(flag, c string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == allCaps {
		return allCaps, nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if !slices.Contains(capNames, u) {
		return "", fmt.Errorf("%s %q: unknown capability: %w", flag, c, errdefs.ErrInvalidArgument)
	}
	return u, nil
}

// capabilities returns the container's capability set, ordered by number.
// held is the set berthd itself holds (its bounding set): ALL and
// --privileged mean every capability in it, and adding one outside it is an
// error, because no runtime started by berthd could grant it.
//
// The rules are Docker's: with ALL in add, every capability but those
// dropped by name; else with ALL in drop, only those added; else the base
// set minus drop plus add. The base set is held for privileged, defaultCaps
// otherwise. A default capability berthd lacks is left out.
func capabilities(add, drop []string, privileged bool, held []string) ([]string, error) {
	norm := func(flag string, in []string) ([]string, error) {
		var out []string
		for _, c := range in {
			n, err := normalizeCap(flag, c)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	}
	add, err := norm("--cap-add", add)
	if err != nil {
		return nil, err
	}
	drop, err = norm("--cap-drop", drop)
	if err != nil {
		return nil, err
	}
	for _, c := range add {
		if c != allCaps && !slices.Contains(held, c) {
			return nil, fmt.Errorf("--cap-add %s: berthd does not hold this capability (not in its bounding set), so no container can have it: %w", c, errdefs.ErrFailedPrecondition)
		}
	}
	base := defaultCaps
	if privileged {
		base = held
	}
	set := map[string]bool{}
	switch {
	case slices.Contains(add, allCaps):
		for _, c := range held {
			set[c] = !slices.Contains(drop, c)
		}
	case slices.Contains(drop, allCaps):
		for _, c := range add {
			set[c] = true
		}
	default:
		for _, c := range base {
			set[c] = !slices.Contains(drop, c)
		}
		for _, c := range add {
			set[c] = true
		}
	}
	var out []string
	for _, c := range capNames {
		if set[c] && slices.Contains(held, c) {
			out = append(out, c)
		}
	}
	return out, nil
}
