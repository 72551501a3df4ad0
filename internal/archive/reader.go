package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
)

// Format is how a file or directory stores images.
type Format string

// The formats a Reader reads.
const (
	FormatOCI    Format = "oci"            // OCI image layout, as a directory or a tar
	FormatDocker Format = "docker-archive" // docker save's manifest.json tar
)

// AnnotationImageName is the annotation Docker 25 and containerd put on
// index.json entries besides org.opencontainers.image.ref.name: the full
// reference ("docker.io/library/busybox:latest").
const AnnotationImageName = "io.containerd.image.name"

const (
	mediaTypeDockerConfig     = string(types.DockerConfigJSON)
	mediaTypeDockerLayer      = string(types.DockerUncompressedLayer)
	mediaTypeDockerLayerGzip  = string(types.DockerLayer)
	layoutFile                = ocispec.ImageLayoutFile
	indexFile                 = ocispec.ImageIndexFile
	dockerManifestFile        = "manifest.json"
	dockerRepositoriesFile    = "repositories"
	maxDockerArchiveManifests = 10000
)

// Reader serves the images and blobs of an OCI layout or a docker-archive.
// It is safe for concurrent use; Close releases the file or directory it
// holds.
type Reader struct {
	format Format
	store  store
	images []Image
	// docker-archive only: the manifests built for its images, and the
	// entry holding each config and layer.
	manifests map[digest.Digest][]byte
	paths     map[digest.Digest]string
	closer    io.Closer
}

// Open reads the tar of size bytes in r: an OCI layout when it has
// oci-layout and index.json, else a docker-archive when it has
// manifest.json. It indexes the tar's entries and reads only index.json,
// or for a docker-archive manifest.json and every config and layer once,
// to digest them. Blobs are then served from r without copying; r must
// stay open while the Reader is used.
//
// Errors: ErrInvalidArgument for a file that is not a tar, has entries
// outside the archive, or is neither format; ErrNotImplemented for a
// layout version or layer compression it does not know.
func Open(r io.ReaderAt, size int64) (*Reader, error) {
	s, err := indexTar(r, size)
	if err != nil {
		return nil, err
	}
	return newReader(s)
}

// OpenFile opens the archive (tar) file name; see Open. Close closes it.
func OpenFile(name string) (*Reader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", name, fsErr(err))
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = fmt.Errorf("is a directory, not a tar: %w", errdefs.ErrInvalidArgument)
	}
	var r *Reader
	if err == nil {
		r, err = Open(f, fi.Size())
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("archive %s: %w", name, err)
	}
	r.closer = f
	return r, nil
}

// OpenLayout opens the OCI image layout in directory dir (an extracted
// docker-archive is read too). Close releases it.
func OpenLayout(dir string) (*Reader, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, fsErr(err))
	}
	r, err := newReader(dirStore{root})
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	r.closer = root
	return r, nil
}

// fsErr adds the error kind of a missing file or directory.
func fsErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	}
	return err
}

func newReader(s store) (*Reader, error) {
	r := &Reader{store: s}
	switch {
	case has(s, indexFile) && has(s, layoutFile):
		r.format = FormatOCI
		return r, r.readLayout()
	case has(s, dockerManifestFile):
		r.format = FormatDocker
		return r, r.readDocker()
	case has(s, indexFile):
		return nil, fmt.Errorf("not an OCI image layout: index.json without an oci-layout file: %w", errdefs.ErrInvalidArgument)
	}
	return nil, fmt.Errorf("neither an OCI image layout (oci-layout, index.json) nor a docker-archive (manifest.json): %w", errdefs.ErrInvalidArgument)
}

func has(s store, name string) bool {
	rc, _, err := s.open(name)
	if err != nil {
		return false
	}
	rc.Close()
	return true
}

func (r *Reader) readLayout() error {
	data, err := readFile(r.store, layoutFile)
	if err != nil {
		return err
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("decode %s: %w: %w", layoutFile, err, errdefs.ErrInvalidArgument)
	}
	if l.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("%s: image layout version %q (berth reads %s): %w", layoutFile, l.Version, ocispec.ImageLayoutVersion, errdefs.ErrNotImplemented)
	}
	if data, err = readFile(r.store, indexFile); err != nil {
		return err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return fmt.Errorf("decode %s: %w: %w", indexFile, err, errdefs.ErrInvalidArgument)
	}
	for _, m := range idx.Manifests {
		if err := m.Digest.Validate(); err != nil {
			return fmt.Errorf("%s names %q: %w: %w", indexFile, m.Digest, err, errdefs.ErrInvalidArgument)
		}
		r.images = append(r.images, Image{Name: m.Annotations[ocispec.AnnotationRefName], Target: m})
	}
	return nil
}

// dockerEntry is one image of a docker-archive's manifest.json.
type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (r *Reader) readDocker() error {
	data, err := readFile(r.store, dockerManifestFile)
	if err != nil {
		return err
	}
	var entries []dockerEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return fmt.Errorf("decode %s: %w: %w", dockerManifestFile, err, errdefs.ErrInvalidArgument)
	}
	if len(entries) > maxDockerArchiveManifests {
		return fmt.Errorf("%s: %d images, over the limit of %d: %w", dockerManifestFile, len(entries), maxDockerArchiveManifests, errdefs.ErrInvalidArgument)
	}
	r.manifests, r.paths = map[digest.Digest][]byte{}, map[digest.Digest]string{}
	for _, e := range entries {
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: remote.MediaTypeDockerManifest}
		if m.Config, err = r.dockerBlob(e.Config, true); err != nil {
			return err
		}
		m.Layers = []ocispec.Descriptor{}
		for _, l := range e.Layers {
			desc, err := r.dockerBlob(l, false)
			if err != nil {
				return err
			}
			m.Layers = append(m.Layers, desc)
		}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		target := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
		r.manifests[target.Digest] = data
		if len(e.RepoTags) == 0 {
			r.images = append(r.images, Image{Target: target})
		}
		for _, tag := range e.RepoTags {
			r.images = append(r.images, Image{Name: tag, Target: target})
		}
	}
	return nil
}

