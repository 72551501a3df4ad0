// Package content defines the content store: immutable blobs addressed by
// digest, written through resumable ingests named by a ref.
//
// Words used throughout berth:
//   - digest: "algorithm:hex" of a blob's bytes (sha256, or sha512).
//   - ref: a client-chosen name for one ingest (an upload in progress). Only
//     one Writer per ref may be open at a time; a second gets ErrUnavailable
//     ("locked"). A ref's data survives the writer: opening the ref again
//     resumes at the offset already written.
//   - commit: checks size and digest, then makes the blob visible, atomically.
//
// This package holds interfaces and plain types only; package local stores
// blobs on disk and package metadata adds namespaces, labels and GC.
package content

import (
	"context"
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
	UpdatedAt time.Time
	Labels    map[string]string
}

// Status describes an ingest in progress.
type Status struct {
	Ref       string
	Offset    int64 // bytes written so far
	Total     int64 // expected size, 0 when unknown
	Expected  digest.Digest
	StartedAt time.Time
	UpdatedAt time.Time
}

// ReaderAt reads a committed blob at any offset. Size is the blob's size.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Provider opens committed blobs for reading.
type Provider interface {
	// ReaderAt opens the blob with the given digest; ErrNotFound if absent.
	ReaderAt(ctx context.Context, dgst digest.Digest) (ReaderAt, error)
}

// WriterOpts names an ingest and what it is expected to produce.
type WriterOpts struct {
	Ref      string        // required
	Total    int64         // expected size, 0 when unknown
	Expected digest.Digest // expected digest, "" when unknown
}

// Ingester starts or resumes ingests.
type Ingester interface {
	// Writer opens the ingest named by opts.Ref, creating it or resuming it
	// at its current offset. It fails with ErrUnavailable while another
	// Writer holds the same ref, and with ErrAlreadyExists when
	// opts.Expected is already committed.
	Writer(ctx context.Context, opts WriterOpts) (Writer, error)
}

// Writer appends to one ingest. It is not safe for concurrent use.
// Close releases the ref and keeps the data written so far, so a later
// Writer for the same ref resumes; Commit and Abort (IngestManager) end it.
type Writer interface {
	io.WriteCloser
	// Digest is the digest of the bytes written so far.
	Digest() digest.Digest
	// Status reports the ingest's offset and expectations.
	Status() (Status, error)
	// Truncate discards data past size; only 0 is supported.
	Truncate(size int64) error
	// Commit verifies the bytes written against size and expected (each
	// checked when non-zero) and makes the blob visible under its digest.
	// On mismatch it returns ErrFailedPrecondition and no blob appears;
	// the ingest is discarded. If the blob already exists it returns
	// ErrAlreadyExists and the ingest is discarded.
	Commit(ctx context.Context, size int64, expected digest.Digest, labels map[string]string) error
}

// WalkFunc is called for each blob by Manager.Walk.
type WalkFunc func(Info) error

// Manager reads and changes information about committed blobs.
type Manager interface {
	// Info returns the blob's Info; ErrNotFound if absent.
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
	// Update replaces the labels named in fieldpaths ("labels" for all,
	// "labels.KEY" for one) with those in info, and returns the new Info.
	Update(ctx context.Context, info Info, fieldpaths ...string) (Info, error)
	// Walk calls fn for every blob matching any of the filters (syntax:
	// package filters; fields: digest, size, labels.KEY).
	Walk(ctx context.Context, fn WalkFunc, filters ...string) error
	// Delete removes the blob; ErrNotFound if absent.
	Delete(ctx context.Context, dgst digest.Digest) error
}

// IngestManager inspects and ends ingests.
type IngestManager interface {
	// Status returns the ingest's Status; ErrNotFound if there is none.
	Status(ctx context.Context, ref string) (Status, error)
	// ListStatuses returns the ingests whose refs match all filters
	// (only "ref==X" and "ref~=REGEXP" are meaningful).
	ListStatuses(ctx context.Context, filters ...string) ([]Status, error)
	// Abort discards the ingest and its data; ErrNotFound if there is none.
	Abort(ctx context.Context, ref string) error
}

// Store is a whole content store.
type Store interface {
	Provider
	Ingester
	Manager
	IngestManager
}
