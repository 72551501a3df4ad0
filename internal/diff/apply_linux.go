package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// maxTreeDepth bounds the recursion of removals: a tree Apply builds is at
// most MaxPathLen/2 deep, and every level holds a file descriptor.
const maxTreeDepth = 4096

// applier applies the entries of one layer to a root directory. Its methods
// that resolve paths in the layered view are in resolve_linux.go.
type applier struct {
	ctx     context.Context
	lim     Limits
	overlay bool
	// fds are the layers of the view: fds[0] is the root, the only one
	// written, and fds[1:] the lowers, nearest first.
	fds  []int
	root bool // running as root: directories made for parents are chowned to 0:0
	buf  []byte

	seq int // number of the entry being applied
	// dirs holds the mode and times of directories, by path, set by
	// finish once nothing more is created in them.
	dirs map[string]pendingDir
	// removed is the seq of the last removal of each path removed.
	removed map[string]int
	// unpacked holds, for DeleteWhiteouts, the paths this layer made and
	// their parents: what an opaque marker must keep.
	unpacked map[string]struct{}
	// last is the parent directory of the previous entry, which is usually
	// the next one's too.
	last cachedDir
}

type pendingDir struct {
	mode         uint32
	atime, mtime time.Time
	seq          int
}

// cachedDir is a parent directory opened by parent. Its fd stays open until
// the next call to parent, even when stale.
type cachedDir struct {
	dir, canon string
	fd         int
	stale      bool // something was removed since it was resolved
}

func newApplier(ctx context.Context, root string, mode WhiteoutMode, lowers []string, lim Limits) (*applier, error) {
	a := &applier{
		ctx:      ctx,
		lim:      lim,
		overlay:  mode == OverlayWhiteouts,
		root:     os.Geteuid() == 0,
		buf:      make([]byte, 1<<20),
		dirs:     make(map[string]pendingDir),
		removed:  make(map[string]int),
		unpacked: make(map[string]struct{}),
		last:     cachedDir{fd: -1},
	}
	for _, d := range append([]string{root}, lowers...) {
		fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("open directory %q: %w", d, err)
		}
		a.fds = append(a.fds, fd)
	}
	return a, nil
}

func (a *applier) close() {
	for _, fd := range a.fds {
		unix.Close(fd)
	}
	if a.last.fd >= 0 {
		unix.Close(a.last.fd)
	}
}

// apply applies one entry; r is its content.
func (a *applier) apply(e *entry, r io.Reader) error {
	a.seq++
	switch e.kind {
	case kindWhiteout:
		return a.whiteout(e.name)
	case kindOpaque:
		return a.opaque(e.name)
	}
	if e.name == "" {
		return a.dirMeta(a.fds[0], "", &e.meta, false)
	}
	dir, base := splitPath(e.name)
	pfd, canonDir, err := a.parent(dir)
	if err != nil {
		return err
	}
	canon := joinPath(canonDir, base)
	switch e.kind {
	case kindFile:
		err = a.createFile(pfd, base, canon, &e.meta, r)
	case kindDir:
		err = a.createDir(pfd, base, canon, &e.meta)
	case kindSymlink:
		err = a.createSymlink(pfd, base, canon, e.link, &e.meta)
	case kindHardlink:
		err = a.createHardlink(pfd, base, canon, e.link)
	case kindChar:
		err = a.createNode(pfd, base, canon, unix.S_IFCHR, e.dev, &e.meta)
	case kindBlock:
		err = a.createNode(pfd, base, canon, unix.S_IFBLK, e.dev, &e.meta)
	case kindFifo:
		err = a.createNode(pfd, base, canon, unix.S_IFIFO, 0, &e.meta)
	}
	if err != nil {
		return err
	}
	if !a.overlay {
		a.markUnpacked(canon)
	}
	return nil
}

