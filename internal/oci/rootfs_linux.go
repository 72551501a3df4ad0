package oci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxImageFile is the largest /etc/passwd or /etc/group read from an image.
const maxImageFile = 16 << 20

// readInRoot reads the regular file name (relative, e.g. "etc/passwd")
// inside the directory root, resolving symlinks and ".." as if root were
// "/" (openat2 RESOLVE_IN_ROOT), so that the image cannot point it at a host
// file. It returns nil and no error when the file does not exist. The
// open never blocks on a FIFO and the read stops at maxImageFile.
func readInRoot(root, name string) ([]byte, error) {
	dir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOCTTY | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	for range 16 {
		// The kernel asks for a retry when a rename raced the lookup.
		fd, err = unix.Openat2(int(dir.Fd()), name, how)
		if err != unix.EAGAIN && err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(root, name))
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxImageFile {
		return nil, fmt.Errorf("larger than %d bytes", maxImageFile)
	}
	return data, nil
}
