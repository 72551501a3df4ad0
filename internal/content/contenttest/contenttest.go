// Package contenttest is the conformance suite for content.Store
// implementations, in the manner of testing/fstest: an implementation's test
// calls Run with a Factory, and RunLabels too when it keeps labels.
//
//	func TestStore(t *testing.T) {
//		contenttest.Run(t, func(ctx context.Context, root string) (content.Store, func() error, error) {
//			s, err := local.New(root)
//			return s, func() error { return nil }, err
//		})
//	}
//
// Every call the suite makes carries the namespace "contenttest"
// (namespaces.WithNamespace), so stores that require one work unchanged.
//
// One case kills a writer: Run re-executes the test binary (os.Executable) with
// -test.run selecting the test that called Run and the environment variable
// BERTH_CONTENTTEST_CHILD set. In that process Run opens the store and writes
// until it is killed, instead of running the suite. So Run must be called
// from a test that the -test.run pattern can select on its own, and the test
// must not do anything before Run that a second process would disturb.
//
// The package is imported only by tests.
package contenttest

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"
)

// Factory opens the store kept in root (an existing, possibly empty dir).
// Closing must release everything (files, locks, DBs), so that another
// process can open the same root afterwards. ctx carries the suite's
// namespace, like every later call.
type Factory func(ctx context.Context, root string) (store content.Store, closeFn func() error, err error)

// namespace is the namespace every call of the suite carries.
const namespace = "contenttest"

type testCase struct {
	name string
	fn   func(t *testing.T, factory Factory)
}

// Run checks the behaviour every content.Store must have: ingests, commits,
// resuming (also after a killed writer), locking, reading, walking, deleting
// and digest validation. Labels are not looked at.
func Run(t *testing.T, factory Factory) {
	if spec, ok := childSpecFromEnv(t); ok {
		runChild(t, factory, spec)
		return
	}
	run(t, factory, baseCases)
}

// RunLabels checks how a store keeps labels: on Commit, in Info and Walk,
// through Update with the fieldpaths "labels" and "labels.KEY", in Walk
// filters, and the rejection of oversized labels. Only stores that keep
// labels pass it.
func RunLabels(t *testing.T, factory Factory) {
	if _, ok := childSpecFromEnv(t); ok {
		return // the child process only writes, in Run
	}
	run(t, factory, labelCases)
}

func run(t *testing.T, factory Factory, cases []testCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, factory) })
	}
}

// sortDigests makes cmp.Diff ignore the order of digests.
var sortDigests = cmpopts.SortSlices(func(a, b digest.Digest) bool { return a < b })

// testContext is t's context carrying the suite's namespace.
func testContext(t *testing.T) context.Context {
	return namespaces.WithNamespace(t.Context(), namespace)
}

// openStore opens the store in root and closes it when t ends, unless the
// returned function has closed it already.
func openStore(t *testing.T, factory Factory, root string) (content.Store, func()) {
	t.Helper()
	s, closeFn, err := factory(testContext(t), root)
	if err != nil {
		t.Fatalf("open store in %s: %v", root, err)
	}
	var once sync.Once
	closeStore := func() {
		once.Do(func() {
			if err := closeFn(); err != nil {
				t.Errorf("close store in %s: %v", root, err)
			}
		})
	}
	t.Cleanup(closeStore)
	return s, closeStore
}

// newStore opens a store in a new temporary directory.
func newStore(t *testing.T, factory Factory) content.Store {
	t.Helper()
	s, _ := openStore(t, factory, t.TempDir())
	return s
}

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(seed byte, n int) []byte {
	var key [32]byte
	key[0] = seed
	p := make([]byte, n)
	rand.NewChaCha8(key).Read(p)
	return p
}

// openWriter opens a writer or fails t.
func openWriter(t *testing.T, s content.Ingester, opts content.WriterOpts) content.Writer {
	t.Helper()
	w, err := s.Writer(testContext(t), opts)
	if err != nil {
		t.Fatalf("Writer(%+v): %v", opts, err)
	}
	return w
}

// writeChunks writes p to w in chunks of at most size bytes or fails t.
func writeChunks(t *testing.T, w content.Writer, p []byte, size int) {
	t.Helper()
	for len(p) > 0 {
		chunk := p[:min(size, len(p))]
		n, err := w.Write(chunk)
		if err != nil || n != len(chunk) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(chunk), n, err)
		}
		p = p[n:]
	}
}

// closeWriter closes w or fails t.
func closeWriter(t *testing.T, w content.Writer) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

// commitBlob ingests p under ref, commits it with labels and returns its
// digest, or fails t.
func commitBlob(t *testing.T, s content.Ingester, ref string, p []byte, labels map[string]string) digest.Digest {
	t.Helper()
	dgst := digest.FromBytes(p)
	w := openWriter(t, s, content.WriterOpts{Ref: ref, Total: int64(len(p)), Expected: dgst})
	writeChunks(t, w, p, 32<<10)
	if err := w.Commit(testContext(t), int64(len(p)), dgst, labels); err != nil {
		t.Fatalf("commit ingest %q: %v", ref, err)
	}
	closeWriter(t, w)
	return dgst
}

// walkDigests returns the sorted digests Walk yields for filters, or fails t.
func walkDigests(t *testing.T, s content.Manager, filters ...string) []digest.Digest {
	t.Helper()
	var ds []digest.Digest
	err := s.Walk(testContext(t), func(info content.Info) error {
		ds = append(ds, info.Digest)
		return nil
	}, filters...)
	if err != nil {
		t.Fatalf("Walk(%q): %v", filters, err)
	}
	slices.Sort(ds)
	return ds
}

// wantErr fails t unless err is of kind.
func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got error %v, want %v", what, err, kind)
	}
}

// wantNoBlob fails t if the blob dgst is visible through Info, ReaderAt or
// Walk.
func wantNoBlob(t *testing.T, s content.Store, dgst digest.Digest) {
	t.Helper()
	ctx := testContext(t)
	_, err := s.Info(ctx, dgst)
	wantErr(t, "Info("+dgst.String()+")", err, errdefs.ErrNotFound)
	ra, err := s.ReaderAt(ctx, dgst)
	if err == nil {
		ra.Close()
	}
	wantErr(t, "ReaderAt("+dgst.String()+")", err, errdefs.ErrNotFound)
	if slices.Contains(walkDigests(t, s), dgst) {
		t.Errorf("Walk yields %s", dgst)
	}
}

// wantNoIngest fails t if the ingest ref is visible through Status or
// ListStatuses.
func wantNoIngest(t *testing.T, s content.Store, ref string) {
	t.Helper()
	ctx := testContext(t)
	_, err := s.Status(ctx, ref)
	wantErr(t, "Status("+ref+")", err, errdefs.ErrNotFound)
	sts, err := s.ListStatuses(ctx)
	if err != nil {
		t.Fatalf("ListStatuses: %v", err)
	}
	for _, st := range sts {
		if st.Ref == ref {
			t.Errorf("ListStatuses yields ingest %q: %+v", ref, st)
		}
	}
}
