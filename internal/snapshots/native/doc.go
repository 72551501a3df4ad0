// Package native is the plain-copy snapshots.Snapshotter, for filesystems
// that cannot hold overlayfs upper dirs (overlayfs itself, some network
// filesystems): Prepare copies the whole parent tree into the new snapshot,
// and every mount is a bind mount. It owns that copy and the choice of
// mounts; records, commits, removal and cleanup are package storage's.
//
// It must not mount snapshots itself.
//
// # On-disk layout
//
//	ROOT/                    as in package storage
//	  metadata.db
//	  snapshots/<id>/
//	    fs/                  the snapshot's whole tree: the parent's copy
//	                         plus the changes; empty for a view
//
// # Mounts
//
//	Prepare                  bind fs, rw
//	View, no parent          bind fs (empty), ro
//	View on a parent         bind the parent's fs, ro (no copy)
//
// # Copying
//
// The copy keeps file types (regular, directory, symlink, character and
// block devices, fifos, sockets), modes including setuid, setgid and sticky
// bits, owners, extended attributes (security.capability and ACLs too),
// hard links within the tree and access and modification times. File data is
// copied with copy_file_range(2) (io.Copy between files), which the kernel
// turns into a reflink on filesystems that share extents (btrfs, xfs with
// reflink=1) and into an in-kernel copy elsewhere. Usage therefore counts a
// snapshot's full copy, not just its changes.
package native
