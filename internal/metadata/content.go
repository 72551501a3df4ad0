package metadata

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// ContentStore returns the content store as the namespace and lease of each
// call's context see it. Blobs are shared on disk between namespaces, but a
// namespace sees only those it committed (or adopted, under SharingShared).
func (m *DB) ContentStore() content.Store { return &contentStore{m: m} }

type contentStore struct{ m *DB }

// backendRef is the ref an ingest has in the wrapped store: refs are per
// namespace, so two namespaces may use the same ref at once.
func backendRef(ns, ref string) string { return ns + "/" + ref }

func blobBucket(tx *bolt.Tx, ns string, dgst digest.Digest) *bolt.Bucket {
	return bucketPath(nsBucket(tx, ns), bucketContent, bucketBlob, []byte(dgst))
}

func errBlobNotFound(dgst digest.Digest) error {
	return fmt.Errorf("blob %s: %w", dgst, errdefs.ErrNotFound)
}

func readInfo(b *bolt.Bucket, dgst digest.Digest) content.Info {
	return content.Info{
		Digest:    dgst,
		Size:      getInt(b, keySize),
		CreatedAt: getTime(b, keyCreatedAt),
		UpdatedAt: getTime(b, keyUpdatedAt),
		Labels:    readLabels(b),
	}
}

// nsAndDigest validates the namespace of ctx and dgst.
func nsAndDigest(ctx context.Context, dgst digest.Digest) (string, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return "", err
	}
	return ns, content.ValidateDigest(dgst)
}

// viewBlob runs fn on the record of dgst in ns, or returns NotFound.
func (cs *contentStore) viewBlob(ns string, dgst digest.Digest, fn func(*bolt.Bucket) error) error {
	return cs.m.db.View(func(tx *bolt.Tx) error {
		if nsBucket(tx, ns) == nil {
			return errNamespaceNotFound(ns)
		}
		b := blobBucket(tx, ns, dgst)
		if b == nil {
			return errBlobNotFound(dgst)
		}
		return fn(b)
	})
}

func (cs *contentStore) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	ns, err := nsAndDigest(ctx, dgst)
	if err != nil {
		return content.Info{}, err
	}
	var info content.Info
	err = cs.viewBlob(ns, dgst, func(b *bolt.Bucket) error {
		info = readInfo(b, dgst)
		return nil
	})
	return info, err
}

func (cs *contentStore) ReaderAt(ctx context.Context, dgst digest.Digest) (content.ReaderAt, error) {
	ns, err := nsAndDigest(ctx, dgst)
	if err != nil {
		return nil, err
	}
	if err := cs.viewBlob(ns, dgst, func(*bolt.Bucket) error { return nil }); err != nil {
		return nil, err
	}
	return cs.m.backend.ReaderAt(ctx, dgst)
}

func (cs *contentStore) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	ns, err := nsAndDigest(ctx, info.Digest)
	if err != nil {
		return content.Info{}, err
	}
	var out content.Info
	err = cs.m.db.Update(func(tx *bolt.Tx) error {
		b := blobBucket(tx, ns, info.Digest)
		if b == nil {
			return errBlobNotFound(info.Digest)
		}
		updated, err := labels.Update(readLabels(b), info.Labels, fieldpaths)
		if err != nil {
			return fmt.Errorf("update blob %s: %w", info.Digest, err)
		}
		if err := writeLabels(b, updated); err != nil {
			return err
		}
		if err := putTime(b, keyUpdatedAt, cs.m.now()); err != nil {
			return err
		}
		out = readInfo(b, info.Digest)
		return nil
	})
	return out, err
}

// infoFields exposes digest, size and labels.* of a blob to filters.
func infoFields(info content.Info) filters.Adaptor {
	return filters.AdaptorFunc(func(fp []string) (string, bool) {
		if len(fp) == 1 {
			switch fp[0] {
			case "digest":
				return info.Digest.String(), true
			case "size":
				return strconv.FormatInt(info.Size, 10), true
			}
		}
		return filters.LabelsField(info.Labels, fp)
	})
}

