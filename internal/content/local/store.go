package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/opencontainers/go-digest"
)

// algorithms are the digest algorithms with a directory under blobs/.
var algorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// Store is a content.Store kept in a directory. It is safe for concurrent use.
type Store struct {
	root string

	// mu guards locked and makes a commit's existence check and rename
	// atomic with respect to other commits in this process.
	mu     sync.Mutex
	locked map[string]bool // refs held by an open Writer or an Abort
}

var _ content.Store = (*Store)(nil)

// New opens the store kept in root, creating the directories it needs.
func New(root string) (*Store, error) {
	dirs := []string{root, filepath.Join(root, "blobs"), filepath.Join(root, "ingest")}
	for _, alg := range algorithms {
		dirs = append(dirs, filepath.Join(root, "blobs", alg.String()))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open content store %q: %w", root, err)
		}
	}
	// Make the directories durable before any blob is renamed into them.
	for _, dir := range []string{filepath.Join(root, "blobs"), root} {
		if err := syncDir(dir); err != nil {
			return nil, fmt.Errorf("open content store %q: %w", root, err)
		}
	}
	return &Store{root: root, locked: map[string]bool{}}, nil
}

func (s *Store) blobPath(dgst digest.Digest) string {
	return filepath.Join(s.root, "blobs", dgst.Algorithm().String(), dgst.Encoded())
}

// ReaderAt opens the blob dgst.
func (s *Store) ReaderAt(ctx context.Context, dgst digest.Digest) (content.ReaderAt, error) {
	if err := content.ValidateDigest(dgst); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(s.blobPath(dgst))
	if err != nil {
		return nil, blobError("open", dgst, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blobError("open", dgst, err)
	}
	return &readerAt{File: f, size: fi.Size()}, nil
}

type readerAt struct {
	*os.File
	size int64
}

func (r *readerAt) Size() int64 { return r.size }

// Info describes the blob dgst. Labels are always empty.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	if err := content.ValidateDigest(dgst); err != nil {
		return content.Info{}, fmt.Errorf("info blob: %w", err)
	}
	fi, err := os.Stat(s.blobPath(dgst))
	if err != nil {
		return content.Info{}, blobError("info", dgst, err)
	}
	return blobInfo(dgst, fi), nil
}

func blobInfo(dgst digest.Digest, fi fs.FileInfo) content.Info {
	return content.Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime(), UpdatedAt: fi.ModTime()}
}

// Update always fails: labels are stored by the metadata layer.
func (s *Store) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	return content.Info{}, fmt.Errorf("update blob %s: labels are stored by the metadata layer: %w", info.Digest, errdefs.ErrNotImplemented)
}

// Walk calls fn for each blob matching filters. The fields are "digest" and
// "size" (decimal); no blob has labels.
func (s *Store) Walk(ctx context.Context, fn content.WalkFunc, filterArgs ...string) error {
	filter, err := filters.Parse(filterArgs...)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, alg := range algorithms {
		entries, err := os.ReadDir(filepath.Join(s.root, "blobs", alg.String()))
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(alg, e.Name())
			if !e.Type().IsRegular() || dgst.Validate() != nil {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since ReadDir
			} else if err != nil {
				return fmt.Errorf("walk blobs: %w", err)
			}
			info := blobInfo(dgst, fi)
			if !filter.Match(blobAdaptor(info)) {
				continue
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

func blobAdaptor(info content.Info) filters.Adaptor {
	return filters.AdaptorFunc(func(fieldpath []string) (string, bool) {
		if len(fieldpath) != 1 {
			return "", false
		}
		switch fieldpath[0] {
		case "digest":
			return info.Digest.String(), true
		case "size":
			return strconv.FormatInt(info.Size, 10), true
		}
		return "", false
	})
}

// Delete removes the blob dgst. Readers already open keep reading it.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := content.ValidateDigest(dgst); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	if err := os.Remove(s.blobPath(dgst)); err != nil {
		return blobError("delete", dgst, err)
	}
	return nil
}

// blobError wraps a filesystem error from operation op on blob dgst, turning
// a missing file into ErrNotFound.
func blobError(op string, dgst digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s blob %s: %w", op, dgst, errdefs.ErrNotFound)
	}
	return fmt.Errorf("%s blob %s: %w", op, dgst, err)
}

// syncDir makes the entries of directory dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
