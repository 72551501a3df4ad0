// Package images pulls, pushes and creates images. A pull resolves a
// reference through package remote, fetches the manifest (or index),
// config and layers concurrently into the content store with digest
// verification and resume, unpacks each layer into a committed snapshot
// named by its chainID as soon as the layer and its parent are ready,
// verifies every diffID, and records the image only once everything it
// needs is present. Everything a pull writes is held by a lease until the
// image record exists. Create runs the same pipeline over content a client
// already wrote (berth load), and Push walks an image in the content store
// and uploads it: blobs first, skipping or mounting what the registry has,
// manifests last.
//
// It is the one pull implementation, shared by the API and the CRI. It
// never touches the database directly: it works through the namespaced
// content store and snapshotter, and records images and leases through the
// small interfaces in this package. A call that brings credentials gets a
// registry client of its own, so they never serve another call.
//
// Words: digest (of a blob's bytes), diffID (digest of a layer's
// uncompressed tar, listed in the image config), chainID (identity of a
// stack of layers: chainID(L0) = diffID(L0), chainID(L0..Ln) =
// sha256(chainID(L0..Ln-1) + " " + diffID(Ln))); committed snapshots are
// named by chainID, so every image with the same layers shares them.
//
// Garbage collection references written by a pull:
//
//	index    berth.io/gc.ref.content.m.<i>          = manifest digest
//	manifest berth.io/gc.ref.content.config         = config digest
//	         berth.io/gc.ref.content.l.<i>          = layer digest
//	config   berth.io/gc.ref.snapshot.<snapshotter> = top chainID
//
// A pull and a push also label each config and layer with the repositories
// known to hold it, per registry, so that a push to another repository of
// that registry mounts the blob instead of uploading it:
//
//	blob     berth.io/distribution.source.<registry> = repo1,repo2
package images
