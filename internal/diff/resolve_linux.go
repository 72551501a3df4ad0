package diff

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// maxSymlinks is how many symlinks one resolution follows, as in Linux
// (MAXSYMLINKS).
const maxSymlinks = 40

// errNotExist is returned by resolve, without create, for a path that does
// not exist in the view or goes through a non-directory.
var errNotExist = errors.New("does not exist")

// openParent opens the directory dir in the root layer, creating it and its
// parents as needed, and returns its fd and its path with symlinks resolved.
func (a *applier) openParent(dir string) (int, string, error) {
	// Fast path: the directory is there in the root layer, reached without
	// a symlink. The root layer is the nearest, so this is also the view's
	// directory.
	fd, err := openBeneath(a.fds[0], dir, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil {
		return fd, dir, nil
	}
	w, err := a.resolve(dir, true)
	if err != nil {
		return -1, "", err
	}
	defer w.close()
	fd, err = a.materialize(w)
	return fd, w.canon(), err
}

// level is a directory on a path resolved in the layered view.
type level struct {
	name string
	// from lists the layers that hold a directory at this path and merge
	// into the view's, nearest first. Empty when no layer holds it: the
	// directory is still to be made.
	from []int
	// whiteout: the root layer holds a whiteout here, which the directory
	// replaces (opaque).
	whiteout bool
}

// walk is a position in the layered view during a resolution: the directory
// at levels, with fds, aligned with from, of that directory in each layer
// of from.
type walk struct {
	a      *applier
	levels []level
	from   []int
	fds    []int
	owned  bool // fds are the walk's to close, not the layers' roots
	size   int  // length of the path
}

func (w *walk) canon() string {
	names := make([]string, len(w.levels))
	for i, l := range w.levels {
		names[i] = l.name
	}
	return strings.Join(names, "/")
}

func (w *walk) close() {
	if w.owned {
		for _, fd := range w.fds {
			unix.Close(fd)
		}
	}
	w.fds, w.owned = nil, false
}

// reset moves the walk to the root of the view.
func (w *walk) reset() {
	w.close()
	w.levels, w.size = nil, 0
	w.from, w.fds = w.a.rootFrom(), nil
	for _, j := range w.from {
		w.fds = append(w.fds, w.a.fds[j])
	}
}

// push moves the walk down into l, whose fds it takes.
func (w *walk) push(l level, fds []int) error {
	w.close()
	w.levels = append(w.levels, l)
	w.from, w.fds, w.owned = l.from, fds, true
	if w.size > 0 {
		w.size++
	}
	w.size += len(l.name)
	if w.size >= w.a.lim.MaxPathLen {
		return exceeded(fmt.Sprintf("path %s resolved through symlinks", quote(w.canon())), "MaxPathLen", int64(w.a.lim.MaxPathLen))
	}
	return nil
}

// up moves the walk to the parent directory; ".." of the root is the root.
func (w *walk) up() error {
	if len(w.levels) <= 1 {
		w.reset()
		return nil
	}
	w.close()
	w.levels = w.levels[:len(w.levels)-1]
	l := w.levels[len(w.levels)-1]
	w.from, w.fds, w.owned = l.from, nil, true
	p := w.canon()
	w.size = len(p)
	for _, j := range l.from {
		fd, err := openBeneath(w.a.fds[j], p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("open directory %q: %w", p, err)
		}
		w.fds = append(w.fds, fd)
	}
	return nil
}

// rootFrom lists the layers whose roots merge into the view's root: all of
// them, since overlayfs ignores the opaque xattr of a layer's root.
func (a *applier) rootFrom() []int {
	from := make([]int, len(a.fds))
	for j := range from {
		from[j] = j
	}
	return from
}

// resolve walks the directory path dir through the layered view: root layer
// first, then the lowers, a whiteout or a non-directory hiding what farther
// layers hold at its path, an opaque directory hiding what farther layers
// hold below it. Symlinks are followed as if the root were "/", ".." of the
// root being the root; only this code follows them, never the kernel.
//
// With create, the directories missing from the path are recorded in the
// walk for materialize to make, unless they would be made at the target of
// a symlink that does not exist. Without create, a path that does not exist
// is errNotExist.
func (a *applier) resolve(dir string, create bool) (*walk, error) {
	w := &walk{a: a}
	w.reset()
	type component struct {
		name   string
		linked bool // comes from a symlink's target
	}
	var queue []component
	for _, c := range strings.Split(dir, "/") {
		queue = append(queue, component{name: c})
	}
	fail := func(err error) (*walk, error) {
		w.close()
		return nil, err
	}
	links := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		switch c.name {
		case "", ".":
			continue
		case "..":
			if err := w.up(); err != nil {
				return fail(err)
			}
			continue
		}
		if len(w.from) == 0 {
			// The current directory is to be made: so is everything below.
			if c.linked || !create {
				return fail(notExist(w, c.name, create))
			}
			if err := w.push(level{name: c.name}, nil); err != nil {
				return fail(err)
			}
			continue
		}
		ch, err := a.lookupChild(w.from, w.fds, c.name, true)
		if err != nil {
			return fail(err)
		}
		var perr error
		switch {
		case !ch.found:
			if c.linked || !create {
				return fail(notExist(w, c.name, create))
			}
			perr = w.push(level{name: c.name, whiteout: ch.whiteout}, nil)
		case ch.mode == unix.S_IFDIR:
			perr = w.push(level{name: c.name, from: ch.from}, ch.fds)
		case ch.mode == unix.S_IFLNK:
			links++
			if links > maxSymlinks {
				return fail(fmt.Errorf("resolve %q: more than %d symlinks: %w", dir, maxSymlinks, errdefs.ErrInvalidArgument))
			}
			target, err := readlinkat(ch.dirFd, c.name)
			if err != nil {
				return fail(fmt.Errorf("resolve %q: %w", dir, err))
			}
			if strings.HasPrefix(target, "/") {
				w.reset()
			}
			var linked []component
			for _, t := range strings.Split(target, "/") {
				linked = append(linked, component{name: t, linked: true})
			}
			queue = append(linked, queue...)
		default:
			if !create {
				return fail(errNotExist)
			}
			return fail(fmt.Errorf("resolve %q: %q is not a directory: %w", dir, joinPath(w.canon(), c.name), errdefs.ErrInvalidArgument))
		}
		if perr != nil {
			return fail(perr)
		}
	}
	return w, nil
}

