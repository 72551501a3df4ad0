// Package local is the content store on the local filesystem: committed blobs
// are plain files named by their digest, and each ingest is a directory that
// survives its writer, so a restarted or killed writer resumes where the data
// on disk ends.
//
// It owns the bytes only. It keeps no labels, namespaces or GC references:
// package metadata wraps a *Store and stores those in its database. Commit
// therefore ignores its labels argument, Info and Walk report no labels, and
// Update fails with ErrNotImplemented.
//
// # On-disk layout
//
//	ROOT/                        0700 when New creates it
//	  blobs/                     0700
//	    sha256/<hex>             0444, a committed blob
//	    sha512/<hex>             0444, a committed blob
//	  ingest/                    0700
//	    <sha256 hex of ref>/     0700, one ingest
//	      data                   0600, the bytes written so far
//	      ref                    the ref, verbatim
//	      startedat              when the ingest began, RFC 3339
//	      total                  expected size in decimal; absent when unknown
//	      expected               expected digest; absent when unknown
//
// An ingest's offset is the size of its data file and its update time is the
// data file's modification time, so a write costs one write(2) and nothing
// else. A blob's CreatedAt and UpdatedAt are its file's modification time.
// Files in blobs/ whose names are not valid digests are ignored.
//
// # Ingests
//
// At most one Writer per ref is open in a process; a second gets
// ErrUnavailable. The lock is held in memory: one process at a time owns a
// root. A Writer for a ref whose directory exists resumes it: it reopens data
// for appending and rehashes the bytes already there, so a writer killed
// mid-ingest loses nothing the kernel accepted. Writer hashes with the
// algorithm of the expected digest (its own, or the one the ingest recorded),
// sha256 when none is known.
//
// # Commit
//
// Commit makes a blob visible in this order, so that a crash at any point
// leaves either the ingest or the complete, durable blob:
//
//  1. fsync the data file;
//  2. check the size and the digest; on a mismatch remove the ingest and fail
//     with ErrFailedPrecondition, leaving no blob;
//  3. rename data to blobs/<alg>/<hex> (when that blob already exists, remove
//     the ingest and fail with ErrAlreadyExists instead);
//  4. fsync the blobs/<alg> directory;
//  5. remove the ingest directory.
//
// When Commit is given no size or digest, it checks those recorded from
// WriterOpts. A crash between steps 3 and 5 leaves an ingest directory with
// no data file, which reads as an empty ingest and can be aborted. The
// metadata layer records the blob in its database only after Commit returns.
package local
