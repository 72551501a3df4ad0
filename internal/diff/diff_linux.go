package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// WriteDiffFromUpper writes to w an uncompressed OCI layer tar of the changes
// recorded in upper, the upper directory of an overlayfs mount, which must
// not be mounted read-write while it runs: a whiteout (character device 0/0)
// becomes a .wh.NAME entry and an opaque directory is followed by a
// .wh..wh..opq entry. Upper directories written with the overlayfs features
// redirect_dir or metacopy cannot be described by a layer: their xattrs fail
// WriteDiffFromUpper with ErrFailedPrecondition.
//
// Entries are sorted by path, each directory before what it holds. Mtimes
// are cut to whole seconds, atimes and ctimes left out, owners numeric, so
// the same tree gives the same tar. Sockets are left out; symlinks, devices
// and fifos carry no xattrs (Apply sets none on them).
func WriteDiffFromUpper(ctx context.Context, w io.Writer, upper string) error {
	d := newDiffer(ctx, w)
	d.overlay = true
	fd, err := openTree(upper)
	if err != nil {
		return fmt.Errorf("write diff of %q: %w", upper, err)
	}
	defer unix.Close(fd)
	// The root's opaque xattr is not read: overlayfs ignores it.
	if err := d.upper(fd, ""); err != nil {
		return fmt.Errorf("write diff of %q: %w", upper, err)
	}
	if err := d.tw.Close(); err != nil {
		return fmt.Errorf("write diff of %q: %w", upper, err)
	}
	return nil
}

// WriteDiff writes to w an uncompressed OCI layer tar that turns the tree
// lower (a parent snapshot) into the tree upper (a native snapshot, made from
// a copy of it), by walking both: what only upper holds or holds changed is added, what only
// lower holds is whited out. A regular file counts as changed when its type,
// mode, owner, size, mtime or xattrs differ, or, when its mtime has no
// fraction of a second (so a copy may have kept it while the content
// changed), when its content differs. Neither tree may change while it runs.
// The tar is written as by WriteDiffFromUpper.
func WriteDiff(ctx context.Context, w io.Writer, lower, upper string) error {
	d := newDiffer(ctx, w)
	lfd, err := openTree(lower)
	if err != nil {
		return fmt.Errorf("write diff of %q against %q: %w", upper, lower, err)
	}
	defer unix.Close(lfd)
	ufd, err := openTree(upper)
	if err != nil {
		return fmt.Errorf("write diff of %q against %q: %w", upper, lower, err)
	}
	defer unix.Close(ufd)
	if err := d.compare(lfd, ufd, ""); err != nil {
		return fmt.Errorf("write diff of %q against %q: %w", upper, lower, err)
	}
	if err := d.tw.Close(); err != nil {
		return fmt.Errorf("write diff of %q against %q: %w", upper, lower, err)
	}
	return nil
}

// differ writes the entries of a diff.
type differ struct {
	ctx     context.Context
	tw      *tar.Writer
	buf     []byte
	overlay bool // the tree is an overlayfs upper directory
	// links maps the inodes of regular files written with more than one
	// link to the path written, so that the others become hardlinks.
	links map[[2]uint64]string
}

func newDiffer(ctx context.Context, w io.Writer) *differ {
	return &differ{ctx: ctx, tw: tar.NewWriter(w), buf: make([]byte, 1<<20), links: map[[2]uint64]string{}}
}

// upper writes what the directory fd at p of an upper directory holds.
func (d *differ) upper(fd int, p string) error {
	files, err := readDir(fd)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", p, err)
	}
	for _, f := range files {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if f.isWhiteout() {
			if err := d.whiteout(p, whiteoutPrefix+f.name); err != nil {
				return err
			}
			continue
		}
		if err := d.add(fd, p, f, d.upper); err != nil {
			return err
		}
	}
	return nil
}