// notExist is the error for a path component name that is missing below
// the walk's position.
func notExist(w *walk, name string, create bool) error {
	if !create {
		return errNotExist
	}
	return fmt.Errorf("parent directory %q: target of a symlink does not exist: %w", joinPath(w.canon(), name), errdefs.ErrInvalidArgument)
}

// child is what the view holds at a name in a directory.
type child struct {
	found bool
	layer int    // the nearest layer holding the name
	dirFd int    // that layer's fd of the directory (not owned)
	mode  uint32 // the type of what it holds (S_IFMT bits)
	// from and fds (owned by the caller) are, for a directory looked up
	// with descend, the layers whose directories merge at the name.
	from []int
	fds  []int
	// whiteout: the root layer holds a whiteout at the name.
	whiteout bool
}

// lookupChild looks name up in the directory whose fds in the layers of
// from are fds.
func (a *applier) lookupChild(from, fds []int, name string, descend bool) (child, error) {
	var c child
	for i, j := range from {
		var st unix.Stat_t
		err := unix.Fstatat(fds[i], name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			closeAll(c.fds)
			return child{}, fmt.Errorf("stat %q: %w", name, err)
		}
		typ := st.Mode & unix.S_IFMT
		if a.overlay && typ == unix.S_IFCHR && st.Rdev == 0 {
			c.whiteout = !c.found && j == 0
			break
		}
		if !c.found {
			c.found, c.layer, c.dirFd, c.mode = true, j, fds[i], typ
		}
		if typ != unix.S_IFDIR || !descend {
			break
		}
		fd, err := unix.Openat(fds[i], name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll(c.fds)
			return child{}, fmt.Errorf("open directory %q: %w", name, err)
		}
		c.from, c.fds = append(c.from, j), append(c.fds, fd)
		if a.overlay && isOpaque(fd) {
			break
		}
	}
	return c, nil
}

