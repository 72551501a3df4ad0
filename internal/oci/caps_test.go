package oci

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/errdefs"
)

// testHost is a host like the one berth's tests run on: every capability
// but CAP_SYS_RESOURCE, a hard RLIMIT_NOFILE of 20000, two CPUs.
func testHost() host {
	h := host{hardLimits: map[string]uint64{}, cgroupNS: true, cpus: 2}
	for _, c := range capNames {
		if c != "CAP_SYS_RESOURCE" {
			h.caps = append(h.caps, c)
		}
	}
	for _, r := range rlimitTypes {
		h.hardLimits[r.typ] = Unlimited
	}
	h.hardLimits["RLIMIT_NOFILE"] = 20000
	return h
}

// capMask is the bit mask of caps, as /proc/PID/status shows CapEff.
func capMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << slices.Index(capNames, c)
	}
	return m
}

func without(all []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(c string) bool { return slices.Contains(drop, c) })
}

func TestDefaultCapabilitiesMask(t *testing.T) {
	// CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6,
	// SETUID 7, SETPCAP 8, NET_BIND_SERVICE 10.
	if got := capMask(defaultCaps); got != 0x5fb {
		t.Fatalf("default capability mask %#x, want 0x5fb", got)
	}
}

func TestCapabilities(t *testing.T) {
	held := testHost().caps
	defaults := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"}
	for _, tc := range []struct {
		name       string
		add, drop  []string
		privileged bool
		held       []string
		want       []string
		err        error
	}{
		{name: "defaults", want: defaults},
		{name: "add any spelling", add: []string{"sys_admin", "CAP_NET_RAW", "Net_Admin"},
			want: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"}},
		{name: "drop", drop: []string{"chown", "CAP_KILL"}, want: without(defaults, "CAP_CHOWN", "CAP_KILL")},
		{name: "drop all add one", add: []string{"NET_RAW"}, drop: []string{"all"}, want: []string{"CAP_NET_RAW"}},
		{name: "drop all", drop: []string{"ALL"}, want: nil},
		{name: "add all drop one", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, want: without(held, "CAP_SYS_ADMIN")},
		{name: "add all wins over drop all", add: []string{"ALL"}, drop: []string{"ALL"}, want: held},
		{name: "add and drop the same: add wins", add: []string{"NET_RAW"}, drop: []string{"NET_RAW"}, want: append(slices.Clone(defaults), "CAP_NET_RAW")},
		{name: "privileged", privileged: true, want: held},
		{name: "privileged drop", privileged: true, drop: []string{"NET_RAW"}, want: without(held, "CAP_NET_RAW")},
		{name: "default cap not held is left out", held: without(held, "CAP_KILL"), want: without(defaults, "CAP_KILL")},
		{name: "unknown", add: []string{"CAP_FOO"}, err: errdefs.ErrInvalidArgument},
		{name: "unknown drop", drop: []string{"bogus"}, err: errdefs.ErrInvalidArgument},
		{name: "not held", add: []string{"SYS_RESOURCE"}, err: errdefs.ErrFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := held
			if tc.held != nil {
				h = tc.held
			}
			got, err := capabilities(tc.add, tc.drop, tc.privileged, h)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			// Ordered by capability number.
			want := slices.Clone(tc.want)
			slices.SortFunc(want, func(a, b string) int { return slices.Index(capNames, a) - slices.Index(capNames, b) })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("capabilities (-want +got):\n%s", diff)
			}
		})
	}
}