// dockerBlob digests the config or layer at name in a docker-archive and
// remembers where it is. A layer's media type comes from its first bytes.
func (r *Reader) dockerBlob(name string, config bool) (ocispec.Descriptor, error) {
	clean, err := entryName(name)
	if err == nil && clean == "" {
		err = fmt.Errorf("empty path: %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", dockerManifestFile, err)
	}
	rc, size, err := r.store.open(clean)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s names %q: %w", dockerManifestFile, name, err)
	}
	defer rc.Close()
	desc := ocispec.Descriptor{MediaType: mediaTypeDockerConfig, Size: size}
	d := digest.Canonical.Digester()
	head := make([]byte, 4)
	n, err := io.ReadFull(rc, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return ocispec.Descriptor{}, fmt.Errorf("read %s: %w", name, err)
	}
	if !config {
		switch c := compression(head[:n]); c {
		case "":
			desc.MediaType = mediaTypeDockerLayer
		case "gzip":
			desc.MediaType = mediaTypeDockerLayerGzip
		default:
			return ocispec.Descriptor{}, fmt.Errorf("layer %s is %s-compressed, which a docker-archive cannot describe: %w", name, c, errdefs.ErrNotImplemented)
		}
	}
	d.Hash().Write(head[:n])
	if _, err := io.Copy(d.Hash(), rc); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("read %s: %w", name, err)
	}
	desc.Digest = d.Digest()
	r.paths[desc.Digest] = clean
	return desc, nil
}

// Format is the format of what the Reader reads.
func (r *Reader) Format() Format { return r.format }

// Images lists the images in index.json or manifest.json order. An image
// with several names (RepoTags) is listed once per name.
func (r *Reader) Images() []Image { return append([]Image(nil), r.images...) }

// Find returns the image called name: the one whose Name or
// io.containerd.image.name annotation is name, or else one that is the
// same image reference once normalised ("busybox:latest" finds
// "docker.io/library/busybox:latest"). An empty name finds the only image
// (several names for one target count once). Errors: ErrNotFound for an
// unknown name or an empty archive, ErrInvalidArgument for an empty name
// with several images; both list the images there are.
func (r *Reader) Find(name string) (Image, error) {
	if name == "" {
		distinct := r.distinct()
		switch len(distinct) {
		case 1:
			return distinct[0], nil
		case 0:
			return Image{}, fmt.Errorf("holds no image: %w", errdefs.ErrNotFound)
		}
		return Image{}, fmt.Errorf("holds %d images, name one: %s: %w", len(distinct), r.list(), errdefs.ErrInvalidArgument)
	}
	for _, img := range r.images {
		if img.Name == name || img.Target.Annotations[AnnotationImageName] == name {
			return img, nil
		}
	}
	if want, err := remote.ParseReference(name); err == nil {
		for _, img := range r.images {
			for _, n := range []string{img.Name, img.Target.Annotations[AnnotationImageName]} {
				if got, err := remote.ParseReference(n); err == nil && n != "" && got == want {
					return img, nil
				}
			}
		}
	}
	has := r.list()
	if has == "" {
		has = "none"
	}
	return Image{}, fmt.Errorf("image %q: not in the archive (it has: %s): %w", name, has, errdefs.ErrNotFound)
}

// distinct returns the first image of each target digest.
func (r *Reader) distinct() []Image {
	var out []Image
	seen := map[digest.Digest]bool{}
	for _, img := range r.images {
		if !seen[img.Target.Digest] {
			seen[img.Target.Digest] = true
			out = append(out, img)
		}
	}
	return out
}

// list names the images for messages: names, or the digest of an unnamed
// image.
func (r *Reader) list() string {
	var names []string
	named := map[digest.Digest]bool{}
	for _, img := range r.images {
		if img.Name != "" {
			names = append(names, fmt.Sprintf("%q", img.Name))
			named[img.Target.Digest] = true
		}
	}
	for _, img := range r.distinct() {
		if !named[img.Target.Digest] {
			names = append(names, "unnamed "+img.Target.Digest.String())
		}
	}
	return strings.Join(names, ", ")
}

// Fetch opens the blob, manifest or index desc describes. A blob whose
// size differs from desc.Size fails with ErrFailedPrecondition; the digest
// is not checked here (see Fetcher).
func (r *Reader) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	name := "blobs/" + desc.Digest.Algorithm().String() + "/" + desc.Digest.Encoded()
	if r.format == FormatDocker {
		if data, ok := r.manifests[desc.Digest]; ok {
			return io.NopCloser(bytes.NewReader(data)), nil
		}
		var ok bool
		if name, ok = r.paths[desc.Digest]; !ok {
			return nil, fmt.Errorf("%s %s: not in the archive: %w", Kind(desc.MediaType), desc.Digest, errdefs.ErrNotFound)
		}
	}
	rc, size, err := r.store.open(name)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%s %s: not in the layout: %w", Kind(desc.MediaType), desc.Digest, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", Kind(desc.MediaType), desc.Digest, err)
	}
	if size != desc.Size {
		rc.Close()
		return nil, fmt.Errorf("%s %s: %d bytes stored, the descriptor says %d: %w", Kind(desc.MediaType), desc.Digest, size, desc.Size, errdefs.ErrFailedPrecondition)
	}
	return rc, nil
}

// Close releases the file or directory the Reader was opened on (nothing
// for Open).
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}
