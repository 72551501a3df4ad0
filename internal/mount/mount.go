// Package mount owns the Mount value, which describes one mount(2) call, and
// performing and undoing such mounts on Linux.
//
// Snapshotters return []Mount as data; whoever needs the files (the unpacker,
// the runtime, a test) performs them with All and undoes them with
// UnmountAll, or lets WithTempMount do both. This package must not decide
// what to mount: it knows nothing about snapshots, layers or containers.
//
// # Options
//
// Options are written as in fstab(5). These set mount flags; every other
// option is passed to the filesystem as data (for overlay, "lowerdir=...",
// "upperdir=...", "workdir=..."):
//
//	ro, rw              read-only, read-write (the default)
//	bind, rbind         bind mount Source, non-recursively or recursively
//	nosuid, nodev, noexec
//
// A bind mount needs "bind" or "rbind" in Options, as in fstab; Type is then
// only informative ("bind" by convention). For bind mounts, ro, nosuid, nodev
// and noexec are applied after the bind with mount_setattr(2) (Linux 5.12 or
// later), recursively for rbind.
//
// # Long overlay lowerdir lists
//
// The kernel copies at most one page (4096 bytes on most machines) of option
// data, so an overlay with many layers can exceed the limit. When the data is
// too long, All rewrites each lowerdir relative to the lowerdirs' deepest
// common parent directory, and performs the mount on a goroutine locked to an
// OS thread that has left the process's shared filesystem context
// (unshare(CLONE_FS)) and changed its working directory to that parent. The
// thread is never unlocked, so the Go runtime discards it when the goroutine
// ends; the rest of the process keeps its working directory. Containerd does
// the same (core/mount/mount_linux.go).
package mount

// Mount is a value describing one mount: mount(Source, target, Type,
// flags(Options), data(Options)). The target is chosen by whoever performs
// it.
type Mount struct {
	// Type is the filesystem type, e.g. "overlay", or "bind" for bind mounts.
	Type string
	// Source is the device or directory, e.g. "overlay" or a bind source.
	Source string
	// Options are fstab-style options; see the package documentation.
	Options []string
}
