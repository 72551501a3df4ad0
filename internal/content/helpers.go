package content

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

// ReadBlob reads a whole committed blob into memory. Use it for small blobs
// (manifests, configs) only.
func ReadBlob(ctx context.Context, p Provider, dgst digest.Digest) ([]byte, error) {
	ra, err := p.ReaderAt(ctx, dgst)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	buf := make([]byte, ra.Size())
	n, err := ra.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == ra.Size()) {
		return nil, fmt.Errorf("read blob %s: %w", dgst, err)
	}
	return buf, nil
}

// WriteBlob ingests r under opts.Ref and commits it with the given labels. It
// resumes a partial ingest of the same ref by skipping the bytes already
// written when r is an io.Seeker, and restarts it otherwise. A blob that is
// already present is not an error.
func WriteBlob(ctx context.Context, ing Ingester, opts WriterOpts, r io.Reader, labels map[string]string) error {
	w, err := ing.Writer(ctx, opts)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	defer w.Close()
	st, err := w.Status()
	if err != nil {
		return err
	}
	if st.Offset > 0 {
		if seeker, ok := r.(io.Seeker); ok {
			if _, err := seeker.Seek(st.Offset, io.SeekStart); err != nil {
				return fmt.Errorf("ingest %q: seek to %d: %w", opts.Ref, st.Offset, err)
			}
		} else if err := w.Truncate(0); err != nil {
			return err
		}
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("ingest %q: %w", opts.Ref, err)
	}
	if err := w.Commit(ctx, opts.Total, opts.Expected, labels); err != nil && !errdefs.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// ValidateDigest checks that d is a well-formed digest of a supported
// algorithm (sha256 or sha512).
func ValidateDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %v: %w", string(d), err, errdefs.ErrInvalidArgument)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return nil
	default:
		return fmt.Errorf("digest %q: algorithm %q not supported (use sha256 or sha512): %w", string(d), d.Algorithm(), errdefs.ErrInvalidArgument)
	}
}
