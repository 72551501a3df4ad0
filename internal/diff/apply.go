package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// WhiteoutMode says how Apply represents the deletions a layer makes.
type WhiteoutMode int

// The whiteout modes. The zero WhiteoutMode is invalid: the caller, which
// knows its snapshotter, must choose.
const (
	// OverlayWhiteouts applies the layer into an empty overlayfs upper
	// directory: a deleted path becomes a character device 0/0 and an opaque
	// directory gets the xattr trusted.overlay.opaque="y".
	OverlayWhiteouts WhiteoutMode = iota + 1
	// DeleteWhiteouts applies the layer onto a full copy of its parent
	// (the native snapshotter): deletions delete.
	DeleteWhiteouts
)

func (m WhiteoutMode) String() string {
	switch m {
	case OverlayWhiteouts:
		return "overlay"
	case DeleteWhiteouts:
		return "delete"
	}
	return fmt.Sprintf("whiteoutmode(%d)", int(m))
}

// ApplyOptions configure Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutMode
	// Lowers are the directories of the parent snapshots, nearest first,
	// for OverlayWhiteouts. The layer is applied into root as if on top of
	// their union, without mounting anything (see the package doc). They
	// are only read. DeleteWhiteouts takes none.
	Lowers []string
	Limits Limits
}

// ApplyResult describes an applied layer.
type ApplyResult struct {
	// DiffID is the sha256 digest of the uncompressed layer tar, all of it,
	// including the padding after the end-of-archive marker.
	DiffID digest.Digest
	// Size is the number of uncompressed bytes.
	Size int64
	// Entries is the number of tar headers, whiteouts included.
	Entries int
}

// Apply applies the layer read from layer, compressed or not, to the
// directory root, and reads layer to its end. Nothing outside root is
// written, whatever the layer contains (see the package doc for the rules).
// When ctx is done Apply stops, once a pending Read of layer returns: layer
// should end its reads with ctx, as the body of an HTTP request made with
// ctx does.
//
// A layer that breaks the rules or a limit fails with an ErrInvalidArgument
// error naming the entry; root is then partly written and the caller
// discards it. Apply does not sync: the caller syncs the snapshot once before
// committing it.
func Apply(ctx context.Context, root string, layer io.Reader, opts ApplyOptions) (ApplyResult, error) {
	lim, err := opts.Limits.withDefaults()
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply layer: %w", err)
	}
	switch opts.Whiteouts {
	case OverlayWhiteouts:
	case DeleteWhiteouts:
		if len(opts.Lowers) > 0 {
			return ApplyResult{}, fmt.Errorf("apply layer: lowers %q with whiteout mode delete: %w", opts.Lowers, errdefs.ErrInvalidArgument)
		}
	default:
		return ApplyResult{}, fmt.Errorf("apply layer: whiteout mode %v: %w", opts.Whiteouts, errdefs.ErrInvalidArgument)
	}
	a, err := newApplier(ctx, root, opts.Whiteouts, opts.Lowers, lim)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply layer: %w", err)
	}
	defer a.close()

	rc, err := decompress(layer, igzipPath())
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply layer: %w", err)
	}
	rd := startReader(rc, lim)
	err = a.applyAll(rd)
	if err == nil {
		err = a.finish()
	} else {
		rc.abort()
	}
	rd.stop()
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = rd.err
	}
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply layer: %w", err)
	}
	// Read what follows the compressed stream, so that a reader verifying
	// the blob's digest sees all of it.
	if _, err := io.Copy(io.Discard, layer); err != nil {
		return ApplyResult{}, fmt.Errorf("apply layer: read layer: %w", err)
	}
	return ApplyResult{DiffID: rd.diffID, Size: rd.size, Entries: rd.entries}, nil
}

// applyAll applies the entries rd reads, in order.
func (a *applier) applyAll(rd *reader) error {
	for {
		var b *batch
		select {
		case b = <-rd.batches:
		case <-a.ctx.Done():
			return a.ctx.Err()
		}
		if b == nil {
			return nil
		}
		for i, it := range b.items {
			if err := a.applyItem(it); err != nil {
				for _, rest := range b.items[i:] {
					rest.discard()
				}
				return err
			}
		}
		rd.release(b)
	}
}

