// Package diff applies OCI image layers to directories and computes layers
// from changed directories. It is berth's security boundary against hostile
// images: Apply writes nothing outside the directory it is given, whatever
// the layer holds.
//
// It owns the layer formats (tar, gzip, zstd, whiteouts) and the rules of
// writing a layer safely. It does not mount, sync, verify blob digests or
// know snapshots: the caller (the pull pipeline with a snapshotter) passes
// directories and a blob reader, syncs the snapshot once after Apply (for
// example syncfs(2) on a descriptor of it) and compares ApplyResult.DiffID
// with the image config. It is Linux-only.
//
// # Words
//
// A layer is a tar stream, possibly compressed; its DiffID is the sha256 of
// the uncompressed tar. An entry is one tar header and its content. The root
// is the directory Apply writes: a full copy of the parent snapshot
// (DeleteWhiteouts, native snapshotter) or an empty overlayfs upper
// directory (OverlayWhiteouts). Lowers are the directories of the parent
// snapshots, nearest first.
//
// # Whiteouts
//
// In a layer, an entry DIR/.wh.NAME deletes DIR/NAME and an entry
// DIR/.wh..wh..opq makes DIR opaque: what the parent snapshots hold under
// DIR is hidden, what this layer puts there stays, whatever the order of the
// entries. With DeleteWhiteouts, Apply deletes. With OverlayWhiteouts it
// writes what overlayfs reads: a character device 0/0 at DIR/NAME (only when
// a lower holds NAME; what the root holds there is removed) and the xattr
// trusted.overlay.opaque="y" on DIR. overlayfs ignores that xattr on the root
// of a layer, so an opaque marker at the root becomes a whiteout for each
// name the lowers' roots hold. A directory that replaces, in the root,
// something that is not a directory is made opaque too, since it starts
// empty. A character device 0/0 in a layer is a whiteout for overlayfs;
// WriteDiffFromUpper writes every one as .wh.NAME. Names under a .wh.
// directory are invalid.
//
// # The layered view
//
// With OverlayWhiteouts, Apply writes the layer into the root as if on top of
// the union of the lowers, without mounting anything: it resolves paths in a
// view of root and Lowers stacked like overlayfs stacks them. Looking a name
// up in a directory of the view asks each layer in turn, root first: the
// nearest layer holding something that is not a directory gives it; a
// directory merges with the directories at the same path in farther layers,
// down to the first layer holding a whiteout or a non-directory there, or
// holding it as an opaque directory.
//
// The view decides three things. The parent directory of an entry: when it
// is not in the root yet, it is copied up from the nearest lower holding it
// (owner, mode, xattrs, times), each missing parent in turn, so that the
// merged directory keeps its metadata. A hardlink whose target only a lower
// holds: the target is copied up into the root (content, owner, mode, xattrs,
// times), as overlayfs does on link(2), and linked there. A whiteout: it is
// written only when a lower holds the name it deletes. With DeleteWhiteouts
// the view is the root alone.
//
// # Safety rules
//
// A layer is hostile; the root, the lowers and the process are not.
//
//   - Entry names and hardlink targets are cleaned lexically relative to the
//     root: leading slashes are dropped (absolute names are rooted at the
//     root, as in Docker), "." and ".." resolved. A name that climbs out of
//     the root ("../x", "a/../../x", "/../x") is rejected, not clamped. A
//     name with NUL is rejected. Symlink targets are kept verbatim.
//   - Symlinks in the path of an entry's parent are followed as if the root
//     were "/": an absolute target starts at the root, ".." of the root is the
//     root. Only the package's own resolver follows them, one component at a
//     time, in the layered view. The kernel never follows a symlink for
//     Apply: multi-component paths are opened with openat2(2) and
//     RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, single components with O_NOFOLLOW,
//     and the last component of every create, chown, chmod, utimes and xattr
//     operation is acted on relative to its parent's descriptor without
//     following it (O_CREAT|O_EXCL|O_NOFOLLOW, mkdirat, symlinkat, mknodat,
//     linkat without AT_SYMLINK_FOLLOW, fchownat and utimensat with
//     AT_SYMLINK_NOFOLLOW, fchmodat2 with AT_SYMLINK_NOFOLLOW, and fchown,
//     fchmod, fsetxattr, utimensat on descriptors Apply opened). Nothing goes
//     through /proc. The one exception: on kernels without fchmodat2
//     (before 6.6) a device or fifo gets its mode with fchmodat right after
//     mknodat made it, which is safe because nothing else writes the root.
//   - A symlink followed more than 40 times, or a resolved path as long as
//     MaxPathLen, fails the entry. A missing directory is created only on the
//     path as named, never at the target of a dangling symlink.
//   - An entry replacing something of another type removes it first (a
//     directory over a directory merges), removing a directory tree through
//     descriptors without following symlinks. A hardlink's target must be in
//     the view; a whiteout deletes only inside the root.
//   - Devices and fifos are created, never opened. Xattrs are set on regular
//     files and directories only; trusted.overlay.* and user.overlay.* from a
//     layer are dropped, as they would let it forge whiteouts, opaque
//     directories or redirects; security.capability is kept.
//   - Directory modes and times are set once all entries are applied, so
//     that mtimes stick; owners, xattrs and everything about other files at
//     once, in the order that keeps setuid bits and file capabilities
//     (content, chown, chmod, xattrs, times).
//   - The decompressed stream is counted and hashed as it is read, and the
//     limits are checked as each entry is read: a decompression bomb stops
//     at MaxBytes.
//
// # Limits
//
// Limits bound the decompressed bytes (64 GiB by default; the content of
// sparse files counts expanded), the entries (4 Mi), the length of a path
// component (255) and of a path (4096, counting a terminating NUL as PATH_MAX
// does), which also bounds the depth of the trees a layer can build.
// Exceeding one fails Apply with an ErrInvalidArgument error that names the
// limit. Any other defect of a layer (bad name, bad whiteout, truncated or
// corrupt stream, unsupported entry type) is an ErrInvalidArgument error
// that names the entry; an error reading the blob keeps its own kind. When
// Apply fails, the root is partly written and the caller discards it.
//
// # Speed
//
// Apply reads the layer (decompression, hashing, tar parsing, buffering of
// small files) in one goroutine and applies it in another, in order, handing
// entries over in batches: the only parallelism, and a safe one, since every
// file system call stays in the applying goroutine. Gzip is decoded by igzip
// in a separate process when installed (see Decompress). Nothing is synced.
package diff
