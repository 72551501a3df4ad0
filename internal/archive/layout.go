package archive

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// WriteLayout adds images, with every platform, to the OCI image layout
// in directory dir, creating the directory and the layout when missing
// (a directory holding anything else is refused with
// ErrFailedPrecondition). Blobs the layout has (same path and size) are
// not fetched; the others are written to a temporary file, checked
// against their descriptor and renamed into place. Once every blob is in,
// index.json is replaced in one rename: each image gets an entry named by
// its Name, replacing an entry of the same name (see addToIndex). A
// failed write leaves index.json as it was; blobs already written stay,
// unreferenced, and are reused by the next write. Writers must not share
// a layout at the same time.
func WriteLayout(ctx context.Context, dir string, f Fetcher, images []Image) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	defer root.Close()
	if err := writeLayout(ctx, root, f, images); err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	return nil
}

func writeLayout(ctx context.Context, root *os.Root, f Fetcher, images []Image) error {
	entries, err := layoutEntries(root)
	if err != nil {
		return err
	}
	if _, err := root.Stat(layoutFile); errors.Is(err, fs.ErrNotExist) {
		err = writeAtomic(root, layoutFile, func(w io.Writer) error {
			_, err := w.Write(layoutJSON())
			return err
		})
		if err != nil {
			return err
		}
	}
	err = Walk(ctx, f, targets(images), func(desc ocispec.Descriptor, manifest []byte) error {
		name := blobPath(desc.Digest)
		if fi, err := root.Stat(name); err == nil && fi.Mode().IsRegular() && fi.Size() == desc.Size {
			return nil
		}
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return err
		}
		return writeAtomic(root, name, func(w io.Writer) error {
			if manifest != nil {
				_, err := w.Write(manifest)
				return err
			}
			return copyBlob(ctx, w, f, desc)
		})
	})
	if err != nil {
		return err
	}
	for _, img := range images {
		entries = addToIndex(entries, img)
	}
	data, err := json.Marshal(newIndex(entries))
	if err != nil {
		return err
	}
	return writeAtomic(root, indexFile, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// layoutEntries returns the index.json entries of the layout in root; none
// for an empty directory, or one a failed first write left with only
// oci-layout and blobs.
func layoutEntries(root *os.Root) ([]ocispec.Descriptor, error) {
	if _, err := root.Stat(indexFile); errors.Is(err, fs.ErrNotExist) {
		names, err := fs.ReadDir(root.FS(), ".")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if n.Name() != layoutFile && n.Name() != "blobs" {
				return nil, fmt.Errorf("directory is not empty and not an OCI image layout (it has %q and no %s): %w", n.Name(), indexFile, errdefs.ErrFailedPrecondition)
			}
		}
		return nil, nil
	}
	r, err := newReader(dirStore{root})
	if err != nil {
		return nil, err
	}
	if r.format != FormatOCI {
		return nil, fmt.Errorf("directory holds a %s, not an OCI image layout: %w", r.format, errdefs.ErrFailedPrecondition)
	}
	return targets(r.images), nil
}

// writeAtomic writes name in root through a temporary file in the same
// directory, renamed over name when write succeeds and removed otherwise.
func writeAtomic(root *os.Root, name string, write func(io.Writer) error) (err error) {
	tmp := path.Join(path.Dir(name), ".tmp-"+rand.Text())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			root.Remove(tmp)
		}
	}()
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return root.Rename(tmp, name)
}
