package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Unmount retries a busy target this many times, this far apart.
const (
	unmountRetries    = 10
	unmountRetryDelay = 50 * time.Millisecond
)

// optionFlags are the options that set (or, for "rw", clear) mount flags.
var optionFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":     {false, unix.MS_RDONLY},
	"rw":     {true, unix.MS_RDONLY},
	"bind":   {false, unix.MS_BIND},
	"rbind":  {false, unix.MS_BIND | unix.MS_REC},
	"nosuid": {false, unix.MS_NOSUID},
	"nodev":  {false, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC},
}

// bindAttrs maps the flags a bind mount ignores to mount_setattr attributes.
var bindAttrs = []struct {
	flag uintptr
	attr uint64
}{
	{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
	{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
	{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
	{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
}

// All performs mounts in order on target, each on top of the previous one.
// If one fails, All unmounts the ones it made before returning the error.
func All(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.mount(target); err != nil {
			for range i {
				if uerr := Unmount(target, 0); uerr != nil {
					return errors.Join(err, uerr)
				}
			}
			return err
		}
	}
	return nil
}

func (m Mount) mount(target string) error {
	flags, data := parseOptions(m.Options)
	if flags&unix.MS_BIND != 0 {
		if len(data) > 0 {
			return fmt.Errorf("bind mount %q on %q: unsupported options %q: %w", m.Source, target, data, errdefs.ErrInvalidArgument)
		}
		if err := bind(m.Source, target, flags); err != nil {
			return fmt.Errorf("bind mount %q on %q: %w", m.Source, target, err)
		}
		return nil
	}

	var dir string
	if m.Type == "overlay" && optionsLen(data) >= os.Getpagesize() {
		abs, err := filepath.Abs(target)
		if err != nil {
			return fmt.Errorf("mount overlay on %q: %w", target, err)
		}
		target = abs
		dir, data = compactLowerdirs(data)
	}
	if n := optionsLen(data); n >= os.Getpagesize() {
		return fmt.Errorf("mount %s on %q: options are %d bytes, the kernel takes at most %d: %w", m.Type, target, n, os.Getpagesize()-1, errdefs.ErrInvalidArgument)
	}
	if err := mountAt(dir, m.Source, target, m.Type, flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount %s %q on %q: %w", m.Type, m.Source, target, err)
	}
	return nil
}

// parseOptions splits options into mount flags and filesystem data.
func parseOptions(options []string) (flags uintptr, data []string) {
	for _, o := range options {
		f, ok := optionFlags[o]
		switch {
		case !ok:
			data = append(data, o)
		case f.clear:
			flags &^= f.flag
		default:
			flags |= f.flag
		}
	}
	return flags, data
}

// optionsLen is the length of the data string made of options.
func optionsLen(options []string) int {
	n := max(len(options)-1, 0) // commas
	for _, o := range options {
		n += len(o)
	}
	return n
}

// bind bind-mounts source on target and then applies the flags that MS_BIND
// ignores, recursively for MS_REC.
func bind(source, target string, flags uintptr) error {
	if err := unix.Mount(source, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return err
	}
	var attr unix.MountAttr
	for _, b := range bindAttrs {
		if flags&b.flag != 0 {
			attr.Attr_set |= b.attr
		}
	}
	if attr.Attr_set == 0 {
		return nil
	}
	var atFlags uint
	if flags&unix.MS_REC != 0 {
		atFlags = unix.AT_RECURSIVE
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, target, atFlags, &attr); err != nil {
		err = fmt.Errorf("set mount attributes: %w", err)
		if uerr := unix.Unmount(target, unix.MNT_DETACH); uerr != nil {
			err = errors.Join(err, fmt.Errorf("undo bind mount: %w", uerr))
		}
		return err
	}
	return nil
}

// compactLowerdirs rewrites the overlay option "lowerdir=" with paths
// relative to the lowerdirs' deepest common parent directory, and returns
// that directory. It returns data unchanged and dir "" when there is nothing
// to compact or compacting would change the meaning of data: no lowerdir
// option, a relative lowerdir, upperdir or workdir, "/" as a lowerdir, or an
// escaped character (the kernel's "\:") that a plain split would mangle.
func compactLowerdirs(data []string) (dir string, compacted []string) {
	idx := -1
	for i, o := range data {
		if strings.HasPrefix(o, "lowerdir=") {
			idx = i
		}
		if k, v, _ := strings.Cut(o, "="); (k == "upperdir" || k == "workdir") && !filepath.IsAbs(v) {
			return "", data // it would resolve against the new working directory
		}
	}
	if idx < 0 || strings.Contains(data[idx], `\`) {
		return "", data
	}
	lowers := strings.Split(strings.TrimPrefix(data[idx], "lowerdir="), ":")
	for i, l := range lowers {
		lowers[i] = filepath.Clean(l)
		if !filepath.IsAbs(l) || lowers[i] == "/" {
			return "", data
		}
	}
	dir = filepath.Dir(lowers[0])
	for _, l := range lowers[1:] {
		for !isBelow(l, dir) {
			dir = filepath.Dir(dir)
		}
	}
	for i, l := range lowers {
		lowers[i] = strings.TrimPrefix(strings.TrimPrefix(l, dir), "/")
	}
	compacted = append([]string(nil), data...)
	compacted[idx] = "lowerdir=" + strings.Join(lowers, ":")
	return dir, compacted
}

// isBelow reports whether path p lies strictly below directory dir; both
// are clean and absolute.
func isBelow(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

// mountAt calls mount(2), from within dir when dir is not empty. For that it
// runs the call on a goroutine locked to an OS thread that stops sharing its
// working directory with the process (unshare(CLONE_FS)) and changes it. The
// thread is never unlocked, so the Go runtime ends it with the goroutine
// instead of reusing it with a working directory nobody expects.
func mountAt(dir, source, target, fstype string, flags uintptr, data string) error {
	if dir == "" {
		return unix.Mount(source, target, fstype, flags, data)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			done <- fmt.Errorf("unshare filesystem attributes: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			done <- fmt.Errorf("change directory to %q: %w", dir, err)
			return
		}
		done <- unix.Mount(source, target, fstype, flags, data)
	}()
	return <-done
}

// Unmount unmounts the topmost mount on target with umount2(2) flags,
// retrying for about half a second while the target is busy (EBUSY).
func Unmount(target string, flags int) error {
	for i := 0; ; i++ {
		err := unix.Unmount(target, flags)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || i == unmountRetries {
			return fmt.Errorf("unmount %q: %w", target, err)
		}
		time.Sleep(unmountRetryDelay)
	}
}

// UnmountAll unmounts target until nothing is mounted there. A target that
// is not a mount point, or does not exist, is not an error.
func UnmountAll(target string) error {
	return unmountAll(target, 0)
}

func unmountAll(target string, flags int) error {
	for {
		if err := Unmount(target, flags); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
	}
}

// WithTempMount performs mounts on a new temporary directory, calls fn with
// its path, then unmounts and removes the directory, also when fn panics. If
// the mounts are still busy after fn returns (a file left open), they are
// detached lazily (MNT_DETACH), so no mount outlives the call. fn's error is
// returned, joined with any error from undoing the mounts.
func WithTempMount(ctx context.Context, mounts []Mount, fn func(root string) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-mount-")
	if err != nil {
		return fmt.Errorf("create temporary mount point: %w", err)
	}
	if err := All(mounts, dir); err != nil {
		return errors.Join(err, os.Remove(dir))
	}
	defer func() {
		uerr := unmountAll(dir, 0)
		if errors.Is(uerr, unix.EBUSY) {
			uerr = unmountAll(dir, unix.MNT_DETACH)
		}
		if uerr != nil {
			err = errors.Join(err, uerr) // dir stays: something may still be mounted on it
			return
		}
		if rerr := os.Remove(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove temporary mount point: %w", rerr))
		}
	}()
	return fn(dir)
}