func (a *applier) applyItem(it item) error {
	if it.err != nil {
		return it.err
	}
	if err := a.ctx.Err(); err != nil {
		return err
	}
	var content io.Reader = it.pipe
	if it.pipe == nil {
		content = bytes.NewReader(it.data)
	}
	err := a.apply(it.e, content)
	it.discard()
	if err != nil {
		return fmt.Errorf("entry %s: %w", quote(it.e.raw), err)
	}
	return nil
}

// Whiteout names (OCI image spec, "Representing Changes").
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// kind is what an entry makes.
type kind int

const (
	kindFile kind = iota
	kindDir
	kindSymlink
	kindHardlink
	kindChar
	kindBlock
	kindFifo
	kindWhiteout // deletes name
	kindOpaque   // hides what the parent snapshots hold under the directory name
)

// entry is a tar header checked and reduced to what Apply does with it.
type entry struct {
	kind kind
	raw  string // the name in the layer
	size int64  // content bytes of a regular file
	// name is the cleaned path relative to the root, "" for the root
	// itself. For a whiteout it is the path deleted, for an opaque marker
	// the directory made opaque.
	name string
	// link is a symlink's target, verbatim, or a hardlink's target,
	// cleaned like name.
	link string
	dev  uint64 // devices: unix.Mkdev(major, minor)
	meta
}

// meta is what an entry sets on the file it makes.
type meta struct {
	mode   uint32 // permission bits with setuid, setgid and sticky (07777)
	uid    int
	gid    int
	atime  time.Time
	mtime  time.Time
	xattrs []xattr // sorted by name, never in the overlay namespaces
}

type xattr struct {
	name  string
	value []byte
}

// paxXattr is the prefix of the PAX records that carry xattrs (GNU tar,
// star, Go's archive/tar).
const paxXattr = "SCHILY.xattr."

// droppedXattr reports whether an xattr is never taken from a layer nor
// copied up: the overlayfs namespaces, which would let a layer forge
// whiteouts, opaque directories, redirects or metacopy files (user.overlay.*
// is what overlayfs reads when mounted with userxattr).
func droppedXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay") || strings.HasPrefix(name, "user.overlay")
}

// maxID bounds uids and gids: (uid_t)-1 means "unchanged" to chown(2).
const maxID int64 = 1<<32 - 2

