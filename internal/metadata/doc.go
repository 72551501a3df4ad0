// Package metadata is berth's bbolt database: it owns namespaces, the
// per-namespace view of the content store (labels, leases, visibility), leases
// and the sweep half of garbage collection. It wraps the content store with a
// decorator that has the same interface (content.Store), so callers cannot
// tell whether they hold the raw store or the namespaced one.
//
// It must not touch the disk except through bbolt and the wrapped store, and
// it never publishes events: the API layer does.
//
// # Schema
//
// Keys are bytes; times are time.Time MarshalBinary; sizes are varints.
//
//	v1                                 schema version
//	└── namespaces
//	    └── <namespace>
//	        ├── createdat              time
//	        ├── labels/<key>           value
//	        ├── content
//	        │   ├── blob/<digest>
//	        │   │   ├── createdat, updatedat
//	        │   │   ├── size           varint
//	        │   │   └── labels/<key>   value
//	        │   └── ingest/<ref>
//	        │       ├── createdat      time
//	        │       ├── expected       digest, when known
//	        │       └── expireat       time, only when no lease holds it
//	        ├── images/<name>
//	        │   ├── createdat, updatedat
//	        │   ├── target/{digest, mediatype, size}
//	        │   └── labels/<key>       value
//	        ├── containers/<id>
//	        │   ├── createdat, updatedat
//	        │   ├── name, image, imagedigest, runtime, logpath
//	        │   ├── snapshotter, snapshotkey  its active snapshot
//	        │   ├── spec                      OCI runtime spec JSON
//	        │   ├── config                    creation options (package containers' JSON)
//	        │   ├── exitstatus, exitedat, exitreason   last exit of its init
//	        │   ├── restartcount, stoppedbyuser        restart policy state
//	        │   └── labels/<key>              value
//	        ├── containernames/<name>         container id (names are unique)
//	        ├── snapshots/<snapshotter>/<key or name>
//	        │   ├── backend            the backend's key: <namespace>/<random>/<key>
//	        │   ├── parent             parent's name in this namespace
//	        │   ├── kind               snapshots.Kind as a decimal
//	        │   ├── createdat, updatedat
//	        │   └── labels/<key>       value
//	        └── leases/<id>
//	            ├── createdat          time
//	            ├── labels/<key>       value
//	            ├── content/<digest>   (empty value)
//	            ├── ingest/<ref>       (empty value)
//	            └── snapshots/<snapshotter>/<key>  (empty value)
//
// # Commit protocol
//
// A blob becomes visible in a namespace in this order: the content store
// writes the ingest file, fsyncs it, renames it into blobs/, fsyncs the
// directory (see package local); then one bbolt transaction records the blob
// in the namespace and attaches it to the request's lease. A crash before the
// rename leaves a resumable ingest; a crash between the rename and the
// transaction leaves a blob no namespace references, which the next garbage
// collection removes (or a retried commit adopts). A per-digest lock is held
// from the rename to the end of the transaction, and garbage collection takes
// the same lock before it deletes a file, so it never removes a blob that is
// being committed. No global lock is held during file I/O.
//
// # Garbage collection
//
// See docs/gc-and-leases.md. Roots are unexpired leases, images, containers, blobs and
// snapshots labelled berth.io/gc.root, and ingests younger than their
// expiry; edges are lease resources, image targets, snapshot parents and
// berth.io/gc.ref.content.* and berth.io/gc.ref.snapshot.* labels. The mark
// phase is package gc. A container references its snapshot.
package metadata
