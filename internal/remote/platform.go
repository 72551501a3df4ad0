package remote

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ParsePlatform parses "os/arch[/variant]" ("linux/arm64/v8"). A single
// word is an OS ("linux", taking the host's architecture) or else an
// architecture ("arm64", taking the host's OS). Names are normalised as
// containerd does (x86_64 is amd64, aarch64 is arm64, armhf is arm/v7).
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	for _, part := range parts {
		if part == "" || strings.ContainsFunc(part, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
		}) {
			return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant] of letters, digits, '_', '-' or '.': %w", s, errdefs.ErrInvalidArgument)
		}
	}
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if knownOS(parts[0]) {
			p = ocispec.Platform{OS: parts[0], Architecture: runtime.GOARCH}
		} else {
			p = ocispec.Platform{OS: runtime.GOOS, Architecture: parts[0]}
		}
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant]: %w", s, errdefs.ErrInvalidArgument)
	}
	return normalizePlatform(p), nil
}

func knownOS(s string) bool {
	switch s {
	case "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "plan9", "js", "wasip1", "android", "ios", "dragonfly":
		return true
	}
	return false
}

// FormatPlatform is the inverse of ParsePlatform: "linux/arm64/v8".
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// DefaultPlatform is the platform of this host: runtime.GOOS and GOARCH,
// with variant v8 on arm64 and v7 on arm.
func DefaultPlatform() ocispec.Platform {
	return normalizePlatform(ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH})
}

// normalizePlatform maps aliases to the OCI names and fills the default
// variant for arm (v7) and arm64 (v8).
func normalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	switch p.Architecture {
	case "i386", "i686":
		p.Architecture = "386"
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if p.Variant == "" || p.Variant == "8" {
			p.Variant = "v8"
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "arm":
		switch p.Variant {
		case "":
			p.Variant = "v7"
		case "5", "6", "7", "8":
			p.Variant = "v" + p.Variant
		}
	}
	return p
}

// variantLevel returns the numeric level of a "vN" variant for the
// architectures whose variants are ordered (a v8 CPU runs v7 code).
func variantLevel(arch, variant string) (int, bool) {
	if arch != "arm" && arch != "arm64" && arch != "amd64" {
		return 0, false
	}
	if variant == "" {
		return 1, true // amd64 baseline
	}
	n, err := strconv.Atoi(strings.TrimPrefix(variant, "v"))
	return n, err == nil
}

// MatchPlatform picks the manifest of idx for want: same OS and
// architecture, and the same variant or, for arm, arm64 and amd64, the
// highest lower one (a linux/arm/v7 host takes v7, else v6, else v5).
// Entries without a platform are skipped. When nothing matches, the error
// (ErrNotFound) lists the platforms the index has.
func MatchPlatform(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	w := normalizePlatform(want)
	wantLevel, ordered := variantLevel(w.Architecture, w.Variant)
	best, bestLevel := -1, -1
	var available []string
	for i, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		available = append(available, FormatPlatform(*m.Platform))
		c := normalizePlatform(*m.Platform)
		if c.OS != w.OS || c.Architecture != w.Architecture {
			continue
		}
		if c.Variant == w.Variant {
			return m, nil
		}
		if !ordered {
			continue
		}
		level, ok := variantLevel(c.Architecture, c.Variant)
		if ok && level <= wantLevel && level > bestLevel {
			best, bestLevel = i, level
		}
	}
	if best >= 0 {
		return idx.Manifests[best], nil
	}
	has := "none"
	if len(available) > 0 {
		has = strings.Join(available, ", ")
	}
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for platform %s (the index has: %s): %w", FormatPlatform(w), has, errdefs.ErrNotFound)
}
