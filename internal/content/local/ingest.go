package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/log"
	"github.com/opencontainers/go-digest"
)

// ingest is what an ingest directory records besides its data.
type ingest struct {
	ref       string
	startedAt time.Time
	total     int64
	expected  digest.Digest
}

func (s *Store) ingestDir(ref string) string {
	return filepath.Join(s.root, "ingest", digest.SHA256.FromString(ref).Encoded())
}

// lock claims ref for a Writer or an Abort and reports whether it was free.
func (s *Store) lock(ref string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked[ref] {
		return false
	}
	s.locked[ref] = true
	return true
}

func (s *Store) unlock(ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.locked, ref)
}

// Writer opens the ingest opts.Ref, creating it or resuming it at the end of
// its data. See the package documentation for locking and hashing.
func (s *Store) Writer(ctx context.Context, opts content.WriterOpts) (content.Writer, error) {
	if opts.Ref == "" {
		return nil, fmt.Errorf("open writer: ref must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if opts.Total < 0 {
		return nil, fmt.Errorf("open ingest ref %q: negative total %d: %w", opts.Ref, opts.Total, errdefs.ErrInvalidArgument)
	}
	if opts.Expected != "" {
		if err := content.ValidateDigest(opts.Expected); err != nil {
			return nil, fmt.Errorf("open ingest ref %q: expected %w", opts.Ref, err)
		}
	}
	if !s.lock(opts.Ref) {
		return nil, fmt.Errorf("open ingest ref %q: locked by another writer: %w", opts.Ref, errdefs.ErrUnavailable)
	}
	w, err := s.openWriter(opts)
	if err != nil {
		s.unlock(opts.Ref)
		return nil, fmt.Errorf("open ingest ref %q: %w", opts.Ref, err)
	}
	return w, nil
}

// openWriter creates or resumes the ingest opts.Ref, whose lock the caller
// holds.
func (s *Store) openWriter(opts content.WriterOpts) (*writer, error) {
	dir := s.ingestDir(opts.Ref)
	in, err := readIngest(dir)
	fresh := errors.Is(err, fs.ErrNotExist)
	if err != nil && !fresh {
		return nil, err
	}
	if fresh {
		in = ingest{startedAt: time.Now()}
	}
	changed, err := in.merge(opts)
	if err != nil {
		return nil, err
	}
	if in.expected != "" {
		if _, err := os.Lstat(s.blobPath(in.expected)); err == nil {
			return nil, fmt.Errorf("blob %s: %w", in.expected, errdefs.ErrAlreadyExists)
		}
	}
	if fresh {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		changed = []string{"ref", "startedat", "total", "expected"}
	}
	if err := in.write(dir, changed); err != nil {
		return nil, err
	}

	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	w := &writer{s: s, in: in, dir: dir, f: f, digester: in.algorithm().Digester(), updatedAt: in.startedAt}
	// Rehash what an earlier writer left, so the digest covers every byte.
	n, err := io.Copy(w.digester.Hash(), f)
	if err == nil && n > 0 {
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil {
			w.updatedAt = fi.ModTime()
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	w.offset = n
	return w, nil
}

// merge takes into in the ref and the expectations of opts and returns the
// names of the records that changed. Expectations already recorded cannot be
// changed: that fails with ErrFailedPrecondition.
func (in *ingest) merge(opts content.WriterOpts) ([]string, error) {
	var changed []string
	if in.ref != opts.Ref {
		in.ref = opts.Ref
		changed = append(changed, "ref")
	}
	if opts.Total != 0 && opts.Total != in.total {
		if in.total != 0 {
			return nil, fmt.Errorf("expected size %d, but the ingest was started for size %d: %w", opts.Total, in.total, errdefs.ErrFailedPrecondition)
		}
		in.total = opts.Total
		changed = append(changed, "total")
	}
	if opts.Expected != "" && opts.Expected != in.expected {
		if in.expected != "" {
			return nil, fmt.Errorf("expected digest %s, but the ingest was started for %s: %w", opts.Expected, in.expected, errdefs.ErrFailedPrecondition)
		}
		in.expected = opts.Expected
		changed = append(changed, "expected")
	}
	return changed, nil
}

// algorithm is the digest algorithm to hash the ingest with.
func (in *ingest) algorithm() digest.Algorithm {
	if in.expected != "" {
		return in.expected.Algorithm()
	}
	return digest.SHA256
}

// write stores the named records of in in dir; a zero total or expected is
// stored as an absent file.
func (in *ingest) write(dir string, names []string) error {
	for _, name := range names {
		var value string
		switch name {
		case "ref":
			value = in.ref
		case "startedat":
			value = in.startedAt.Format(time.RFC3339Nano)
		case "total":
			if in.total != 0 {
				value = strconv.FormatInt(in.total, 10)
			}
		case "expected":
			value = in.expected.String()
		}
		if value == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// readIngest reads the records of the ingest in dir. It fails with an error
// matching fs.ErrNotExist when there is no such ingest. A missing or empty
// record reads as its zero value.
func readIngest(dir string) (ingest, error) {
	var in ingest
	if _, err := os.Stat(dir); err != nil {
		return in, err
	}
	records := map[string]string{}
	for _, name := range []string{"ref", "startedat", "total", "expected"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return in, err
		}
		records[name] = strings.TrimSpace(string(b))
	}
	in.ref = records["ref"]
	var err error
	if v := records["startedat"]; v != "" {
		if in.startedAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return in, fmt.Errorf("ingest %s: startedat: %w", dir, err)
		}
	}
	if v := records["total"]; v != "" {
		if in.total, err = strconv.ParseInt(v, 10, 64); err != nil {
			return in, fmt.Errorf("ingest %s: total: %w", dir, err)
		}
	}
	if v := records["expected"]; v != "" {
		in.expected = digest.Digest(v)
		if err := content.ValidateDigest(in.expected); err != nil {
			return in, fmt.Errorf("ingest %s: expected: %w", dir, err)
		}
	}
	return in, nil
}

// status describes the ingest in dir from its records and its data file.
func status(dir string, in ingest) (content.Status, error) {
	st := content.Status{Ref: in.ref, Total: in.total, Expected: in.expected, StartedAt: in.startedAt, UpdatedAt: in.startedAt}
	fi, err := os.Stat(filepath.Join(dir, "data"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Created but not yet opened, or committed but not yet removed.
	case err != nil:
		return st, err
	default:
		st.Offset = fi.Size()
		st.UpdatedAt = fi.ModTime()
	}
	return st, nil
}

// Status describes the ingest ref.
func (s *Store) Status(ctx context.Context, ref string) (content.Status, error) {
	dir := s.ingestDir(ref)
	in, err := readIngest(dir)
	if err != nil {
		return content.Status{}, ingestError("status", ref, err)
	}
	in.ref = ref
	st, err := status(dir, in)
	if err != nil {
		return content.Status{}, ingestError("status", ref, err)
	}
	return st, nil
}

// ListStatuses describes the ingests matching filters; the only field is
// "ref".
func (s *Store) ListStatuses(ctx context.Context, filterArgs ...string) ([]content.Status, error) {
	filter, err := filters.Parse(filterArgs...)
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "ingest"))
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var statuses []content.Status
	for _, e := range entries {
		dir := filepath.Join(s.root, "ingest", e.Name())
		in, err := readIngest(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // committed or aborted since ReadDir
		} else if err != nil {
			return nil, fmt.Errorf("list ingests: %w", err)
		}
		if in.ref == "" {
			continue // interrupted while being created; a Writer for its ref repairs it
		}
		match := filter.Match(filters.AdaptorFunc(func(fieldpath []string) (string, bool) {
			return in.ref, len(fieldpath) == 1 && fieldpath[0] == "ref"
		}))
		if !match {
			continue
		}
		st, err := status(dir, in)
		if err != nil {
			return nil, fmt.Errorf("list ingests: %w", err)
		}
		statuses = append(statuses, st)
	}
	return statuses, nil
}

// Abort removes the ingest ref and its data. It fails with ErrUnavailable
// while a Writer holds the ref.
func (s *Store) Abort(ctx context.Context, ref string) error {
	if !s.lock(ref) {
		return fmt.Errorf("abort ingest ref %q: locked by a writer: %w", ref, errdefs.ErrUnavailable)
	}
	defer s.unlock(ref)
	dir := s.ingestDir(ref)
	if _, err := os.Stat(dir); err != nil {
		return ingestError("abort", ref, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return ingestError("abort", ref, err)
	}
	return nil
}

// ingestError wraps a filesystem error from operation op on ingest ref,
// turning a missing file into ErrNotFound.
func ingestError(op, ref string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s ingest ref %q: %w", op, ref, errdefs.ErrNotFound)
	}
	return fmt.Errorf("%s ingest ref %q: %w", op, ref, err)
}

// writer is a content.Writer holding the lock of its ref until Close or
// Commit.
type writer struct {
	s         *Store
	in        ingest
	dir       string
	f         *os.File // the data file; nil once closed or committed
	digester  digest.Digester
	offset    int64
	updatedAt time.Time
}

func (w *writer) errClosed(op string) error {
	return fmt.Errorf("%s ingest ref %q: writer is closed: %w", op, w.in.ref, errdefs.ErrFailedPrecondition)
}

// Write appends p to the data file and the running digest.
func (w *writer) Write(p []byte) (int, error) {
	if w.f == nil {
		return 0, w.errClosed("write")
	}
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.offset += int64(n)
	w.updatedAt = time.Now()
	if err != nil {
		return n, fmt.Errorf("write ingest ref %q: %w", w.in.ref, err)
	}
	return n, nil
}

// Digest is the digest of the data written so far, in the ingest's
// algorithm.
func (w *writer) Digest() digest.Digest { return w.digester.Digest() }

// Status describes the ingest.
func (w *writer) Status() (content.Status, error) {
	return content.Status{
		Ref:       w.in.ref,
		Offset:    w.offset,
		Total:     w.in.total,
		Expected:  w.in.expected,
		StartedAt: w.in.startedAt,
		UpdatedAt: w.updatedAt,
	}, nil
}

// Truncate discards all data when size is 0; other sizes are not supported.
func (w *writer) Truncate(size int64) error {
	if w.f == nil {
		return w.errClosed("truncate")
	}
	if size != 0 {
		return fmt.Errorf("truncate ingest ref %q to %d: only 0 is supported: %w", w.in.ref, size, errdefs.ErrNotImplemented)
	}
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate ingest ref %q: %w", w.in.ref, err)
	}
	w.digester = w.in.algorithm().Digester()
	w.offset = 0
	w.updatedAt = time.Now()
	return nil
}

// Close releases the ref and keeps the data for a later Writer. Closing a
// closed or committed writer does nothing.
func (w *writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	w.s.unlock(w.in.ref)
	if err != nil {
		return fmt.Errorf("close ingest ref %q: %w", w.in.ref, err)
	}
	return nil
}

// Commit verifies the data and renames it into blobs/, following the
// protocol in the package documentation. A zero size or empty expected
// falls back to what the ingest recorded. Labels are ignored.
func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest, _ map[string]string) error {
	if w.f == nil {
		return w.errClosed("commit")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit ingest ref %q: %w", w.in.ref, err)
	}
	if size < 0 {
		return fmt.Errorf("commit ingest ref %q: negative size %d: %w", w.in.ref, size, errdefs.ErrInvalidArgument)
	}
	if size == 0 {
		size = w.in.total
	}
	if expected == "" {
		expected = w.in.expected
	} else if err := content.ValidateDigest(expected); err != nil {
		return fmt.Errorf("commit ingest ref %q: expected %w", w.in.ref, err)
	}

	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit ingest ref %q: %w", w.in.ref, err)
	}
	if size > 0 && size != w.offset {
		return w.discard(fmt.Errorf("commit ingest ref %q: expected size %d, got %d: %w", w.in.ref, size, w.offset, errdefs.ErrFailedPrecondition))
	}
	dgst := w.digester.Digest()
	if expected != "" && expected.Algorithm() != dgst.Algorithm() {
		var err error
		if dgst, err = expected.Algorithm().FromReader(io.NewSectionReader(w.f, 0, w.offset)); err != nil {
			return fmt.Errorf("commit ingest ref %q: rehash with %s: %w", w.in.ref, expected.Algorithm(), err)
		}
	}
	if expected != "" && dgst != expected {
		return w.discard(fmt.Errorf("commit ingest ref %q: expected digest %s, got %s: %w", w.in.ref, expected, dgst, errdefs.ErrFailedPrecondition))
	}

	if err := w.f.Chmod(0o444); err != nil {
		return fmt.Errorf("commit ingest ref %q: %w", w.in.ref, err)
	}
	target := w.s.blobPath(dgst)
	w.s.mu.Lock()
	_, err := os.Lstat(target)
	if err == nil {
		w.s.mu.Unlock()
		return w.discard(fmt.Errorf("commit ingest ref %q: blob %s: %w", w.in.ref, dgst, errdefs.ErrAlreadyExists))
	}
	if errors.Is(err, fs.ErrNotExist) {
		err = os.Rename(filepath.Join(w.dir, "data"), target)
	}
	w.s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("commit ingest ref %q: %w", w.in.ref, err)
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return w.discard(fmt.Errorf("commit ingest ref %q: blob %s: %w", w.in.ref, dgst, err))
	}
	if err := w.discard(nil); err != nil {
		// The blob is committed and durable; only the empty ingest is left.
		log.G(ctx).Warn("commit left its ingest behind", "ingest_ref", w.in.ref, "digest", dgst.String(), "error", err)
	}
	return nil
}

// discard closes the writer, removes the ingest and releases the ref. It
// returns cause, joined with any error removing the ingest.
func (w *writer) discard(cause error) error {
	cerr := w.f.Close()
	w.f = nil
	rerr := os.RemoveAll(w.dir)
	w.s.unlock(w.in.ref)
	if rerr == nil {
		rerr = cerr
	}
	if rerr != nil {
		rerr = fmt.Errorf("remove ingest ref %q: %w", w.in.ref, rerr)
	}
	return errors.Join(cause, rerr)
}