// parent returns a descriptor of the directory dir in the root layer,
// creating it and its parents as needed, and dir's path with symlinks
// resolved. The descriptor stays valid until the next call.
func (a *applier) parent(dir string) (int, string, error) {
	if a.last.fd >= 0 && !a.last.stale && a.last.dir == dir {
		return a.last.fd, a.last.canon, nil
	}
	if a.last.fd >= 0 {
		unix.Close(a.last.fd)
		a.last.fd = -1
	}
	fd, canon, err := a.openParent(dir)
	if err != nil {
		return -1, "", err
	}
	a.last = cachedDir{dir: dir, canon: canon, fd: fd}
	return fd, canon, nil
}

// replace runs mk, which creates base in pfd, and when base exists already
// removes it and runs mk again.
func (a *applier) replace(pfd int, base, canon string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		if err := a.remove(pfd, base, canon); err != nil {
			return err
		}
		err = mk()
	}
	return err
}

func (a *applier) createFile(pfd int, base, canon string, m *meta, content io.Reader) error {
	var fd int
	err := a.replace(pfd, base, canon, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	defer unix.Close(fd)
	if err := a.copyContent(fd, content); err != nil {
		return fmt.Errorf("write content: %w", err)
	}
	// chown clears setuid, setgid and security.capability: it goes first.
	if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
		return fmt.Errorf("chown %d:%d: %w", m.uid, m.gid, err)
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return fmt.Errorf("chmod %#o: %w", m.mode, err)
	}
	if err := a.setXattrs(fd, canon, m.xattrs); err != nil {
		return err
	}
	if err := futimens(fd, m.atime, m.mtime); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// copyContent writes r to fd: straight from its bytes when r is a
// bytes.Reader (buffered content) or through the applier's buffer.
func (a *applier) copyContent(fd int, r io.Reader) error {
	_, err := io.CopyBuffer(fdWriter{ctx: a.ctx, fd: fd}, r, a.buf)
	return err
}

// fdWriter writes to a file descriptor, and stops when ctx is done.
type fdWriter struct {
	ctx context.Context
	fd  int
}

func (w fdWriter) Write(b []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(b) {
		m, err := unix.Write(w.fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

func (a *applier) createDir(pfd int, base, canon string, m *meta) error {
	opaque := false
	err := unix.Mkdirat(pfd, base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// A directory replacing anything else starts empty: in an
			// upper directory it must hide what the lowers hold.
			if err := a.remove(pfd, base, canon); err != nil {
				return err
			}
			err = unix.Mkdirat(pfd, base, 0o700)
			opaque = a.overlay
		}
	}
	if err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	return a.dirMeta(fd, canon, m, opaque)
}

// dirMeta sets owner and xattrs of the directory fd at canon, and leaves its
// mode and times to finish.
func (a *applier) dirMeta(fd int, canon string, m *meta, opaque bool) error {
	if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
		return fmt.Errorf("chown %d:%d: %w", m.uid, m.gid, err)
	}
	if err := a.setXattrs(fd, canon, m.xattrs); err != nil {
		return err
	}
	if opaque {
		if err := setOpaque(fd); err != nil {
			return err
		}
	}
	a.dirs[canon] = pendingDir{mode: m.mode, atime: m.atime, mtime: m.mtime, seq: a.seq}
	return nil
}

func (a *applier) createSymlink(pfd int, base, canon, target string, m *meta) error {
	if err := a.replace(pfd, base, canon, func() error { return unix.Symlinkat(target, pfd, base) }); err != nil {
		return fmt.Errorf("create symlink: %w", err)
	}
	if err := unix.Fchownat(pfd, base, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %d:%d: %w", m.uid, m.gid, err)
	}
	return utimesNoFollow(pfd, base, m)
}

// createNode makes a device or fifo. It is never opened: opening a device
// node reaches the host's driver.
func (a *applier) createNode(pfd int, base, canon string, typ uint32, dev uint64, m *meta) error {
	if err := a.replace(pfd, base, canon, func() error { return unix.Mknodat(pfd, base, typ|0o600, int(dev)) }); err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	if err := unix.Fchownat(pfd, base, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %d:%d: %w", m.uid, m.gid, err)
	}
	err := unix.Fchmodat(pfd, base, m.mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.EOPNOTSUPP {
		// No fchmodat2 (Linux < 6.6). base is the node mknodat made just
		// now, and nothing else writes the root, so there is no symlink
		// to follow.
		err = unix.Fchmodat(pfd, base, m.mode, 0)
	}
	if err != nil {
		return fmt.Errorf("chmod %#o: %w", m.mode, err)
	}
	return utimesNoFollow(pfd, base, m)
}

func (a *applier) createHardlink(pfd int, base, canon, target string) error {
	tfd, tbase, tcanon, err := a.linkTarget(target)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if tcanon == canon {
		return nil // a file linked to itself
	}
	if err := a.replace(pfd, base, canon, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) }); err != nil {
		return fmt.Errorf("link to %q: %w", target, err)
	}
	return nil
}

// whiteout deletes name: from the root with DeleteWhiteouts; with
// OverlayWhiteouts it removes what the root holds at name and, when a lower
// holds name, writes a whiteout there.
func (a *applier) whiteout(name string) error {
	dir, base := splitPath(name)
	w, err := a.resolve(dir, false)
	if errors.Is(err, errNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	defer w.close()
	canon := joinPath(w.canon(), base)
	if !a.overlay {
		return a.remove(w.fds[0], base, canon)
	}
	inRoot := false
	if w.from[0] == 0 {
		var st unix.Stat_t
		inRoot = unix.Fstatat(w.fds[0], base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	}
	from, fds := w.from, w.fds
	if from[0] == 0 {
		from, fds = from[1:], fds[1:]
	}
	lower, err := a.lookupChild(from, fds, base, false)
	if err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	if !inRoot && !lower.found {
		return nil
	}
	pfd, err := a.materialize(w)
	if err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	defer unix.Close(pfd)
	if inRoot {
		if err := a.remove(pfd, base, canon); err != nil {
			return err
		}
	}
	if lower.found {
		if err := unix.Mknodat(pfd, base, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("create whiteout %q: %w", canon, err)
		}
	}
	return nil
}

// opaque hides what the lowers hold under the directory name: with
// OverlayWhiteouts it marks the directory opaque; with DeleteWhiteouts it
// deletes what this layer did not make there.
func (a *applier) opaque(name string) error {
	w, err := a.resolve(name, false)
	if errors.Is(err, errNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opaque directory: %w", err)
	}
	defer w.close()
	fd, err := a.materialize(w)
	if err != nil {
		return fmt.Errorf("opaque directory: %w", err)
	}
	defer unix.Close(fd)
	switch {
	case !a.overlay:
		a.last.stale = true
		return a.removeExcept(fd, w.canon(), 0)
	case len(w.levels) == 0:
		return a.whiteoutLowerRoots(fd)
	default:
		return setOpaque(fd)
	}
}

// whiteoutLowerRoots hides what the lowers' roots hold, for an opaque marker
// at the root: overlayfs ignores the opaque xattr on the root of a layer, so
// each name a lower's root holds, and the root (fd) does not, gets a
// whiteout.
func (a *applier) whiteoutLowerRoots(fd int) error {
	for _, lower := range a.fds[1:] {
		dup, err := unix.Openat(lower, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open lower root: %w", err)
		}
		names, err := readDirNames(dup)
		unix.Close(dup)
		if err != nil {
			return fmt.Errorf("read lower root: %w", err)
		}
		for _, n := range names {
			err := unix.Mknodat(fd, n, unix.S_IFCHR, 0)
			if err != nil && err != unix.EEXIST {
				return fmt.Errorf("create whiteout %q: %w", n, err)
			}
		}
	}
	return nil
}

// removeExcept removes what the directory fd at canon holds that this layer
// did not make.
func (a *applier) removeExcept(fd int, canon string, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("opaque directory %q: deeper than %d levels: %w", canon, maxTreeDepth, errdefs.ErrInvalidArgument)
	}
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", canon, err)
	}
	for _, n := range names {
		p := joinPath(canon, n)
		if _, ok := a.unpacked[p]; !ok {
			if err := a.remove(fd, n, p); err != nil {
				return err
			}
			continue
		}
		child, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOTDIR || err == unix.ELOOP {
			continue
		}
		if err != nil {
			return fmt.Errorf("open directory %q: %w", p, err)
		}
		err = a.removeExcept(child, p, depth+1)
		unix.Close(child)
		if err != nil {
			return err
		}
	}
	return nil
}

// markUnpacked records that this layer made canon, and so its parents.
func (a *applier) markUnpacked(canon string) {
	for p := canon; p != ""; p, _ = splitPath(p) {
		if _, ok := a.unpacked[p]; ok {
			return
		}
		a.unpacked[p] = struct{}{}
	}
}

// remove removes base, at canon, from pfd, recursively; a missing base is
// not an error.
func (a *applier) remove(pfd int, base, canon string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == unix.EISDIR {
		err = removeTree(pfd, base, 0)
	}
	if err != nil && err != unix.ENOENT {
		return fmt.Errorf("remove %q: %w", canon, err)
	}
	a.removed[canon] = a.seq
	a.last.stale = true
	return nil
}

func removeTree(pfd int, name string, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("deeper than %d levels: %w", maxTreeDepth, errdefs.ErrInvalidArgument)
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readDirNames(fd)
	for _, n := range names {
		if err != nil {
			break
		}
		err = unix.Unlinkat(fd, n, 0)
		if err == unix.EISDIR {
			err = removeTree(fd, n, depth+1)
		}
		if err == unix.ENOENT {
			err = nil
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
}

// readDirNames returns the names in the directory fd, which must be freshly
// opened, without "." and "..".
func readDirNames(fd int) ([]string, error) {
	buf := make([]byte, 64<<10)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// finish sets the mode and times of the directories this layer made or
// copied up, now that nothing more is created in them.
func (a *applier) finish() error {
	for canon, d := range a.dirs {
		if a.removedSince(canon, d.seq) {
			continue
		}
		fd, err := openBeneath(a.fds[0], canon, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
			continue // replaced since
		}
		if err != nil {
			return fmt.Errorf("open directory %q: %w", canon, err)
		}
		err = unix.Fchmod(fd, d.mode)
		if err == nil {
			err = futimens(fd, d.atime, d.mtime)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("set mode and times of directory %q: %w", canon, err)
		}
	}
	return nil
}

// removedSince reports whether p or a parent of p was removed after entry
// seq.
func (a *applier) removedSince(p string, seq int) bool {
	for ; p != ""; p, _ = splitPath(p) {
		if s, ok := a.removed[p]; ok && s > seq {
			return true
		}
	}
	return false
}

// openBeneath opens the path p ("" for the root) below dirfd without
// following any symlink.
func openBeneath(dirfd int, p string, flags int) (int, error) {
	if p == "" {
		p = "."
	}
	return unix.Openat2(dirfd, p, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
}

func (a *applier) setXattrs(fd int, canon string, xs []xattr) error {
	for _, x := range xs {
		err := unix.Fsetxattr(fd, x.name, x.value, 0)
		if err == unix.EOPNOTSUPP {
			log.G(a.ctx).Warn("xattr not supported by the filesystem, skipped", "path", canon, "xattr", x.name)
			continue
		}
		if err != nil {
			return fmt.Errorf("set xattr %q: %w", x.name, err)
		}
	}
	return nil
}

// opaqueXattr marks an overlayfs directory opaque.
const opaqueXattr = "trusted.overlay.opaque"

func setOpaque(fd int) error {
	if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("set xattr %s: %w", opaqueXattr, err)
	}
	return nil
}

func isOpaque(fd int) bool {
	var b [2]byte
	n, err := unix.Fgetxattr(fd, opaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

func timespecs(atime, mtime time.Time) ([2]unix.Timespec, error) {
	a, err := unix.TimeToTimespec(atime)
	if err != nil {
		return [2]unix.Timespec{}, err
	}
	m, err := unix.TimeToTimespec(mtime)
	return [2]unix.Timespec{a, m}, err
}

// futimens sets the times of fd (utimensat with a NULL path; x/sys has no
// wrapper, and its Futimes goes through /proc/self/fd, a magic link).
func futimens(fd int, atime, mtime time.Time) error {
	ts, err := timespecs(atime, mtime)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func utimesNoFollow(pfd int, base string, m *meta) error {
	ts, err := timespecs(m.atime, m.mtime)
	if err == nil {
		err = unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
