package oci

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/labels"
)

// ReservedLabelPrefix starts the label keys that berth itself sets and reads
// (garbage collection references and roots, pull records).
const ReservedLabelPrefix = "berth.io/"

// ImageLabels returns the labels of an image config that a container may
// inherit: all of them except those in berth's own namespace
// (ReservedLabelPrefix), which an image could otherwise use to forge
// garbage-collection references, and those labels.Validate rejects
// (too large), which would make creating the container fail.
func ImageLabels(img ocispec.ImageConfig) map[string]string {
	out := map[string]string{}
	for k, v := range img.Labels {
		if strings.HasPrefix(k, ReservedLabelPrefix) || labels.Validate(k, v) != nil {
			continue
		}
		out[k] = v
	}
	return out
}
