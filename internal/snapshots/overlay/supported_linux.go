package overlay

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mount"
	"golang.org/x/sys/unix"
)

// Supported reports, with an error saying why not, whether a Snapshotter can
// work in root: the path is one overlay options can carry, root is not on
// overlayfs, and the kernel mounts a small overlay whose upper and work dirs
// are in root, in which deleting a lower file (a whiteout) and replacing a
// lower directory (an opaque directory, a trusted xattr) work. It creates
// root if needed, needs root privileges, and leaves nothing behind. Errors
// are ErrFailedPrecondition (ErrInvalidArgument for the path).
func Supported(root string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("check overlayfs in %q: %w", root, err)
	}
	if strings.ContainsAny(abs, ",:") {
		return fmt.Errorf("check overlayfs in %q: the path must not contain ',' or ':', which overlay mount options cannot carry: %w", abs, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return unsupported(abs, "create root", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(abs, &st); err != nil {
		return unsupported(abs, "statfs", err)
	}
	if st.Type == unix.OVERLAYFS_SUPER_MAGIC {
		return fmt.Errorf("check overlayfs in %q: root is on overlayfs, which cannot hold upper dirs; use ext4, xfs, btrfs or tmpfs: %w", abs, errdefs.ErrFailedPrecondition)
	}
	dir, err := os.MkdirTemp(abs, "overlay-check-")
	if err != nil {
		return unsupported(abs, "create test directory", err)
	}
	err = tryOverlay(dir)
	if rerr := os.RemoveAll(dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		if errors.Is(err, unix.ENODEV) && !kernelHasOverlay() {
			return unsupported(abs, "the kernel has no overlayfs (not in /proc/filesystems, and it could not be loaded)", err)
		}
		return unsupported(abs, "test overlay", err)
	}
	return nil
}

// tryOverlay mounts an overlay in dir and deletes and replaces lower files
// through it.
func tryOverlay(dir string) (err error) {
	lower, upper, work, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{filepath.Join(lower, "dir"), upper, work, merged} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "file"), nil, 0o600); err != nil {
		return err
	}
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}
	if err := mount.All([]mount.Mount{m}, merged); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, mount.UnmountAll(merged)) }()
	if err := os.Remove(filepath.Join(merged, "file")); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	if err := os.Remove(filepath.Join(merged, "dir")); err != nil {
		return fmt.Errorf("whiteout a directory: %w", err)
	}
	if err := os.Mkdir(filepath.Join(merged, "dir"), 0o700); err != nil {
		return fmt.Errorf("opaque directory: %w", err)
	}
	return nil
}

func unsupported(root, what string, err error) error {
	return fmt.Errorf("check overlayfs in %q: %s: %w (%w)", root, what, err, errdefs.ErrFailedPrecondition)
}

// kernelHasOverlay reports whether /proc/filesystems lists overlay.
func kernelHasOverlay() bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if slices.Contains(strings.Fields(sc.Text()), "overlay") {
			return true
		}
	}
	return false
}
