package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Cgroup is one container's cgroup: the directory its cgroupsPath names in
// each mounted hierarchy. It holds no open files; its methods read and
// write the cgroup filesystem on every call and are safe for concurrent use.
type Cgroup struct {
	path string
	// v1 lists the cgroup v1 hierarchies in which the cgroup's directory
	// existed when it was loaded.
	v1 []hierarchy
	// unified is the cgroup's cgroup2 directory, "" when it did not exist
	// when the cgroup was loaded.
	unified string
}

// hierarchy is a cgroup v1 hierarchy: the cgroup's directory in it and the
// super options it is mounted with, which name its controllers ("cpu",
// "cpuacct", "name=systemd") among flags such as "rw".
type hierarchy struct {
	dir     string
	options []string
}

// Load finds the directories of the cgroup that cgroupsPath names: one per
// mounted v1 hierarchy (found through /proc/self/mountinfo, so co-mounted
// controllers are handled) and the cgroup2 directory. cgroupsPath must be
// absolute and clean, as berth gives it to the runtime. If no directory
// exists the error is of kind errdefs.ErrNotFound.
func Load(cgroupsPath string) (*Cgroup, error) {
	if !path.IsAbs(cgroupsPath) || path.Clean(cgroupsPath) != cgroupsPath || cgroupsPath == "/" {
		return nil, fmt.Errorf("load cgroup %q: path must be absolute, clean and not the root: %w", cgroupsPath, errdefs.ErrInvalidArgument)
	}
	c := &Cgroup{path: cgroupsPath}
	mode := DetectMode()
	if mode == Unified {
		c.unified = existingDir(filepath.Join(mountRoot, cgroupsPath))
	} else {
		data, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return nil, fmt.Errorf("load cgroup %q: %w", cgroupsPath, err)
		}
		for _, m := range parseMountinfo(string(data)) {
			if dir := existingDir(filepath.Join(m.mountpoint, cgroupsPath)); dir != "" {
				c.v1 = append(c.v1, hierarchy{dir: dir, options: m.options})
			}
		}
		if mode == Hybrid {
			c.unified = existingDir(filepath.Join(unifiedMount, cgroupsPath))
		}
	}
	if len(c.v1) == 0 && c.unified == "" {
		return nil, fmt.Errorf("load cgroup %q: %w", cgroupsPath, errdefs.ErrNotFound)
	}
	return c, nil
}

func existingDir(dir string) string {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir
	}
	return ""
}

// v1Dir returns the cgroup's directory in the v1 hierarchy of controller,
// or "" if that controller is not mounted or the directory did not exist.
func (c *Cgroup) v1Dir(controller string) string {
	for _, h := range c.v1 {
		if slices.Contains(h.options, controller) {
			return h.dir
		}
	}
	return ""
}

// dirs returns every directory of the cgroup.
func (c *Cgroup) dirs() []string {
	dirs := make([]string, 0, len(c.v1)+1)
	for _, h := range c.v1 {
		dirs = append(dirs, h.dir)
	}
	if c.unified != "" {
		dirs = append(dirs, c.unified)
	}
	return dirs
}

// Exists reports whether any directory of the cgroup still exists.
func (c *Cgroup) Exists() bool {
	for _, dir := range c.dirs() {
		if existingDir(dir) != "" {
			return true
		}
	}
	return false
}

// Procs returns the IDs of all processes in the cgroup and its descendant
// cgroups, in every hierarchy, sorted and without duplicates. A cgroup that
// no longer exists has no processes.
func (c *Cgroup) Procs() ([]int, error) {
	var pids []int
	for _, dir := range c.dirs() {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			pids, err = appendPids(pids, string(data))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list processes of cgroup %q: %w", c.path, err)
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// How long Kill keeps signalling, and how long it waits for a freeze.
const (
	killTimeout   = 10 * time.Second
	freezeTimeout = time.Second
	pollInterval  = 10 * time.Millisecond
)

// Kill sends SIGKILL to every process in the cgroup and its descendants and
// waits until none is left. Where cgroup v2 has cgroup.kill it writes that;
// otherwise, and for processes only in v1 hierarchies, it freezes the cgroup
// (v1 freezer, else v2 cgroup.freeze) so that nothing forks or exits
// between listing and signalling, signals each process and thaws, until the
// cgroup is empty. If processes remain after 10s the error is of kind
// errdefs.ErrUnavailable. Killing a cgroup that no longer exists succeeds.
func (c *Cgroup) Kill() error {
	if c.unified != "" {
		err := os.WriteFile(filepath.Join(c.unified, "cgroup.kill"), []byte("1"), 0)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("kill cgroup %q: %w", c.path, err)
		}
	}
	deadline := time.Now().Add(killTimeout)
	for {
		pids, err := c.Procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill cgroup %q: %d processes left after %s: %w", c.path, len(pids), killTimeout, errdefs.ErrUnavailable)
		}
		if err := c.killFrozen(); err != nil {
			return err
		}
		time.Sleep(pollInterval)
	}
}

// killFrozen freezes the cgroup, sends SIGKILL to each process in it and
// thaws it, so that the killed processes can die.
func (c *Cgroup) killFrozen() (err error) {
	thaw, err := c.freeze()
	if err != nil {
		return err
	}
	defer func() {
		if terr := thaw(); terr != nil && err == nil {
			err = terr
		}
	}()
	pids, err := c.Procs()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill cgroup %q: process %d: %w", c.path, pid, err)
		}
	}
	return nil
}

