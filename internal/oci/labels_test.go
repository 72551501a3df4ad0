package oci

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestImageLabels(t *testing.T) {
	img := ocispec.ImageConfig{Labels: map[string]string{
		"org.opencontainers.image.title": "web",
		"berth.io/gc.root":               "x",
		"berth.io/gc.ref.snapshot.a":     "y",
		"maintainer":                     "me",
		"huge":                           strings.Repeat("x", 5000),
		"berth.iox":                      "kept: not the namespace",
	}}
	want := map[string]string{"org.opencontainers.image.title": "web", "maintainer": "me", "berth.iox": "kept: not the namespace"}
	if diff := cmp.Diff(want, ImageLabels(img)); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if got := ImageLabels(ocispec.ImageConfig{}); got == nil || len(got) != 0 {
		t.Errorf("labels of an image without labels: %v, want an empty map", got)
	}
}
