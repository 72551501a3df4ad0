package remote

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"linux/amd64", "linux/amd64"},
		{"linux/x86_64", "linux/amd64"},
		{"Linux/AMD64", "linux/amd64"},
		{"linux/amd64/v1", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"linux/arm64", "linux/arm64/v8"},
		{"linux/aarch64", "linux/arm64/v8"},
		{"linux/arm64/8", "linux/arm64/v8"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/6", "linux/arm/v6"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/armel", "linux/arm/v6"},
		{"linux/i386", "linux/386"},
		{"windows/amd64", "windows/amd64"},
		{"linux", "linux/" + FormatPlatform(DefaultPlatform())[len(runtime.GOOS)+1:]},
		{"s390x", runtime.GOOS + "/s390x"},
	}
	for _, tt := range tests {
		p, err := ParsePlatform(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got := FormatPlatform(p); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64", "linux/amd64!"} {
		if _, err := ParsePlatform(bad); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "platform") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestDefaultPlatformIsHost(t *testing.T) {
	p := DefaultPlatform()
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		t.Errorf("DefaultPlatform() = %+v", p)
	}
}

func TestMatchPlatform(t *testing.T) {
	entry := func(os, arch, variant, d string) ocispec.Descriptor {
		return ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    digest.Digest("sha256:" + strings.Repeat(d, 64)),
			Platform:  &ocispec.Platform{OS: os, Architecture: arch, Variant: variant},
		}
	}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest("sha256:" + strings.Repeat("0", 64))}, // no platform (attestation)
		entry("unknown", "unknown", "", "9"),
		entry("linux", "amd64", "", "1"),
		entry("linux", "arm64", "v8", "2"),
		entry("linux", "arm", "v6", "3"),
		entry("linux", "arm", "v7", "4"),
		entry("windows", "amd64", "", "5"),
		entry("linux", "amd64", "v3", "6"),
	}}
	tests := []struct {
		want  string
		digit string // "" means no match
	}{
		{"linux/amd64", "1"},
		{"linux/amd64/v2", "1"},
		{"linux/amd64/v3", "6"},
		{"linux/amd64/v4", "6"},
		{"linux/arm64", "2"},
		{"linux/arm64/v8", "2"},
		{"linux/aarch64", "2"},
		{"linux/arm/v7", "4"},
		{"linux/arm/v8", "4"},
		{"linux/arm/v6", "3"},
		{"linux/arm/v5", ""},
		{"windows/amd64", "5"},
		{"linux/s390x", ""},
		{"darwin/arm64", ""},
	}
	for _, tt := range tests {
		p, err := ParsePlatform(tt.want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := MatchPlatform(idx, p)
		if tt.digit == "" {
			if !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("%s: err = %v, want not found", tt.want, err)
				continue
			}
			for _, s := range []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v6", "linux/arm/v7", "windows/amd64", "linux/amd64/v3", FormatPlatform(p)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%s: error %q does not list %s", tt.want, err, s)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.want, err)
			continue
		}
		if want := "sha256:" + strings.Repeat(tt.digit, 64); got.Digest.String() != want {
			t.Errorf("%s: picked %s (%+v), want %s", tt.want, got.Digest, got.Platform, want)
		}
	}
}

func TestMatchPlatformEmptyIndex(t *testing.T) {
	_, err := MatchPlatform(ocispec.Index{}, ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "the index has: none") {
		t.Errorf("err = %v", err)
	}
}
