package runtime

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// runtimeSeals are the seals that make runc (and crun) treat a memfd they
// run from as their own protective copy (CVE-2019-5736): no writes, no size
// change, no further seals.
const runtimeSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// sealedCopy returns a sealed in-memory copy of the executable at path.
// A runtime started from it skips copying its own binary into a new memfd
// on every container start, which for runc (9 MB) costs a few
// milliseconds. The copy cannot change, so the containers it starts cannot
// overwrite the runtime through /proc/self/exe either.
func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:berth-runtime")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy %s: %w", path, err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, runtimeSeals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal copy of %s: %w", path, err)
	}
	return f, nil
}

// sealedRuntimes keeps one sealed copy per runtime binary, made on first
// use and made again when the binary changes on disk (an upgrade takes
// effect at the next container start, as without copies). A binary that
// cannot be copied is run from its path: a copy is an optimisation, never
// a requirement.
type sealedRuntimes struct {
	mu     sync.Mutex
	copies map[string]sealedRuntime // by path
}

type sealedRuntime struct {
	file *os.File // nil when copying failed
	id   binaryID
}

// binaryID tells whether a binary changed since it was copied.
type binaryID struct {
	dev, ino uint64
	size     int64
	mtime    unix.Timespec
}

func statBinary(path string) (binaryID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return binaryID{}, err
	}
	return binaryID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim}, nil
}

// get returns the sealed copy of the runtime at path, or nil and why not.
// The copy stays open while others may use it; a replaced one is left to
// the garbage collector, which closes it once nothing refers to it.
func (s *sealedRuntimes) get(path string) (*os.File, error) {
	id, err := statBinary(path)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.copies[path]; ok && c.id == id {
		return c.file, nil
	}
	f, err := sealedCopy(path)
	if s.copies == nil {
		s.copies = map[string]sealedRuntime{}
	}
	s.copies[path] = sealedRuntime{file: f, id: id} // nil after a failure: not tried again until the binary changes
	return f, err
}