// freeze freezes the cgroup with the v1 freezer or, without it, v2
// cgroup.freeze, and returns the function that thaws it. It waits at most
// freezeTimeout for the freeze to finish and carries on either way: a
// process stuck in the kernel must not stop the kill. Without a freezer it
// does nothing.
func (c *Cgroup) freeze() (thaw func() error, err error) {
	var file, frozen, thawed string
	var done func() bool
	if dir := c.v1Dir("freezer"); dir != "" {
		file, frozen, thawed = filepath.Join(dir, "freezer.state"), "FROZEN", "THAWED"
		done = func() bool {
			data, err := os.ReadFile(file)
			return err != nil || strings.TrimSpace(string(data)) == "FROZEN"
		}
	} else if c.unified != "" && existingFile(filepath.Join(c.unified, "cgroup.freeze")) {
		file, frozen, thawed = filepath.Join(c.unified, "cgroup.freeze"), "1", "0"
		events := filepath.Join(c.unified, "cgroup.events")
		done = func() bool {
			data, err := os.ReadFile(events)
			if err != nil {
				return true
			}
			v, err := keyedValue("cgroup.events", string(data), "frozen")
			return err != nil || v == 1
		}
	} else {
		return func() error { return nil }, nil
	}
	write := func(state string) error {
		err := os.WriteFile(file, []byte(state), 0)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("set %s of cgroup %q to %s: %w", filepath.Base(file), c.path, state, err)
		}
		return nil
	}
	thaw = func() error { return write(thawed) }
	deadline := time.Now().Add(freezeTimeout)
	for {
		// The v1 freezer wants FROZEN written again to retry a freeze
		// that stalled in FREEZING; for v2 the write is idempotent.
		if err := write(frozen); err != nil {
			return nil, errors.Join(err, thaw())
		}
		if done() || time.Now().After(deadline) {
			return thaw, nil
		}
		time.Sleep(pollInterval)
	}
}

func existingFile(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// Delete retries directories that are busy for this long, with doubling
// delays from rmdirDelay: processes just killed may still be exiting.
const (
	rmdirTimeout = 500 * time.Millisecond
	rmdirDelay   = 10 * time.Millisecond
)

// Delete removes every directory of the cgroup, descendant cgroups first.
// A directory still busy (processes left; call Kill first) after a short
// retry is an error of kind errdefs.ErrFailedPrecondition. Directories
// already gone are fine.
func (c *Cgroup) Delete() error {
	deadline := time.Now().Add(rmdirTimeout)
	for delay := rmdirDelay; ; delay *= 2 {
		var errs []error
		busy := false
		for _, dir := range c.dirs() {
			err := removeTree(dir)
			busy = busy || errors.Is(err, unix.EBUSY)
			errs = append(errs, err)
		}
		err := errors.Join(errs...)
		switch {
		case err == nil:
			return nil
		case busy && time.Now().Before(deadline):
			time.Sleep(delay)
		case busy:
			return fmt.Errorf("delete cgroup %q: %w: %w", c.path, err, errdefs.ErrFailedPrecondition)
		default:
			return fmt.Errorf("delete cgroup %q: %w", c.path, err)
		}
	}
}

// removeTree removes the cgroup directory dir and its descendant cgroups,
// deepest first. A cgroup directory holds only interface files, which go
// with it, and child cgroups. Directories already gone are fine.
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "remove", Path: dir, Err: err}
	}
	return nil
}

// appendPids appends the process IDs listed one per line in a cgroup.procs
// file to pids.
func appendPids(pids []int, data string) ([]int, error) {
	for line := range strings.Lines(data) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil {
			return nil, fmt.Errorf("parse cgroup.procs line %q: %w", line, errdefs.ErrInvalidArgument)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// isV2 reports whether the cgroup's statistics come from cgroup v2: when it
// has no v1 directory. In the Hybrid layout the v1 controllers count.
func (c *Cgroup) isV2() bool { return len(c.v1) == 0 }

// Stats reads the cgroup's resource use from the v1 controllers or, on
// cgroup v2, from the unified directory. A cgroup removed meanwhile is an
// error of kind errdefs.ErrNotFound.
func (c *Cgroup) Stats() (*Stats, error) {
	var s *Stats
	var err error
	if c.isV2() {
		s, err = readStatsV2(os.DirFS(c.unified))
	} else {
		s, err = readStatsV1(v1Dirs{
			cpu:     c.v1FS("cpu"),
			cpuacct: c.v1FS("cpuacct"),
			memory:  c.v1FS("memory"),
			pids:    c.v1FS("pids"),
			blkio:   c.v1FS("blkio"),
		})
	}
	if err != nil {
		return nil, fmt.Errorf("stats of cgroup %q: %w", c.path, err)
	}
	return s, nil
}

// v1FS returns the cgroup's directory in controller's hierarchy as a file
// system, nil if it has none.
func (c *Cgroup) v1FS(controller string) fs.FS {
	if dir := c.v1Dir(controller); dir != "" {
		return os.DirFS(dir)
	}
	return nil
}