// materialize makes the directories of the walk's path that the root layer
// lacks and returns an fd of the last one in the root layer. A directory
// some lower holds is copied up from the nearest (owner, mode, xattrs,
// times); any other is made with mode 0755, owned by root.
func (a *applier) materialize(w *walk) (int, error) {
	fd, err := unix.Openat(a.fds[0], ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open root: %w", err)
	}
	p := ""
	for _, l := range w.levels {
		p = joinPath(p, l.name)
		var next int
		if len(l.from) > 0 && l.from[0] == 0 {
			next, err = unix.Openat(fd, l.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				err = fmt.Errorf("open directory %q: %w", p, err)
			}
		} else {
			next, err = a.makeDir(fd, l, p)
		}
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// makeDir makes the directory of level l, at path p, in pfd of the root
// layer.
func (a *applier) makeDir(pfd int, l level, p string) (int, error) {
	if l.whiteout {
		if err := a.remove(pfd, l.name, p); err != nil {
			return -1, err
		}
	}
	if err := unix.Mkdirat(pfd, l.name, 0o700); err != nil {
		return -1, fmt.Errorf("create directory %q: %w", p, err)
	}
	fd, err := unix.Openat(pfd, l.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open directory %q: %w", p, err)
	}
	if len(l.from) > 0 {
		err = a.copyDirMeta(fd, l.from[0], p)
	} else {
		err = unix.Fchmod(fd, 0o755)
		if err == nil && a.root {
			err = unix.Fchown(fd, 0, 0)
		}
		if err != nil {
			err = fmt.Errorf("set up directory %q: %w", p, err)
		}
	}
	if err == nil && l.whiteout {
		err = setOpaque(fd)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// copyDirMeta gives the directory fd at p the metadata of the directory at
// p in layer src.
func (a *applier) copyDirMeta(fd, src int, p string) error {
	sfd, err := openBeneath(a.fds[src], p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("open lower directory %q: %w", p, err)
	}
	defer unix.Close(sfd)
	m, err := fdMeta(sfd)
	if err != nil {
		return fmt.Errorf("copy up directory %q: %w", p, err)
	}
	return a.dirMeta(fd, p, &m, false)
}

// linkTarget returns the directory (an fd) and name in the root layer of the
// hardlink target target, copying it up from a lower if needed, and its path
// with symlinks resolved.
func (a *applier) linkTarget(target string) (int, string, string, error) {
	dir, base := splitPath(target)
	if fd, err := openBeneath(a.fds[0], dir, unix.O_PATH|unix.O_DIRECTORY); err == nil {
		var st unix.Stat_t
		if unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && !isDirOrWhiteout(&st, a.overlay) {
			return fd, base, target, nil
		}
		unix.Close(fd)
	}
	notFound := fmt.Errorf("hardlink target %q: not found: %w", target, errdefs.ErrInvalidArgument)
	w, err := a.resolve(dir, false)
	if errors.Is(err, errNotExist) {
		return -1, "", "", notFound
	}
	if err != nil {
		return -1, "", "", fmt.Errorf("hardlink target %q: %w", target, err)
	}
	defer w.close()
	ch, err := a.lookupChild(w.from, w.fds, base, false)
	switch {
	case err != nil:
		return -1, "", "", fmt.Errorf("hardlink target %q: %w", target, err)
	case !ch.found:
		return -1, "", "", notFound
	case ch.mode == unix.S_IFDIR:
		return -1, "", "", fmt.Errorf("hardlink target %q: is a directory: %w", target, errdefs.ErrInvalidArgument)
	}
	canon := joinPath(w.canon(), base)
	pfd, err := a.materialize(w)
	if err != nil {
		return -1, "", "", fmt.Errorf("hardlink target %q: %w", target, err)
	}
	if ch.layer != 0 {
		if err := a.copyUp(ch.dirFd, pfd, base, canon); err != nil {
			unix.Close(pfd)
			return -1, "", "", fmt.Errorf("hardlink target %q: copy up: %w", target, err)
		}
	}
	return pfd, base, canon, nil
}

func isDirOrWhiteout(st *unix.Stat_t, overlay bool) bool {
	typ := st.Mode & unix.S_IFMT
	return typ == unix.S_IFDIR || overlay && typ == unix.S_IFCHR && st.Rdev == 0
}

// copyUp copies the non-directory base of the lower directory src into the
// directory dst of the root layer, as overlayfs would.
func (a *applier) copyUp(src, dst int, base, canon string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	m := statMeta(&st)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		fd, err := unix.Openat(src, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		defer f.Close()
		if m.xattrs, err = fdXattrs(fd); err != nil {
			return err
		}
		return a.createFile(dst, base, canon, &m, f)
	case unix.S_IFLNK:
		target, err := readlinkat(src, base)
		if err != nil {
			return err
		}
		return a.createSymlink(dst, base, canon, target, &m)
	default:
		return a.createNode(dst, base, canon, st.Mode&unix.S_IFMT, uint64(st.Rdev), &m)
	}
}

// fdMeta is the metadata of the open file fd, xattrs included.
func fdMeta(fd int) (meta, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return meta{}, err
	}
	m := statMeta(&st)
	var err error
	m.xattrs, err = fdXattrs(fd)
	return m, err
}

func statMeta(st *unix.Stat_t) meta {
	return meta{
		mode:  st.Mode & 0o7777,
		uid:   int(st.Uid),
		gid:   int(st.Gid),
		atime: time.Unix(st.Atim.Unix()),
		mtime: time.Unix(st.Mtim.Unix()),
	}
}

// fdXattrs lists the xattrs of fd, sorted by name, without those dropped
// from layers.
func fdXattrs(fd int) ([]xattr, error) {
	size, err := unix.Flistxattr(fd, nil)
	if err != nil || size == 0 {
		if err == unix.EOPNOTSUPP {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, size)
	if size, err = unix.Flistxattr(fd, buf); err != nil {
		return nil, err
	}
	var xs []xattr
	for _, name := range strings.Split(strings.TrimSuffix(string(buf[:size]), "\x00"), "\x00") {
		if droppedXattr(name) {
			continue
		}
		v, err := fgetxattr(fd, name)
		if err == unix.ENODATA {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get xattr %q: %w", name, err)
		}
		xs = append(xs, xattr{name: name, value: v})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].name < xs[j].name })
	return xs, nil
}

func fgetxattr(fd int, name string) ([]byte, error) {
	size, err := unix.Fgetxattr(fd, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	size, err = unix.Fgetxattr(fd, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:size], nil
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", fmt.Errorf("read symlink %q: %w", name, err)
	}
	return string(buf[:n]), nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
