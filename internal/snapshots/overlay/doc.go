// Package overlay is the default snapshots.Snapshotter: each snapshot stores
// only its own changes, and mounts stack them with overlayfs. It owns the
// overlay-specific parts (directory contents and mount options); records,
// commits, removal and cleanup are package storage's.
//
// It must not mount snapshots itself (only Supported mounts, to probe the
// kernel), and it needs root privileges for its mounts to work.
//
// # On-disk layout
//
//	ROOT/                    as in package storage
//	  metadata.db
//	  snapshots/<id>/
//	    fs/                  the upper dir of an active snapshot; the layer
//	                         of a committed one (with overlayfs whiteouts)
//	    work/                overlayfs work dir; active snapshots only
//
// # Mounts
//
//	Prepare, no parent       bind fs, rw
//	Prepare on a parent      overlay: upperdir=fs, workdir=work,
//	                         lowerdir=parent chain's fs dirs, nearest first
//	View, no parent          bind fs (empty), ro
//	View of a one-layer      bind the parent's fs, ro
//	parent
//	View of a deeper parent  overlay with lowerdirs only (read-only), ro
//
// Config.MountOptions are added to every overlay mount. Lowerdir lists
// longer than the kernel's one-page limit are handled by mount.All.
//
// ROOT must be on a filesystem that can hold overlay upper dirs (ext4, xfs,
// btrfs, tmpfs; not overlayfs itself): Supported checks that, and that the
// path has no ',' or ':', which overlay options cannot carry.
package overlay