// compare writes the differences between the directories lfd and ufd at p.
func (d *differ) compare(lfd, ufd int, p string) error {
	lfiles, err := readDir(lfd)
	if err != nil {
		return fmt.Errorf("read lower directory %q: %w", p, err)
	}
	ufiles, err := readDir(ufd)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", p, err)
	}
	all := func(fd int, p string) error { return d.all(fd, p) }
	i, j := 0, 0
	for i < len(lfiles) || j < len(ufiles) {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		switch {
		case j == len(ufiles) || i < len(lfiles) && lfiles[i].name < ufiles[j].name:
			if err := d.whiteout(p, whiteoutPrefix+lfiles[i].name); err != nil {
				return err
			}
			i++
		case i == len(lfiles) || ufiles[j].name < lfiles[i].name:
			if err := d.add(ufd, p, ufiles[j], all); err != nil {
				return err
			}
			j++
		default:
			l, u := lfiles[i], ufiles[j]
			i, j = i+1, j+1
			if l.typ() == unix.S_IFDIR && u.typ() == unix.S_IFDIR {
				if err := d.compareDirs(lfd, ufd, p, l, u); err != nil {
					return err
				}
				continue
			}
			if u.typ() == unix.S_IFDIR {
				err = d.add(ufd, p, u, all)
			} else {
				var same bool
				if same, err = d.same(lfd, ufd, p, l, u); err == nil && !same {
					err = d.add(ufd, p, u, nil)
				}
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// compareDirs writes the directory u at p if its metadata differs from that
// of l, and then the differences between them.
func (d *differ) compareDirs(lfd, ufd int, p string, l, u *fileInfo) error {
	name := joinPath(p, u.name)
	lsub, err := openDir(lfd, l.name)
	if err != nil {
		return fmt.Errorf("open lower directory %q: %w", name, err)
	}
	defer unix.Close(lsub)
	usub, err := openDir(ufd, u.name)
	if err != nil {
		return fmt.Errorf("open directory %q: %w", name, err)
	}
	defer unix.Close(usub)
	lx, err := fdXattrs(lsub)
	if err != nil {
		return fmt.Errorf("read xattrs of lower directory %q: %w", name, err)
	}
	ux, err := fdXattrs(usub)
	if err != nil {
		return fmt.Errorf("read xattrs of directory %q: %w", name, err)
	}
	if !sameStat(&l.st, &u.st) || !sameXattrs(lx, ux) {
		if err := d.header(name, u, ux); err != nil {
			return err
		}
	}
	return d.compare(lsub, usub, name)
}

// same reports whether the non-directories l and u at p are the same file
// for a layer.
func (d *differ) same(lfd, ufd int, p string, l, u *fileInfo) (bool, error) {
	if !sameStat(&l.st, &u.st) || l.st.Size != u.st.Size || l.link != u.link || l.st.Rdev != u.st.Rdev {
		return false, nil
	}
	if u.typ() != unix.S_IFREG {
		return true, nil
	}
	name := joinPath(p, u.name)
	lf, err := openFile(lfd, l.name)
	if err != nil {
		return false, fmt.Errorf("open lower file %q: %w", name, err)
	}
	defer lf.Close()
	uf, err := openFile(ufd, u.name)
	if err != nil {
		return false, fmt.Errorf("open file %q: %w", name, err)
	}
	defer uf.Close()
	lx, err := fdXattrs(int(lf.Fd()))
	if err != nil {
		return false, fmt.Errorf("read xattrs of lower file %q: %w", name, err)
	}
	ux, err := fdXattrs(int(uf.Fd()))
	if err != nil {
		return false, fmt.Errorf("read xattrs of file %q: %w", name, err)
	}
	if !sameXattrs(lx, ux) {
		return false, nil
	}
	if u.st.Mtim.Nsec != 0 {
		return true, nil
	}
	return sameContent(lf, uf)
}

func sameStat(l, u *unix.Stat_t) bool {
	return l.Mode == u.Mode && l.Uid == u.Uid && l.Gid == u.Gid && l.Mtim == u.Mtim
}

func sameXattrs(a, b []xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || !bytes.Equal(a[i].value, b[i].value) {
			return false
		}
	}
	return true
}

func sameContent(a, b io.Reader) (bool, error) {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, erra := io.ReadFull(a, ba)
		nb, errb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if erra == io.EOF || erra == io.ErrUnexpectedEOF {
			return errb == io.EOF || errb == io.ErrUnexpectedEOF, nil
		}
		if erra != nil {
			return false, erra
		}
		if errb != nil {
			return false, errb
		}
	}
}

// all writes what the directory fd at p holds.
func (d *differ) all(fd int, p string) error {
	files, err := readDir(fd)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", p, err)
	}
	for _, f := range files {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if err := d.add(fd, p, f, d.all); err != nil {
			return err
		}
	}
	return nil
}

