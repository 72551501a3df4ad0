// Package storage keeps the snapshot records and snapshot directories that
// the overlay and native snapshotters share: a bbolt file of records and one
// directory per snapshot, created, committed, removed and cleaned up in a
// crash-safe order. It implements every Snapshotter method that does not
// depend on how files are layered (Commit, Remove, Stat, Update, Usage, Walk,
// Cleanup); the snapshotters decide what goes into a new directory and which
// mounts show it.
//
// It must not mount anything and knows nothing about overlayfs. It is used
// by one process at a time: Open fails if another holds the database.
//
// # On-disk layout
//
//	ROOT/                          0700 when Open creates it
//	  metadata.db                  bbolt, the schema below
//	  snapshots/                   0700
//	    <id>/                      0700, one per record; id is decimal
//	      fs/                      0755, the snapshot's files
//	      ...                      whatever the snapshotter adds (overlay: work/)
//	    new-<random>/              a directory being filled by Create
//	    rm-<id>/                   a directory being deleted by Remove
//
// IDs come from a bbolt sequence and are never reused, so a directory whose
// ID has no record is garbage: Cleanup deletes it, like new-* and rm-*.
//
// # Schema
//
// Keys are bytes; times are time.Time MarshalBinary; numbers are varints.
//
//	v1
//	├── snapshots                  sequence: the last ID handed out
//	│   └── <key or name>
//	│       ├── id                 uvarint
//	│       ├── kind               one byte, snapshots.Kind
//	│       ├── parent             name of the parent; absent without one
//	│       ├── createdat          time
//	│       ├── updatedat          time
//	│       ├── size, inodes       varints; committed snapshots only
//	│       └── labels/<key>       value
//	└── parents
//	    └── <parent id><child id>  8-byte big-endian each; empty value
//
// # Crash safety
//
// Create fills new-<random> with no lock but a shared one against Cleanup,
// then, in one bbolt transaction, checks the key and parent again, writes the
// record and renames the directory to <id>: a crash leaves either no record
// (and a directory Cleanup deletes) or a complete snapshot. Commit syncs the
// filesystem holding the directory (syncfs(2)) before the transaction that
// turns the record into a committed one. Remove deletes the record first,
// then renames <id> to rm-<id> and deletes that: a crash never leaves a
// record pointing at a missing or half-deleted directory. Only committed
// snapshots are durable: after a crash an active snapshot may miss files
// written to it.
//
// # Locking
//
// bbolt serializes write transactions; no file I/O runs inside one except a
// rename. A sync.RWMutex, held shared by Create and Remove while they own a
// directory not named by a record and exclusively by Cleanup, keeps Cleanup
// from deleting a directory in flight.
package storage
