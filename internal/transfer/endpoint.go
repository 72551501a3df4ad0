package transfer

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
)

// Transport is how an endpoint stores images.
type Transport string

// The transports, named as skopeo names them.
const (
	Docker        Transport = "docker"         // a registry: docker://REF
	OCI           Transport = "oci"            // an OCI image layout directory: oci:DIR[:NAME]
	OCIArchive    Transport = "oci-archive"    // a tar of an OCI image layout: oci-archive:FILE[:NAME]
	DockerArchive Transport = "docker-archive" // docker save's format: docker-archive:FILE[:NAME]
)

// Endpoint is the source or destination of a copy.
type Endpoint struct {
	Transport Transport
	Ref       remote.Reference // Docker only
	Path      string           // the directory or file of the other transports
	// Name is the image in the layout or archive: for OCI and OCIArchive
	// the org.opencontainers.image.ref.name annotation, for DockerArchive
	// a RepoTags entry ("busybox:latest"). Empty means the only image of
	// a source, and an unnamed image (oci, oci-archive) or the source's
	// reference (docker-archive from docker://) for a destination.
	Name string
}

// ParseEndpoint parses skopeo's syntax: docker://REF, oci:DIR[:NAME],
// oci-archive:FILE[:NAME] or docker-archive:FILE[:NAME]. The path ends at
// its first colon, so it cannot hold one. A docker-archive name must be a
// reference with a tag. Errors are of kind ErrInvalidArgument.
func ParseEndpoint(s string) (Endpoint, error) {
	if rest, ok := strings.CutPrefix(s, "docker://"); ok {
		ref, err := remote.ParseReference(rest)
		if err != nil {
			return Endpoint{}, err
		}
		return Endpoint{Transport: Docker, Ref: ref}, nil
	}
	transport, rest, ok := strings.Cut(s, ":")
	t := Transport(transport)
	if !ok || (t != OCI && t != OCIArchive && t != DockerArchive) {
		return Endpoint{}, fmt.Errorf("%q: want docker://REF, oci:DIR[:NAME], oci-archive:FILE[:NAME] or docker-archive:FILE[:NAME]: %w", s, errdefs.ErrInvalidArgument)
	}
	e := Endpoint{Transport: t}
	e.Path, e.Name, _ = strings.Cut(rest, ":")
	if e.Path == "" {
		return Endpoint{}, fmt.Errorf("%q: %s needs a path: %w", s, t, errdefs.ErrInvalidArgument)
	}
	if t == DockerArchive && e.Name != "" {
		ref, err := remote.ParseReference(e.Name)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%q: %w", s, err)
		}
		if ref.Digest != "" {
			return Endpoint{}, fmt.Errorf("%q: a docker-archive names images by repository:tag, not by digest: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	return e, nil
}

// String is the endpoint in the syntax ParseEndpoint reads, with a
// registry reference in its normalised form.
func (e Endpoint) String() string {
	if e.Transport == Docker {
		return "docker://" + e.Ref.String()
	}
	s := string(e.Transport) + ":" + e.Path
	if e.Name != "" {
		s += ":" + e.Name
	}
	return s
}
