package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/content/contenttest"
	"github.com/berth-dev/berth/internal/content/local"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/gc"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/opencontainers/go-digest"
)

func openDB(t testing.TB, root string, opts Options) *DB {
	t.Helper()
	cs, err := local.New(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	if opts.GCDelay == 0 {
		opts.GCDelay = -1 // tests collect explicitly
	}
	db, err := Open(context.Background(), filepath.Join(root, "meta.db"), cs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newDB(t testing.TB, opts Options) *DB {
	db := openDB(t, t.TempDir(), opts)
	t.Cleanup(func() { db.Close() })
	return db
}

func nsCtx(ns string) context.Context {
	return namespaces.WithNamespace(context.Background(), ns)
}

func factory(ctx context.Context, root string) (content.Store, func() error, error) {
	cs, err := local.New(filepath.Join(root, "content"))
	if err != nil {
		return nil, nil, err
	}
	db, err := Open(ctx, filepath.Join(root, "meta.db"), cs, Options{GCDelay: -1})
	if err != nil {
		return nil, nil, err
	}
	return db.ContentStore(), db.Close, nil
}

func TestContentStoreConformance(t *testing.T) {
	contenttest.Run(t, factory)
	contenttest.RunLabels(t, factory)
}

// commit writes data as a blob in the namespace (and lease) of ctx.
func commit(t testing.TB, ctx context.Context, cs content.Store, data string, lbls map[string]string) digest.Digest {
	t.Helper()
	dgst := digest.FromString(data)
	err := content.WriteBlob(ctx, cs, content.WriterOpts{Ref: "ref-" + dgst.Encoded()[:12], Total: int64(len(data)), Expected: dgst}, strings.NewReader(data), lbls)
	if err != nil {
		t.Fatalf("commit %q: %v", data, err)
	}
	return dgst
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got %v, want %v", what, err, kind)
	}
}

func TestNamespacesDoNotSeeEachOther(t *testing.T) {
	db := newDB(t, Options{ContentSharing: SharingIsolated})
	cs := db.ContentStore()
	a, b := nsCtx("team-a"), nsCtx("team-b")
	if err := db.EnsureNamespace(context.Background(), "team-b"); err != nil {
		t.Fatal(err)
	}
	dgst := commit(t, a, cs, "secret layer", nil)

	_, err := cs.Info(b, dgst)
	wantKind(t, "Info from other namespace", err, errdefs.ErrNotFound)
	_, err = cs.ReaderAt(b, dgst)
	wantKind(t, "ReaderAt from other namespace", err, errdefs.ErrNotFound)
	wantKind(t, "Delete from other namespace", cs.Delete(b, dgst), errdefs.ErrNotFound)
	var seen []digest.Digest
	if err := cs.Walk(b, func(i content.Info) error { seen = append(seen, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 0 {
		t.Errorf("namespace b walks %v", seen)
	}
	// Isolated sharing: naming the digest is not enough, b must send the bytes.
	w, err := cs.Writer(b, content.WriterOpts{Ref: "x", Expected: dgst})
	if err != nil {
		t.Fatalf("isolated Writer: %v", err)
	}
	w.Close()
	if _, err := cs.Info(b, dgst); !errdefs.IsNotFound(err) {
		t.Errorf("blob visible in b before its bytes were sent: %v", err)
	}
	commit(t, b, cs, "secret layer", nil)
	if _, err := cs.Info(b, dgst); err != nil {
		t.Errorf("after b sent the bytes: %v", err)
	}
	if n, _ := db.BlobStats(); n != 1 {
		t.Errorf("blob stored %d times on disk, want once", n)
	}
}

func TestSharedPolicyAdoptsBlobByDigest(t *testing.T) {
	db := newDB(t, Options{})
	cs := db.ContentStore()
	dgst := commit(t, nsCtx("a"), cs, "base layer", nil)
	_, err := cs.Writer(nsCtx("b"), content.WriterOpts{Ref: "pull", Expected: dgst})
	wantKind(t, "Writer for a blob on disk", err, errdefs.ErrAlreadyExists)
	if _, err := cs.Info(nsCtx("b"), dgst); err != nil {
		t.Fatalf("adopted blob not visible: %v", err)
	}
	_, err = cs.Writer(nsCtx("c"), content.WriterOpts{Ref: "pull", Expected: digest.FromString("absent")})
	if err != nil {
		t.Fatalf("Writer for an absent blob: %v", err)
	}
}

func TestIngestRefsArePerNamespace(t *testing.T) {
	db := newDB(t, Options{})
	cs := db.ContentStore()
	wa, err := cs.Writer(nsCtx("a"), content.WriterOpts{Ref: "same"})
	if err != nil {
		t.Fatal(err)
	}
	defer wa.Close()
	wb, err := cs.Writer(nsCtx("b"), content.WriterOpts{Ref: "same"})
	if err != nil {
		t.Fatalf("same ref in another namespace: %v", err)
	}
	defer wb.Close()
	if _, err := wa.Write([]byte("aaaa")); err != nil {
		t.Fatal(err)
	}
	st, err := cs.Status(nsCtx("b"), "same")
	if err != nil || st.Offset != 0 || st.Ref != "same" {
		t.Fatalf("status in b = %+v, %v", st, err)
	}
	_, err = cs.Writer(nsCtx("a"), content.WriterOpts{Ref: "same"})
	wantKind(t, "second writer on a ref", err, errdefs.ErrUnavailable)
	if err != nil && strings.Contains(err.Error(), "a/same") {
		t.Errorf("error leaks the internal ref: %v", err)
	}
}

func TestNamespaceLifecycle(t *testing.T) {
	db := newDB(t, Options{})
	ctx := context.Background()
	if _, err := db.CreateNamespace(ctx, Namespace{Name: "web", Labels: map[string]string{"team": "x"}}); err != nil {
		t.Fatal(err)
	}
	_, err := db.CreateNamespace(ctx, Namespace{Name: "web"})
	wantKind(t, "create twice", err, errdefs.ErrAlreadyExists)
	_, err = db.CreateNamespace(ctx, Namespace{Name: "Bad Name"})
	wantKind(t, "bad name", err, errdefs.ErrInvalidArgument)
	_, err = db.CreateNamespace(ctx, Namespace{Name: "big", Labels: map[string]string{"k": strings.Repeat("v", 5000)}})
	wantKind(t, "oversized label", err, errdefs.ErrInvalidArgument)

	ns, err := db.UpdateNamespace(ctx, Namespace{Name: "web", Labels: map[string]string{"env": "prod"}}, "labels.env")
	if err != nil || ns.Labels["team"] != "x" || ns.Labels["env"] != "prod" {
		t.Fatalf("update = %+v, %v", ns, err)
	}
	list, err := db.ListNamespaces(ctx, "labels.env==prod")
	if err != nil || len(list) != 1 || list[0].Name != "web" {
		t.Fatalf("list = %+v, %v", list, err)
	}

	dgst := commit(t, nsCtx("web"), db.ContentStore(), "payload", nil)
	err = db.DeleteNamespace(ctx, "web")
	wantKind(t, "delete non-empty", err, errdefs.ErrFailedPrecondition)
	if err != nil && !strings.Contains(err.Error(), "1 blobs") {
		t.Errorf("error does not say what remains: %v", err)
	}
	if err := db.ContentStore().Delete(nsCtx("web"), dgst); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteNamespace(ctx, "web"); err != nil {
		t.Fatalf("delete emptied namespace: %v", err)
	}
	_, err = db.GetNamespace(ctx, "web")
	wantKind(t, "get deleted", err, errdefs.ErrNotFound)
	wantKind(t, "delete unknown", db.DeleteNamespace(ctx, "nope"), errdefs.ErrNotFound)
	_, err = db.ContentStore().Info(nsCtx("nope"), dgst)
	wantKind(t, "read in unknown namespace", err, errdefs.ErrNotFound)
	if err != nil && !strings.Contains(err.Error(), `namespace "nope"`) {
		t.Errorf("error does not name the namespace: %v", err)
	}
}

func onDisk(t *testing.T, db *DB, dgst digest.Digest) bool {
	t.Helper()
	_, err := db.backend.Info(context.Background(), dgst)
	if err != nil && !errdefs.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestGarbageCollectKeepsWhatIsReferenced(t *testing.T) {
	// A blob left by a crash between the rename and the metadata
	// transaction: on disk, recorded nowhere.
	dir := t.TempDir()
	raw, err := local.New(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	crashLeft := digest.FromString("crash leftover")
	if err := content.WriteBlob(context.Background(), raw, content.WriterOpts{Ref: "raw", Expected: crashLeft}, strings.NewReader("crash leftover"), nil); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dir, Options{})
	defer db.Close()
	cs := db.ContentStore()
	ctx := nsCtx("gc")
	lease, err := db.CreateLease(ctx, leases.Lease{ID: "pull"})
	if err != nil {
		t.Fatal(err)
	}
	leased := commit(t, leases.WithLease(ctx, lease.ID), cs, "leased", nil)
	child := commit(t, ctx, cs, "child layer", nil)
	grandchild := commit(t, ctx, cs, "grandchild", nil)
	if _, err := cs.Update(ctx, content.Info{Digest: child, Labels: map[string]string{gc.LabelRefContentPrefix + ".l.0": grandchild.String()}}, "labels"); err != nil {
		t.Fatal(err)
	}
	root := commit(t, ctx, cs, "manifest", map[string]string{gc.LabelRoot: "1", gc.LabelRefContentPrefix + ".config": child.String()})
	orphan := commit(t, ctx, cs, "orphan", nil)
	expiredLease, err := db.CreateLease(ctx, leases.Lease{ID: "old", Labels: map[string]string{leases.LabelExpire: time.Now().Add(-time.Minute).Format(time.RFC3339)}})
	if err != nil {
		t.Fatal(err)
	}
	expiredContent := commit(t, leases.WithLease(ctx, expiredLease.ID), cs, "expired", nil)

	stats, err := db.GarbageCollect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []digest.Digest{leased, root, child, grandchild} {
		if _, err := cs.Info(ctx, d); err != nil || !onDisk(t, db, d) {
			t.Errorf("referenced blob %s removed: %v", d, err)
		}
	}
	for _, d := range []digest.Digest{orphan, expiredContent, crashLeft} {
		if _, err := cs.Info(ctx, d); !errdefs.IsNotFound(err) || onDisk(t, db, d) {
			t.Errorf("unreferenced blob %s kept (info err %v)", d, err)
		}
	}
	if stats.BlobsRemoved != 3 || stats.LeasesExpired != 1 || stats.BytesFreed != int64(len("orphan")+len("expired")+len("crash leftover")) {
		t.Errorf("stats = %+v", stats)
	}
	if _, err := db.ListResources(ctx, "old"); !errdefs.IsNotFound(err) {
		t.Errorf("expired lease still listed: %v", err)
	}

	// Dropping the root label frees the whole chain.
	if _, err := cs.Update(ctx, content.Info{Digest: root}, "labels."+gc.LabelRoot); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteLease(ctx, "pull", true); err != nil {
		t.Fatal(err)
	}
	for _, d := range []digest.Digest{leased, root, child, grandchild} {
		if onDisk(t, db, d) {
			t.Errorf("blob %s survived after its last reference went", d)
		}
	}
	if n, size := db.BlobStats(); n != 0 || size != 0 {
		t.Errorf("BlobStats = %d, %d after everything was collected", n, size)
	}
}

func TestGarbageCollectKeepsBlobSharedWithOtherNamespace(t *testing.T) {
	db := newDB(t, Options{})
	cs := db.ContentStore()
	a, b := nsCtx("a"), nsCtx("b")
	for _, ctx := range []context.Context{a, b} {
		if _, err := db.CreateLease(ctx, leases.Lease{ID: "hold"}); err != nil {
			t.Fatal(err)
		}
	}
	dgst := commit(t, leases.WithLease(a, "hold"), cs, "shared", nil)
	commit(t, leases.WithLease(b, "hold"), cs, "shared", nil)
	if err := db.DeleteLease(a, "hold", true); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Info(a, dgst); !errdefs.IsNotFound(err) {
		t.Errorf("a still sees the blob: %v", err)
	}
	if _, err := content.ReadBlob(b, cs, dgst); err != nil {
		t.Errorf("b lost the shared blob: %v", err)
	}
}

func TestGarbageCollectIngests(t *testing.T) {
	db := newDB(t, Options{IngestExpiry: time.Hour})
	cs := db.ContentStore()
	ctx := nsCtx("ing")
	if _, err := db.CreateLease(ctx, leases.Lease{ID: "l"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ctx context.Context
		ref string
	}{{ctx, "fresh"}, {leases.WithLease(ctx, "l"), "leased"}} {
		w, err := cs.Writer(c.ctx, content.WriterOpts{Ref: c.ref})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		w.Close()
	}
	if _, err := db.GarbageCollect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"fresh", "leased"} {
		if st, err := cs.Status(ctx, ref); err != nil || st.Offset != 7 {
			t.Errorf("ingest %q after collection: %+v, %v", ref, st, err)
		}
	}
	db.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := db.DeleteLease(ctx, "l", false); err != nil {
		t.Fatal(err)
	}
	stats, err := db.GarbageCollect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.IngestsRemoved != 2 {
		t.Errorf("IngestsRemoved = %d, want 2", stats.IngestsRemoved)
	}
	if st, err := db.backend.ListStatuses(ctx); err != nil || len(st) != 0 {
		t.Errorf("ingest data left on disk: %+v, %v", st, err)
	}
}

func TestGarbageCollectRacesCommits(t *testing.T) {
	db := newDB(t, Options{})
	cs := db.ContentStore()
	ctx := nsCtx("race")
	if _, err := db.CreateLease(ctx, leases.Lease{ID: "l"}); err != nil {
		t.Fatal(err)
	}
	lctx := leases.WithLease(ctx, "l")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.GarbageCollect(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var digests []digest.Digest
	for i := 0; i < 100; i++ {
		data := fmt.Sprintf("blob %d %s", i, bytes.Repeat([]byte("x"), i))
		digests = append(digests, commit(t, lctx, cs, data, nil))
		// Churn: blobs nobody holds, collected while others commit.
		commit(t, ctx, cs, fmt.Sprintf("garbage %d", i), nil)
	}
	close(stop)
	wg.Wait()
	for _, d := range digests {
		if _, err := content.ReadBlob(ctx, cs, d); err != nil {
			t.Errorf("leased blob %s lost while collecting: %v", d, err)
		}
	}
}

func TestLeaseBadInput(t *testing.T) {
	db := newDB(t, Options{})
	ctx := nsCtx("l")
	_, err := db.CreateLease(ctx, leases.Lease{ID: "x", Labels: map[string]string{leases.LabelExpire: "tomorrow"}})
	wantKind(t, "bad expiry", err, errdefs.ErrInvalidArgument)
	_, err = db.CreateLease(ctx, leases.Lease{ID: "a/b"})
	wantKind(t, "slash in id", err, errdefs.ErrInvalidArgument)
	l, err := db.CreateLease(ctx, leases.Lease{})
	if err != nil || l.ID == "" {
		t.Fatalf("generated id: %+v, %v", l, err)
	}
	wantKind(t, "bad resource digest", db.AddResource(ctx, l.ID, leases.Resource{Type: "content", ID: "sha256:nope"}), errdefs.ErrInvalidArgument)
	wantKind(t, "bad resource type", db.AddResource(ctx, l.ID, leases.Resource{Type: "volume", ID: "x"}), errdefs.ErrInvalidArgument)
	wantKind(t, "unknown lease", db.AddResource(ctx, "nope", leases.Resource{Type: "ingest", ID: "x"}), errdefs.ErrNotFound)
	_, err = db.ContentStore().Writer(leases.WithLease(ctx, "nope"), content.WriterOpts{Ref: "r"})
	wantKind(t, "writer under unknown lease", err, errdefs.ErrNotFound)
	d := digest.FromString("x")
	if err := db.AddResource(ctx, l.ID, leases.Resource{Type: "content", ID: d.String()}); err != nil {
		t.Fatal(err)
	}
	res, err := db.ListResources(ctx, l.ID)
	if err != nil || len(res) != 1 || res[0].ID != d.String() {
		t.Fatalf("resources = %+v, %v", res, err)
	}
	if err := db.DeleteResource(ctx, l.ID, res[0]); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "delete resource twice", db.DeleteResource(ctx, l.ID, res[0]), errdefs.ErrNotFound)
	list, err := db.ListLeases(ctx, "id=="+l.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListLeases = %+v, %v", list, err)
	}
}

func TestAutomaticCollectionAfterDelete(t *testing.T) {
	collected := make(chan GCStats, 4)
	db := openDB(t, t.TempDir(), Options{GCDelay: time.Millisecond, OnCollect: func(_ context.Context, s GCStats) { collected <- s }})
	defer db.Close()
	ctx := nsCtx("auto")
	cs := db.ContentStore()
	dgst := commit(t, ctx, cs, "to delete", nil)
	if err := cs.Delete(ctx, dgst); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-collected:
		if s.BlobsRemoved != 1 {
			t.Errorf("stats = %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no collection after delete")
	}
	if onDisk(t, db, dgst) {
		t.Error("deleted blob still on disk")
	}
}