// add writes f, held by the directory fd at p; for a directory it then
// calls below, if not nil, on it.
func (d *differ) add(fd int, p string, f *fileInfo, below func(fd int, p string) error) error {
	name := joinPath(p, f.name)
	switch f.typ() {
	case unix.S_IFSOCK:
		return nil
	case unix.S_IFDIR:
		sub, err := openDir(fd, f.name)
		if err != nil {
			return fmt.Errorf("open directory %q: %w", name, err)
		}
		defer unix.Close(sub)
		xs, err := d.xattrs(sub, name)
		if err != nil {
			return err
		}
		if err := d.header(name, f, xs); err != nil {
			return err
		}
		if d.overlay && isOpaque(sub) {
			if err := d.whiteout(name, opaqueMarker); err != nil {
				return err
			}
		}
		if below == nil {
			return nil
		}
		return below(sub, name)
	case unix.S_IFREG:
		return d.file(fd, name, f)
	default:
		return d.header(name, f, nil)
	}
}

// file writes the regular file f at name, or a hardlink to the path of its
// inode written before.
func (d *differ) file(dirfd int, name string, f *fileInfo) error {
	ino := [2]uint64{uint64(f.st.Dev), uint64(f.st.Ino)}
	if f.st.Nlink > 1 {
		if first, ok := d.links[ino]; ok {
			return d.write(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: first, Format: tar.FormatPAX})
		}
	}
	r, err := openFile(dirfd, f.name)
	if err != nil {
		return fmt.Errorf("open file %q: %w", name, err)
	}
	defer r.Close()
	xs, err := d.xattrs(int(r.Fd()), name)
	if err != nil {
		return err
	}
	if err := d.header(name, f, xs); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(d.tw, struct{ io.Reader }{r}, d.buf); err != nil {
		return fmt.Errorf("write content of %q: %w", name, err)
	}
	if f.st.Nlink > 1 {
		d.links[ino] = name
	}
	return nil
}

// xattrs returns the xattrs of fd, and fails on those of the overlayfs
// features a layer cannot express.
func (d *differ) xattrs(fd int, name string) ([]xattr, error) {
	for _, x := range []string{"trusted.overlay.redirect", "trusted.overlay.metacopy"} {
		if _, err := unix.Fgetxattr(fd, x, nil); err == nil {
			return nil, fmt.Errorf("%q has xattr %s: overlayfs redirect_dir and metacopy are not supported: %w", name, x, errdefs.ErrFailedPrecondition)
		}
	}
	xs, err := fdXattrs(fd)
	if err != nil {
		return nil, fmt.Errorf("read xattrs of %q: %w", name, err)
	}
	return xs, nil
}

// header writes the header of f at name.
func (d *differ) header(name string, f *fileInfo, xs []xattr) error {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(f.st.Mode & 0o7777),
		Uid:     int(f.st.Uid),
		Gid:     int(f.st.Gid),
		ModTime: time.Unix(int64(f.st.Mtim.Sec), 0),
		Format:  tar.FormatPAX,
	}
	switch f.typ() {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, f.st.Size
	case unix.S_IFLNK:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, f.link
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if f.typ() == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(uint64(f.st.Rdev))), int64(unix.Minor(uint64(f.st.Rdev)))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	}
	for _, x := range xs {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattr+x.name] = string(x.value)
	}
	return d.write(hdr)
}

// whiteout writes the whiteout entry base (.wh.NAME or .wh..wh..opq) in the
// directory p.
func (d *differ) whiteout(p, base string) error {
	return d.write(&tar.Header{Typeflag: tar.TypeReg, Name: joinPath(p, base), ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
}

func (d *differ) write(hdr *tar.Header) error {
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write entry %q: %w", hdr.Name, err)
	}
	return nil
}

// fileInfo is a directory entry of a tree being diffed.
type fileInfo struct {
	name string
	st   unix.Stat_t
	link string // a symlink's target
}

func (f *fileInfo) typ() uint32 { return f.st.Mode & unix.S_IFMT }

func (f *fileInfo) isWhiteout() bool { return f.typ() == unix.S_IFCHR && f.st.Rdev == 0 }

// openTree opens the root of a tree to diff.
func openTree(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open directory %q: %w", p, err)
	}
	return fd, nil
}

func openDir(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func openFile(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// readDir lists the directory fd, sorted by name, with each entry's lstat
// and, for symlinks, target.
func readDir(fd int) ([]*fileInfo, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	names, err := readDirNames(dup)
	unix.Close(dup)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	files := make([]*fileInfo, 0, len(names))
	for _, n := range names {
		f := &fileInfo{name: n}
		if err := unix.Fstatat(fd, n, &f.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, fmt.Errorf("stat %q: %w", n, err)
		}
		if f.typ() == unix.S_IFLNK {
			if f.link, err = readlinkat(fd, n); err != nil {
				return nil, err
			}
		}
		files = append(files, f)
	}
	return files, nil
}
