package oci

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// stdDevices are the character devices every container may use: null,
// zero, full, random, urandom and tty get a node in /dev, console and ptmx
// are set up by the runtime, and 136 is the major of /dev/pts/N.
var stdDevices = []struct {
	path         string
	major, minor int64 // minor -1: any
	node         bool
}{
	{"/dev/null", 1, 3, true},
	{"/dev/zero", 1, 5, true},
	{"/dev/full", 1, 7, true},
	{"/dev/random", 1, 8, true},
	{"/dev/urandom", 1, 9, true},
	{"/dev/tty", 5, 0, true},
	{"/dev/console", 5, 1, false},
	{"/dev/ptmx", 5, 2, false},
	{"/dev/pts/*", 136, -1, false},
}

// devices returns the device nodes to create and the device cgroup rules.
// Unprivileged: deny everything, then allow stdDevices. Privileged: allow
// everything, and create a node for each character and block device of the
// host's /dev.
func devices(privileged bool) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var nodes []specs.LinuxDevice
	for _, d := range stdDevices {
		if d.node {
			nodes = append(nodes, specs.LinuxDevice{
				Path: d.path, Type: "c", Major: d.major, Minor: d.minor,
				FileMode: ptr(fs.FileMode(0666)), UID: ptr(uint32(0)), GID: ptr(uint32(0)),
			})
		}
	}
	if privileged {
		host, err := hostDevices("/dev")
		if err != nil {
			return nil, nil, err
		}
		for _, d := range host {
			if !slices.ContainsFunc(nodes, func(n specs.LinuxDevice) bool { return n.Path == d.Path }) {
				nodes = append(nodes, d)
			}
		}
		return nodes, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, nil
	}
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for _, d := range stdDevices {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(d.major), Access: "rwm"}
		if d.minor >= 0 {
			r.Minor = ptr(d.minor)
		}
		rules = append(rules, r)
	}
	return nodes, rules, nil
}

// hostDevices lists the character and block devices under dir, as runc
// does for privileged containers: not the pseudo-terminals (the container
// has its own devpts), shared memory, message queues or the console.
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil // gone while walking, or unreadable: not a device to pass on
			}
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "console" || d.Name() == "ptmx" || d.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		typ := "b"
		if st.Mode&unix.S_IFMT == unix.S_IFCHR {
			typ = "c"
		}
		out = append(out, specs.LinuxDevice{
			Path: p, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: ptr(fs.FileMode(st.Mode & 07777)), UID: ptr(st.Uid), GID: ptr(st.Gid),
		})
		return nil
	})
	return out, err
}
