// Package archive reads and writes images in files: OCI image layouts, as
// a directory or as a tar of one, and docker-archive tars as `docker save`
// writes them. It owns those formats and the walk over an image graph
// (index, manifests, config, layers). Blobs come from, and are served
// through, a Fetcher: a registry, a layout, an archive or a content store,
// so `berth remote copy` and the daemon's save and load share this code.
//
// It must not know where blobs come from or go to: it never imports the
// content store, the metadata store or the daemon, and it does not talk to
// registries (package remote does; it uses only remote's media types,
// reference parsing, platform matching and VerifyReader). It never writes outside the
// directory or writer it is given, and never reads outside the archive or
// layout it is given.
//
// # Formats
//
// OCI image layout (image-spec image-layout.md):
//
//	oci-layout                 {"imageLayoutVersion":"1.0.0"}
//	index.json                 an index; each entry is one image, named by
//	                           its org.opencontainers.image.ref.name annotation
//	blobs/<alg>/<encoded>      every manifest, index, config and layer by digest
//
// The same files in a tar are an OCI archive (skopeo's oci-archive,
// `berth save`). Docker 25 and later write an OCI archive that also holds
// a manifest.json; readers here take index.json when both are present.
//
// docker-archive (`docker save`, skopeo's docker-archive):
//
//	manifest.json   [{"Config":"<path>","RepoTags":["busybox:latest"],"Layers":["<path>",…]}]
//	repositories    {"busybox":{"latest":"<top layer id>"}} (legacy)
//	<paths>         the image config JSON and one tar per layer
//
// It holds one platform per image and no manifest. A Reader builds a Docker
// schema 2 manifest for each image: the config as it is
// (application/vnd.docker.container.image.v1+json) and the layers as they
// are in the tar, application/vnd.docker.image.rootfs.diff.tar when
// uncompressed and ….tar.gzip when gzip, told by their first bytes. The
// manifest's bytes, and so its digest, depend only on the config and the
// layers. WriteDocker names config and layers blobs/<alg>/<encoded>, as
// Docker 25 does, and keeps layers as they are stored (gzip stays gzip);
// Docker, skopeo and this package read compressed layers.
//
// # Safety
//
// Entry names in a tar are cleaned; an absolute name or one that leaves the
// archive ("../x") makes Open fail. Symbolic and hard links in a tar are
// never followed on disk: a link to another regular entry of the same tar
// (old `docker save` links shared layers so) serves that entry, any other
// link is ignored. A layout directory is read and written through an
// os.Root, so its symlinks cannot lead out of it. Every blob a writer
// copies is checked against its descriptor's size and digest, and a
// mismatch fails naming the blob.
//
// # Words
//
//   - image: a name and a target descriptor (an index or a manifest).
//   - name: org.opencontainers.image.ref.name in an OCI layout (any string:
//     skopeo writes a tag, `berth save` a full reference), a RepoTags entry
//     in a docker-archive ("busybox:latest").
//   - blob: any object stored by digest, manifests included.
package archive

import (
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
)
