package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// NetNSPath is where NewNetNS(name) puts the namespace.
func (m *Manager) NetNSPath(name string) string { return filepath.Join(m.netnsDir, name) }

// NewNetNS creates a network namespace that outlives every process in it
// and returns its path, StateDir/netns/<name>: the namespace is bind-mounted
// there, as `ip netns add` does in /run/netns. Only lo exists in it, up.
// Pass the path to Setup, and as the network namespace of the container's
// OCI spec; Teardown removes it. A name in use is of kind ErrAlreadyExists.
func (m *Manager) NewNetNS(name string) (string, error) {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return "", fmt.Errorf("network namespace name %q: must be one path element: %w", name, errdefs.ErrInvalidArgument)
	}
	if err := m.prepareNetNSDir(); err != nil {
		return "", err
	}
	path := m.NetNSPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("network namespace %q: %w", name, errdefs.ErrAlreadyExists)
		}
		return "", fmt.Errorf("create network namespace %q: %w", name, err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() { errc <- bindNewNetNS(path) }()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", fmt.Errorf("create network namespace %q: %w", name, err)
	}
	return path, nil
}

// bindNewNetNS creates a network namespace on the calling goroutine's
// thread, brings up its lo and bind-mounts it at path, then moves the thread back to its
// namespace. The thread must go back rather than exit with the goroutine:
// Go never ends the process's main thread but parks it for good, which
// would keep the namespace alive. Only if going back fails is the thread
// left locked, for the runtime to retire.
func bindNewNetNS(path string) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("unshare: %w", err)
	}
	setupErr := loopbackUp()
	if setupErr == nil {
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			setupErr = fmt.Errorf("bind mount the new namespace: %w", err)
		}
	}
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(setupErr, fmt.Errorf("return to the original namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return setupErr
}

// loopbackUp brings up lo in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: set flags: %w", err)
	}
	return nil
}

// prepareNetNSDir makes the netns directory a mount point of its own with
// shared propagation, as iproute2 does for /run/netns: a namespace's bind
// mount then propagates into mount namespaces cloned later, and so does its
// unmount, so that no copy keeps the namespace alive after Teardown.
func (m *Manager) prepareNetNSDir() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.netnsReady {
		return nil
	}
	if err := os.MkdirAll(m.netnsDir, 0o700); err != nil {
		return fmt.Errorf("create network namespace dir: %w", err)
	}
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, m.netnsDir, unix.AT_SYMLINK_NOFOLLOW, 0, &stx); err != nil {
		return fmt.Errorf("stat network namespace dir %q: %w", m.netnsDir, err)
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return fmt.Errorf("stat network namespace dir %q: kernel does not report mount roots (needs Linux 5.8): %w", m.netnsDir, errdefs.ErrFailedPrecondition)
	}
	if stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		if err := unix.Mount(m.netnsDir, m.netnsDir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount network namespace dir %q on itself: %w", m.netnsDir, err)
		}
	}
	if err := unix.Mount("", m.netnsDir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make network namespace dir %q shared: %w", m.netnsDir, err)
	}
	m.netnsReady = true
	return nil
}

// Close undoes prepareNetNSDir when no namespace is left in the directory,
// so that a daemon stopped without containers leaves no mount behind. With
// namespaces left (containers run on), the directory stays a mount point:
// their files are mounts inside it.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.netnsReady {
		return nil
	}
	entries, err := os.ReadDir(m.netnsDir)
	if err != nil || len(entries) > 0 {
		return err
	}
	if err := unix.Unmount(m.netnsDir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount network namespace dir %q: %w", m.netnsDir, err)
	}
	m.netnsReady = false
	return nil
}

// removeNetNS unmounts and removes a namespace file of NewNetNS. A path
// that is not mounted or does not exist is not an error.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %q: %w", path, err)
	}
	return nil
}