// parseEntry checks hdr against the rules and limits and returns what to do,
// or nil for a header that changes nothing (a PAX global header).
func parseEntry(hdr *tar.Header, lim Limits) (*entry, error) {
	name, err := cleanPath(hdr.Name, lim)
	if err != nil {
		return nil, fmt.Errorf("entry %s: %w", quote(hdr.Name), err)
	}
	dir, base := splitPath(name)
	for _, c := range strings.Split(dir, "/") {
		if strings.HasPrefix(c, whiteoutPrefix) {
			return nil, fmt.Errorf("entry %s: directory %q has the reserved whiteout prefix: %w", quote(hdr.Name), c, errdefs.ErrInvalidArgument)
		}
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		if base == opaqueMarker {
			return &entry{kind: kindOpaque, raw: hdr.Name, name: dir}, nil
		}
		hidden := strings.TrimPrefix(base, whiteoutPrefix)
		if hidden == "." || hidden == ".." || hidden == "" {
			return nil, fmt.Errorf("entry %s: whiteout of %q: %w", quote(hdr.Name), hidden, errdefs.ErrInvalidArgument)
		}
		return &entry{kind: kindWhiteout, raw: hdr.Name, name: joinPath(dir, hidden)}, nil
	}

	e := &entry{raw: hdr.Name, name: name}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		e.kind, e.size = kindFile, hdr.Size
	case tar.TypeDir:
		e.kind = kindDir
	case tar.TypeSymlink:
		e.kind, e.link = kindSymlink, hdr.Linkname
		switch {
		case len(hdr.Linkname) >= lim.MaxPathLen:
			return nil, exceeded(fmt.Sprintf("entry %s: symlink target of %d bytes", quote(hdr.Name), len(hdr.Linkname)), "MaxPathLen", int64(lim.MaxPathLen))
		case hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0:
			return nil, fmt.Errorf("entry %s: symlink target %q: %w", quote(hdr.Name), hdr.Linkname, errdefs.ErrInvalidArgument)
		}
	case tar.TypeLink:
		e.kind = kindHardlink
		if e.link, err = cleanPath(hdr.Linkname, lim); err != nil {
			return nil, fmt.Errorf("entry %s: hardlink target %s: %w", quote(hdr.Name), quote(hdr.Linkname), err)
		}
		if e.link == "" {
			return nil, fmt.Errorf("entry %s: hardlink to the root directory: %w", quote(hdr.Name), errdefs.ErrInvalidArgument)
		}
	case tar.TypeChar, tar.TypeBlock:
		e.kind = kindChar
		if hdr.Typeflag == tar.TypeBlock {
			e.kind = kindBlock
		}
		if hdr.Devmajor < 0 || hdr.Devmajor > 1<<12-1 || hdr.Devminor < 0 || hdr.Devminor > 1<<20-1 {
			return nil, fmt.Errorf("entry %s: device %d:%d out of range: %w", quote(hdr.Name), hdr.Devmajor, hdr.Devminor, errdefs.ErrInvalidArgument)
		}
		e.dev = unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	case tar.TypeFifo:
		e.kind = kindFifo
	case tar.TypeXGlobalHeader:
		return nil, nil
	default:
		return nil, fmt.Errorf("entry %s: unsupported type %q: %w", quote(hdr.Name), hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	if name == "" && e.kind != kindDir {
		return nil, fmt.Errorf("entry %s: replaces the root directory: %w", quote(hdr.Name), errdefs.ErrInvalidArgument)
	}
	if hdr.Uid < 0 || int64(hdr.Uid) > maxID || hdr.Gid < 0 || int64(hdr.Gid) > maxID {
		return nil, fmt.Errorf("entry %s: owner %d:%d out of range: %w", quote(hdr.Name), hdr.Uid, hdr.Gid, errdefs.ErrInvalidArgument)
	}
	e.mode = uint32(hdr.Mode) & 0o7777
	e.uid, e.gid = hdr.Uid, hdr.Gid
	e.mtime, e.atime = hdr.ModTime, hdr.AccessTime
	if e.atime.IsZero() {
		e.atime = e.mtime
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, paxXattr); ok && !droppedXattr(x) {
			e.xattrs = append(e.xattrs, xattr{name: x, value: []byte(v)})
		}
	}
	sort.Slice(e.xattrs, func(i, j int) bool { return e.xattrs[i].name < e.xattrs[j].name })
	return e, nil
}

// cleanPath cleans an entry name or hardlink target relative to the root:
// leading slashes go (absolute names are rooted at the root, as in Docker)
// and "." and ".." are resolved lexically. A name that climbs out of the root
// is rejected, not clamped. "" is the root itself.
func cleanPath(p string, lim Limits) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("name contains NUL: %w", errdefs.ErrInvalidArgument)
	}
	c := path.Clean(strings.TrimLeft(p, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("name climbs out of the root: %w", errdefs.ErrInvalidArgument)
	}
	if c == "." {
		return "", nil
	}
	if len(c) >= lim.MaxPathLen {
		return "", exceeded(fmt.Sprintf("name of %d bytes", len(c)), "MaxPathLen", int64(lim.MaxPathLen))
	}
	for _, part := range strings.Split(c, "/") {
		if len(part) > lim.MaxNameLen {
			return "", exceeded(fmt.Sprintf("path component of %d bytes", len(part)), "MaxNameLen", int64(lim.MaxNameLen))
		}
	}
	return c, nil
}

// splitPath splits a cleaned path into its directory ("" for the root) and
// last component.
func splitPath(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// joinPath joins a cleaned directory path and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// quote quotes a name for an error message, cut to 128 bytes: a hostile
// layer's names can be a megabyte long.
func quote(name string) string {
	const max = 128
	if len(name) <= max {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%q... (%d bytes)", name[:max], len(name))
}