func (cs *contentStore) Walk(ctx context.Context, fn content.WalkFunc, filterStrs ...string) error {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return err
	}
	f, err := filters.Parse(filterStrs...)
	if err != nil {
		return err
	}
	var infos []content.Info
	err = cs.m.db.View(func(tx *bolt.Tx) error {
		nsb := nsBucket(tx, ns)
		if nsb == nil {
			return errNamespaceNotFound(ns)
		}
		blobs := bucketPath(nsb, bucketContent, bucketBlob)
		if blobs == nil {
			return nil
		}
		return blobs.ForEachBucket(func(k []byte) error {
			info := readInfo(blobs.Bucket(k), digest.Digest(k))
			if f.Match(infoFields(info)) {
				infos = append(infos, info)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	// fn runs outside the transaction so it may call back into the store.
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (cs *contentStore) Delete(ctx context.Context, dgst digest.Digest) error {
	ns, err := nsAndDigest(ctx, dgst)
	if err != nil {
		return err
	}
	err = cs.m.db.Update(func(tx *bolt.Tx) error {
		if nsBucket(tx, ns) == nil {
			return errNamespaceNotFound(ns)
		}
		blobs := bucketPath(nsBucket(tx, ns), bucketContent, bucketBlob)
		if blobs == nil || blobs.Bucket([]byte(dgst)) == nil {
			return errBlobNotFound(dgst)
		}
		return blobs.DeleteBucket([]byte(dgst))
	})
	if err == nil {
		cs.m.gc.schedule()
	}
	return err
}

func (cs *contentStore) Writer(ctx context.Context, opts content.WriterOpts) (content.Writer, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Ref == "" {
		return nil, fmt.Errorf("open ingest: ref must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if opts.Total < 0 {
		return nil, fmt.Errorf("ingest %q: negative total %d: %w", opts.Ref, opts.Total, errdefs.ErrInvalidArgument)
	}
	if opts.Expected != "" {
		if err := content.ValidateDigest(opts.Expected); err != nil {
			return nil, fmt.Errorf("ingest %q: %w", opts.Ref, err)
		}
		if adopted, err := cs.adopt(ctx, ns, opts.Expected); err != nil || adopted {
			if err == nil {
				err = fmt.Errorf("blob %s: %w", opts.Expected, errdefs.ErrAlreadyExists)
			}
			return nil, err
		}
	}
	lease, hasLease := leases.FromContext(ctx)
	err = cs.m.db.Update(func(tx *bolt.Tx) error {
		nsb, err := cs.m.createNSBucket(tx, ns)
		if err != nil {
			return err
		}
		ib, err := createBucketPath(nsb, bucketContent, bucketIngest, []byte(opts.Ref))
		if err != nil {
			return err
		}
		if ib.Get(keyCreatedAt) == nil {
			if err := putTime(ib, keyCreatedAt, cs.m.now()); err != nil {
				return err
			}
		}
		if opts.Expected != "" {
			if err := ib.Put(keyExpected, []byte(opts.Expected)); err != nil {
				return err
			}
		}
		if hasLease {
			if err := ib.Delete(keyExpireAt); err != nil {
				return err
			}
			return attachToLease(nsb, lease, leases.Resource{Type: leases.ResourceIngest, ID: opts.Ref})
		}
		if bucketPath(nsb, bucketLeases) != nil && ingestLeased(nsb, opts.Ref) {
			return nil
		}
		return putTime(ib, keyExpireAt, cs.m.now().Add(cs.m.opts.IngestExpiry))
	})
	if err != nil {
		return nil, err
	}
	backendOpts := content.WriterOpts{Ref: backendRef(ns, opts.Ref), Total: opts.Total, Expected: opts.Expected}
	if cs.m.opts.ContentSharing == SharingIsolated {
		// The namespace must send the bytes even when they are on disk
		// already, so the store must not short-cut the ingest; Commit
		// still checks the expected digest.
		backendOpts.Expected = ""
	}
	w, err := cs.m.backend.Writer(ctx, backendOpts)
	if err != nil {
		return nil, fmt.Errorf("ingest %q: %w", opts.Ref, trimRef(err, ns))
	}
	return &writer{Writer: w, m: cs.m, ns: ns, ref: opts.Ref}, nil
}

// adopt makes an existing blob visible in ns without its bytes being sent,
// when the sharing policy allows it. It reports whether the blob is now
// visible (it may already have been).
func (cs *contentStore) adopt(ctx context.Context, ns string, dgst digest.Digest) (bool, error) {
	var visible bool
	if err := cs.m.db.View(func(tx *bolt.Tx) error {
		visible = blobBucket(tx, ns, dgst) != nil
		return nil
	}); err != nil || visible {
		return visible, err
	}
	if cs.m.opts.ContentSharing != SharingShared {
		return false, nil
	}
	defer cs.m.locks.Lock(string(dgst))()
	info, err := cs.m.backend.Info(ctx, dgst)
	if errdefs.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, cs.m.recordBlob(ctx, ns, info, nil, "")
}

// recordBlob records a blob present on disk in ns, attaches it to the lease
// of ctx, and drops the ingest ref (if any) that produced it. It reports
// ErrAlreadyExists when ns had the blob already (the lease and ingest are
// still handled).
func (m *DB) recordBlob(ctx context.Context, ns string, info content.Info, lbls map[string]string, ref string) error {
	lease, hasLease := leases.FromContext(ctx)
	var exists bool
	err := m.db.Update(func(tx *bolt.Tx) error {
		nsb, err := m.createNSBucket(tx, ns)
		if err != nil {
			return err
		}
		blobs, err := createBucketPath(nsb, bucketContent, bucketBlob)
		if err != nil {
			return err
		}
		if blobs.Bucket([]byte(info.Digest)) != nil {
			exists = true
		} else {
			b, err := blobs.CreateBucket([]byte(info.Digest))
			if err != nil {
				return err
			}
			now := m.now()
			if err := putInt(b, keySize, info.Size); err != nil {
				return err
			}
			if err := putTime(b, keyCreatedAt, now); err != nil {
				return err
			}
			if err := putTime(b, keyUpdatedAt, now); err != nil {
				return err
			}
			if err := writeLabels(b, lbls); err != nil {
				return err
			}
		}
		if hasLease {
			if err := attachToLease(nsb, lease, leases.Resource{Type: leases.ResourceContent, ID: info.Digest.String()}); err != nil {
				return err
			}
		}
		if ref != "" {
			return dropIngest(nsb, ref)
		}
		return nil
	})
	if err == nil && exists {
		err = fmt.Errorf("blob %s: %w", info.Digest, errdefs.ErrAlreadyExists)
	}
	return err
}

// dropIngest removes the record of ingest ref from nsb and from its leases.
func dropIngest(nsb *bolt.Bucket, ref string) error {
	if ingests := bucketPath(nsb, bucketContent, bucketIngest); ingests != nil && ingests.Bucket([]byte(ref)) != nil {
		if err := ingests.DeleteBucket([]byte(ref)); err != nil {
			return err
		}
	}
	ls := nsb.Bucket(bucketLeases)
	if ls == nil {
		return nil
	}
	return ls.ForEachBucket(func(id []byte) error {
		if ib := ls.Bucket(id).Bucket(bucketIngest); ib != nil {
			return ib.Delete([]byte(ref))
		}
		return nil
	})
}

// ingestLeased reports whether some lease of nsb holds ingest ref.
func ingestLeased(nsb *bolt.Bucket, ref string) bool {
	held := false
	ls := nsb.Bucket(bucketLeases)
	_ = ls.ForEachBucket(func(id []byte) error {
		if ib := ls.Bucket(id).Bucket(bucketIngest); ib != nil && ib.Get([]byte(ref)) != nil {
			held = true
		}
		return nil
	})
	return held
}

// trimRef hides the namespace prefix of backend refs in err's text, keeping
// its kind.
func trimRef(err error, ns string) error {
	return &trimmedError{err: err, ns: ns}
}

type trimmedError struct {
	err error
	ns  string
}

func (e *trimmedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), `"`+e.ns+"/", `"`)
}
func (e *trimmedError) Unwrap() error { return e.err }

// writer is a backend writer whose commit records the blob in a namespace.
type writer struct {
	content.Writer
	m   *DB
	ns  string
	ref string
}

func (w *writer) Status() (content.Status, error) {
	st, err := w.Writer.Status()
	st.Ref = w.ref
	return st, err
}

func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest, lbls map[string]string) error {
	if err := labels.ValidateAll(lbls); err != nil {
		return fmt.Errorf("commit %q: %w", w.ref, err)
	}
	actual := expected
	if actual == "" {
		actual = w.Writer.Digest()
	}
	defer w.m.locks.Lock(string(actual))()
	err := w.Writer.Commit(ctx, size, expected, nil)
	switch {
	case err == nil:
	case errdefs.IsAlreadyExists(err):
		// Verified against its digest by the store and already on disk.
	default:
		// The store discarded the ingest; drop its record too.
		_ = w.m.db.Update(func(tx *bolt.Tx) error {
			if nsb := nsBucket(tx, w.ns); nsb != nil {
				return dropIngest(nsb, w.ref)
			}
			return nil
		})
		return fmt.Errorf("commit %q: %w", w.ref, trimRef(err, w.ns))
	}
	info, ierr := w.m.backend.Info(ctx, actual)
	if ierr != nil {
		return fmt.Errorf("commit %q: %w", w.ref, ierr)
	}
	if err == nil {
		w.m.blobs.Add(1)
		w.m.blobBytes.Add(info.Size)
	}
	return w.m.recordBlob(ctx, w.ns, info, lbls, w.ref)
}

func (cs *contentStore) Status(ctx context.Context, ref string) (content.Status, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return content.Status{}, err
	}
	if err := cs.m.db.View(func(tx *bolt.Tx) error {
		if bucketPath(nsBucket(tx, ns), bucketContent, bucketIngest, []byte(ref)) == nil {
			return fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
		}
		return nil
	}); err != nil {
		return content.Status{}, err
	}
	st, err := cs.m.backend.Status(ctx, backendRef(ns, ref))
	if err != nil {
		return content.Status{}, fmt.Errorf("ingest %q: %w", ref, trimRef(err, ns))
	}
	st.Ref = ref
	return st, nil
}

func (cs *contentStore) ListStatuses(ctx context.Context, filterStrs ...string) ([]content.Status, error) {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filters.Parse(filterStrs...)
	if err != nil {
		return nil, err
	}
	var refs []string
	if err := cs.m.db.View(func(tx *bolt.Tx) error {
		if nsBucket(tx, ns) == nil {
			return errNamespaceNotFound(ns)
		}
		ingests := bucketPath(nsBucket(tx, ns), bucketContent, bucketIngest)
		if ingests == nil {
			return nil
		}
		return ingests.ForEachBucket(func(k []byte) error {
			refs = append(refs, string(k))
			return nil
		})
	}); err != nil {
		return nil, err
	}
	var out []content.Status
	for _, ref := range refs {
		matches := f.Match(filters.AdaptorFunc(func(fp []string) (string, bool) {
			return ref, len(fp) == 1 && fp[0] == "ref"
		}))
		if !matches {
			continue
		}
		st, err := cs.m.backend.Status(ctx, backendRef(ns, ref))
		if errdefs.IsNotFound(err) {
			continue // recorded but not yet opened, or just committed
		} else if err != nil {
			return nil, err
		}
		st.Ref = ref
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

func (cs *contentStore) Abort(ctx context.Context, ref string) error {
	ns, err := namespaceFrom(ctx)
	if err != nil {
		return err
	}
	var known bool
	if err := cs.m.db.View(func(tx *bolt.Tx) error {
		known = bucketPath(nsBucket(tx, ns), bucketContent, bucketIngest, []byte(ref)) != nil
		return nil
	}); err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
	}
	if err := cs.m.backend.Abort(ctx, backendRef(ns, ref)); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("abort ingest %q: %w", ref, trimRef(err, ns))
	}
	return cs.m.db.Update(func(tx *bolt.Tx) error {
		if nsb := nsBucket(tx, ns); nsb != nil {
			return dropIngest(nsb, ref)
		}
		return nil
	})
}
