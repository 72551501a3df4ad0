package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// store is where a Reader finds files by slash-separated relative name: a
// tar indexed in memory or a directory. open returns a reader of the
// regular file name and its size, or an error of kind ErrNotFound.
type store interface {
	open(name string) (io.ReadCloser, int64, error)
}

// tarStore serves the regular files of a tar by their offsets, without
// copying them.
type tarStore struct {
	r       io.ReaderAt
	entries map[string]tarEntry
}

type tarEntry struct{ off, size int64 }

// indexTar reads the headers of the tar in r and records where each
// regular file's data is. Links are resolved within the tar only (see the
// package doc).
func indexTar(r io.ReaderAt, size int64) (*tarStore, error) {
	var magic [4]byte
	if n, _ := r.ReadAt(magic[:], 0); n == len(magic) {
		if c := compression(magic[:]); c != "" {
			return nil, fmt.Errorf("archive is %s-compressed: decompress it first: %w", c, errdefs.ErrInvalidArgument)
		}
	}
	sr := io.NewSectionReader(r, 0, size)
	tr := tar.NewReader(sr)
	s := &tarStore{r: r, entries: map[string]tarEntry{}}
	links := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if isSparse(hdr) {
				return nil, fmt.Errorf("archive entry %q: sparse files are not supported: %w", hdr.Name, errdefs.ErrNotImplemented)
			}
			off, err := sr.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			if hdr.Size < 0 || off+hdr.Size > size {
				return nil, fmt.Errorf("archive entry %q: %d bytes at offset %d run past the end of the archive: %w", hdr.Name, hdr.Size, off, errdefs.ErrInvalidArgument)
			}
			s.entries[name] = tarEntry{off: off, size: hdr.Size}
			delete(links, name)
		case tar.TypeSymlink:
			if !path.IsAbs(hdr.Linkname) {
				links[name] = path.Join(path.Dir(name), hdr.Linkname)
			}
		case tar.TypeLink:
			links[name] = path.Clean(hdr.Linkname)
		}
	}
	for name, target := range links {
		if e, ok := s.entries[target]; ok {
			if _, exists := s.entries[name]; !exists {
				s.entries[name] = e
			}
		}
	}
	return s, nil
}

// entryName cleans a tar entry name ("./index.json" is "index.json", "./"
// is ""), refusing names that are absolute or leave the archive.
func entryName(name string) (string, error) {
	clean := path.Clean(name)
	if path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("archive entry %q: name is outside the archive: %w", name, errdefs.ErrInvalidArgument)
	}
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func (s *tarStore) open(name string) (io.ReadCloser, int64, error) {
	e, ok := s.entries[name]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, errdefs.ErrNotFound)
	}
	return io.NopCloser(io.NewSectionReader(s.r, e.off, e.size)), e.size, nil
}

// dirStore serves the regular files of a directory, never leaving it.
type dirStore struct{ root *os.Root }

func (s dirStore) open(name string) (io.ReadCloser, int64, error) {
	f, err := s.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%s: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: not a regular file: %w", name, errdefs.ErrInvalidArgument)
	}
	return f, fi.Size(), nil
}

// readFile reads a small file (index.json, manifest.json) of a store.
func readFile(s store, name string) ([]byte, error) {
	const limit = 16 << 20
	rc, size, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > limit {
		return nil, fmt.Errorf("%s: %d bytes is over the %d MiB limit: %w", name, size, limit>>20, errdefs.ErrInvalidArgument)
	}
	data, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// compression names the compression whose magic number starts b, or "".
func compression(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return ""
}
