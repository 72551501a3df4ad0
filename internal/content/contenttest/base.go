package contenttest

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

var baseCases = []testCase{
	{"WriteCommitRead", testWriteCommitRead},
	{"CommitEmptyBlob", testCommitEmptyBlob},
	{"CommitWrongDigestLeavesNoBlob", testCommitWrongDigest},
	{"CommitWrongSizeLeavesNoBlob", testCommitWrongSize},
	{"CommitExistingBlob", testCommitExistingBlob},
	{"WriterForExistingBlob", testWriterForExistingBlob},
	{"WriterNeedsRef", testWriterNeedsRef},
	{"WriterClosed", testWriterClosed},
	{"ResumeAfterClose", testResumeAfterClose},
	{"ResumeAfterKill", testResumeAfterKill},
	{"ResumeAfterReopen", testResumeAfterReopen},
	{"Truncate", testTruncate},
	{"ConcurrentWritersSameRef", testConcurrentWritersSameRef},
	{"ConcurrentIngestsSameContent", testConcurrentIngestsSameContent},
	{"ReadAtRanges", testReadAtRanges},
	{"Delete", testDelete},
	{"Abort", testAbort},
	{"ListStatuses", testListStatuses},
	{"WalkFilters", testWalkFilters},
	{"InvalidDigests", testInvalidDigests},
	{"SHA512", testSHA512},
	{"WriteBlobReadBlob", testWriteBlobReadBlob},
}

func testWriteCommitRead(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	const ref = "round-trip"
	data := randomBytes(1, 3<<20+17)
	dgst := digest.FromBytes(data)

	w := openWriter(t, s, content.WriterOpts{Ref: ref, Total: int64(len(data)), Expected: dgst})
	writeChunks(t, w, data, 100_000)
	if got := w.Digest(); got != dgst {
		t.Errorf("Writer.Digest() = %s, want %s", got, dgst)
	}
	st, err := w.Status()
	if err != nil {
		t.Fatalf("Writer.Status: %v", err)
	}
	want := content.Status{Ref: ref, Offset: int64(len(data)), Total: int64(len(data)), Expected: dgst}
	if diff := cmp.Diff(want, st, cmp.FilterPath(isTimeField, cmp.Ignore())); diff != "" {
		t.Errorf("Writer.Status() mismatch (-want +got):\n%s", diff)
	}
	if st.StartedAt.IsZero() || st.UpdatedAt.Before(st.StartedAt) {
		t.Errorf("Writer.Status() times: started %v, updated %v", st.StartedAt, st.UpdatedAt)
	}
	if err := w.Commit(ctx, int64(len(data)), dgst, nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}

	info, err := s.Info(ctx, dgst)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Digest != dgst || info.Size != int64(len(data)) || info.CreatedAt.IsZero() {
		t.Errorf("Info = %+v, want digest %s, size %d and a creation time", info, dgst, len(data))
	}
	got, err := content.ReadBlob(ctx, s, dgst)
	if err != nil {
		t.Fatalf("ReadBlob: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("ReadBlob returned %d bytes that differ from the %d written", len(got), len(data))
	}
	if diff := cmp.Diff([]digest.Digest{dgst}, walkDigests(t, s)); diff != "" {
		t.Errorf("Walk mismatch (-want +got):\n%s", diff)
	}
	wantNoIngest(t, s, ref)
}

func isTimeField(p cmp.Path) bool {
	name := p.Last().String()
	return name == ".StartedAt" || name == ".UpdatedAt"
}

func testCommitEmptyBlob(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	dgst := digest.FromBytes(nil)
	w := openWriter(t, s, content.WriterOpts{Ref: "empty"})
	if err := w.Commit(ctx, 0, dgst, nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	info, err := s.Info(ctx, dgst)
	if err != nil || info.Size != 0 {
		t.Fatalf("Info = %+v, %v; want size 0", info, err)
	}
	got, err := content.ReadBlob(ctx, s, dgst)
	if err != nil || len(got) != 0 {
		t.Errorf("ReadBlob = %d bytes, %v; want 0 bytes", len(got), err)
	}
}

func testCommitWrongDigest(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	const ref = "wrong-digest"
	data := randomBytes(2, 1<<20)
	wrong := digest.FromString("other bytes")

	w := openWriter(t, s, content.WriterOpts{Ref: ref})
	writeChunks(t, w, data, 64<<10)
	err := w.Commit(ctx, int64(len(data)), wrong, nil)
	wantErr(t, "Commit with a wrong digest", err, errdefs.ErrFailedPrecondition)
	w.Close()

	wantNoBlob(t, s, digest.FromBytes(data))
	wantNoBlob(t, s, wrong)
	wantNoIngest(t, s, ref)
}

func testCommitWrongSize(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	data := randomBytes(3, 1<<20)
	dgst := digest.FromBytes(data)

	for _, size := range []int64{int64(len(data)) + 1, int64(len(data)) - 1} {
		ref := "wrong-size-" + strconv.FormatInt(size, 10)
		w := openWriter(t, s, content.WriterOpts{Ref: ref})
		writeChunks(t, w, data, 64<<10)
		err := w.Commit(ctx, size, dgst, nil)
		wantErr(t, "Commit with size "+strconv.FormatInt(size, 10), err, errdefs.ErrFailedPrecondition)
		w.Close()
		wantNoBlob(t, s, dgst)
		wantNoIngest(t, s, ref)
	}
}

func testCommitExistingBlob(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	data := randomBytes(4, 100_000)
	dgst := commitBlob(t, s, "first", data, nil)

	w := openWriter(t, s, content.WriterOpts{Ref: "second"})
	writeChunks(t, w, data, 64<<10)
	err := w.Commit(ctx, int64(len(data)), dgst, nil)
	wantErr(t, "Commit of a blob already present", err, errdefs.ErrAlreadyExists)
	w.Close()
	wantNoIngest(t, s, "second")
	got, err := content.ReadBlob(ctx, s, dgst)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob after the second commit = %d bytes, %v; want the %d bytes of the first", len(got), err, len(data))
	}
}

func testWriterForExistingBlob(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	dgst := commitBlob(t, s, "first", randomBytes(5, 1000), nil)

	w, err := s.Writer(ctx, content.WriterOpts{Ref: "again", Expected: dgst})
	if err == nil {
		w.Close()
	}
	wantErr(t, "Writer expecting a blob already present", err, errdefs.ErrAlreadyExists)
	wantNoIngest(t, s, "again")
}

func testWriterNeedsRef(t *testing.T, factory Factory) {
	s := newStore(t, factory)
	w, err := s.Writer(testContext(t), content.WriterOpts{})
	if err == nil {
		w.Close()
	}
	wantErr(t, "Writer with no ref", err, errdefs.ErrInvalidArgument)
}

func testWriterClosed(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)

	w := openWriter(t, s, content.WriterOpts{Ref: "closed"})
	writeChunks(t, w, []byte("some"), 10)
	closeWriter(t, w)
	if n, err := w.Write([]byte("more")); err == nil {
		t.Errorf("Write after Close = %d, nil; want an error", n)
	}

	data := []byte("committed")
	w = openWriter(t, s, content.WriterOpts{Ref: "committed"})
	writeChunks(t, w, data, 10)
	if err := w.Commit(ctx, int64(len(data)), digest.FromBytes(data), nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if n, err := w.Write([]byte("more")); err == nil {
		t.Errorf("Write after Commit = %d, nil; want an error", n)
	}
}

func testResumeAfterClose(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	const ref = "resume"
	data := randomBytes(6, 2<<20+5)
	dgst := digest.FromBytes(data)
	const head = 700_001

	w := openWriter(t, s, content.WriterOpts{Ref: ref, Total: int64(len(data)), Expected: dgst})
	writeChunks(t, w, data[:head], 64<<10)
	closeWriter(t, w)

	st, err := s.Status(ctx, ref)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Ref != ref || st.Offset != head || st.Total != int64(len(data)) || st.Expected != dgst {
		t.Errorf("Status = %+v, want ref %q, offset %d, total %d, expected %s", st, ref, head, len(data), dgst)
	}

	w = openWriter(t, s, content.WriterOpts{Ref: ref, Total: int64(len(data)), Expected: dgst})
	defer w.Close()
	resumeAndCommit(t, s, w, data)
}

// resumeAndCommit checks that w resumes an ingest holding a prefix of data,
// writes the rest, commits it and reads it back.
func resumeAndCommit(t *testing.T, s content.Store, w content.Writer, data []byte) {
	t.Helper()
	ctx := testContext(t)
	st, err := w.Status()
	if err != nil {
		t.Fatalf("Writer.Status: %v", err)
	}
	if st.Offset <= 0 || st.Offset > int64(len(data)) {
		t.Fatalf("resumed Writer.Status().Offset = %d, want within (0, %d]", st.Offset, len(data))
	}
	if got, want := w.Digest(), digest.FromBytes(data[:st.Offset]); got != want {
		t.Errorf("resumed Writer.Digest() = %s, want %s (the first %d bytes)", got, want, st.Offset)
	}
	writeChunks(t, w, data[st.Offset:], 64<<10)
	dgst := digest.FromBytes(data)
	if err := w.Commit(ctx, int64(len(data)), dgst, nil); err != nil {
		t.Fatalf("Commit after resuming at %d: %v", st.Offset, err)
	}
	got, err := content.ReadBlob(ctx, s, dgst)
	if err != nil {
		t.Fatalf("ReadBlob: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("ReadBlob returned %d bytes that differ from the %d written", len(got), len(data))
	}
}

func testResumeAfterReopen(t *testing.T, factory Factory) {
	ctx := testContext(t)
	root := t.TempDir()
	s, closeStore := openStore(t, factory, root)
	committed := randomBytes(7, 50_000)
	dgst := commitBlob(t, s, "kept", committed, nil)
	const ref = "reopen"
	data := randomBytes(8, 300_000)
	w := openWriter(t, s, content.WriterOpts{Ref: ref})
	writeChunks(t, w, data[:123_456], 10_000)
	closeWriter(t, w)
	closeStore()

	s, _ = openStore(t, factory, root)
	got, err := content.ReadBlob(ctx, s, dgst)
	if err != nil || !bytes.Equal(got, committed) {
		t.Errorf("ReadBlob after reopening = %d bytes, %v; want the %d committed", len(got), err, len(committed))
	}
	st, err := s.Status(ctx, ref)
	if err != nil || st.Offset != 123_456 {
		t.Fatalf("Status after reopening = %+v, %v; want offset 123456", st, err)
	}
	w = openWriter(t, s, content.WriterOpts{Ref: ref})
	defer w.Close()
	resumeAndCommit(t, s, w, data)
}

func testTruncate(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	w := openWriter(t, s, content.WriterOpts{Ref: "truncate"})
	defer w.Close()
	writeChunks(t, w, randomBytes(9, 10_000), 4096)
	if err := w.Truncate(0); err != nil {
		t.Fatalf("Truncate(0): %v", err)
	}
	st, err := w.Status()
	if err != nil || st.Offset != 0 {
		t.Errorf("Status after Truncate(0) = %+v, %v; want offset 0", st, err)
	}
	if got, want := w.Digest(), digest.FromBytes(nil); got != want {
		t.Errorf("Digest after Truncate(0) = %s, want %s", got, want)
	}
	data := randomBytes(10, 5_000)
	writeChunks(t, w, data, 4096)
	dgst := digest.FromBytes(data)
	if err := w.Commit(ctx, int64(len(data)), dgst, nil); err != nil {
		t.Fatalf("Commit after Truncate(0): %v", err)
	}
	if got, err := content.ReadBlob(ctx, s, dgst); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob = %d bytes, %v; want the %d written after Truncate(0)", len(got), err, len(data))
	}
}

func testConcurrentWritersSameRef(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	const ref = "contended"

	w := openWriter(t, s, content.WriterOpts{Ref: ref})
	writeChunks(t, w, []byte("first"), 10)
	w2, err := s.Writer(ctx, content.WriterOpts{Ref: ref})
	if err == nil {
		w2.Close()
	}
	wantErr(t, "second Writer on an open ref", err, errdefs.ErrUnavailable)
	closeWriter(t, w)

	const n = 8
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		writers [n]content.Writer
		errs    [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			writers[i], errs[i] = s.Writer(ctx, content.WriterOpts{Ref: ref})
		})
	}
	close(start)
	wg.Wait()
	var winner content.Writer
	for i := range n {
		if errs[i] == nil {
			if winner != nil {
				t.Errorf("two concurrent Writers on ref %q succeeded", ref)
			}
			winner = writers[i]
			defer writers[i].Close()
			continue
		}
		wantErr(t, "concurrent Writer that lost", errs[i], errdefs.ErrUnavailable)
	}
	if winner == nil {
		t.Fatalf("none of %d concurrent Writers on ref %q succeeded: %v", n, ref, errs[0])
	}
	closeWriter(t, winner)
	w = openWriter(t, s, content.WriterOpts{Ref: ref})
	defer w.Close()
	if st, err := w.Status(); err != nil || st.Offset != int64(len("first")) {
		t.Errorf("Status after the lock was released = %+v, %v; want offset 5", st, err)
	}
}

func testConcurrentIngestsSameContent(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	data := randomBytes(11, 4<<20)
	dgst := digest.FromBytes(data)
	refs := []string{"same-a", "same-b", "same-c"}

	writers := make([]content.Writer, len(refs))
	for i, ref := range refs {
		writers[i] = openWriter(t, s, content.WriterOpts{Ref: ref, Total: int64(len(data)), Expected: dgst})
		defer writers[i].Close()
	}
	var (
		wg      sync.WaitGroup
		written sync.WaitGroup
		errs    = make([]error, len(refs))
	)
	written.Add(len(refs))
	for i, w := range writers {
		wg.Go(func() {
			for p := data; len(p) > 0 && errs[i] == nil; p = p[min(len(p), 32<<10):] {
				_, errs[i] = w.Write(p[:min(len(p), 32<<10)])
			}
			written.Done()
			written.Wait() // commit together
			if errs[i] == nil {
				errs[i] = w.Commit(ctx, int64(len(data)), dgst, nil)
			}
		})
	}
	wg.Wait()
	committed := 0
	for i, err := range errs {
		switch {
		case err == nil:
			committed++
		case !errors.Is(err, errdefs.ErrAlreadyExists):
			t.Errorf("ingest %q: %v, want success or %v", refs[i], err, errdefs.ErrAlreadyExists)
		}
	}
	if committed == 0 {
		t.Errorf("no ingest of %d committed", len(refs))
	}
	got, err := content.ReadBlob(ctx, s, dgst)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob = %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	for _, ref := range refs {
		wantNoIngest(t, s, ref)
	}
}

func testReadAtRanges(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	data := randomBytes(12, 1<<20+3)
	size := len(data)
	dgst := commitBlob(t, s, "ranges", data, nil)

	ra, err := s.ReaderAt(ctx, dgst)
	if err != nil {
		t.Fatalf("ReaderAt: %v", err)
	}
	defer ra.Close()
	if ra.Size() != int64(size) {
		t.Errorf("Size() = %d, want %d", ra.Size(), size)
	}
	tests := []struct {
		off, len int
		wantN    int
		eofOK    bool // io.EOF allowed alongside a full read at the end
		wantEOF  bool
	}{
		{off: 0, len: 10, wantN: 10},
		{off: 100, len: 4096, wantN: 4096},
		{off: size / 2, len: 1 << 16, wantN: 1 << 16},
		{off: size - 10, len: 10, wantN: 10, eofOK: true},
		{off: size - 10, len: 100, wantN: 10, wantEOF: true},
		{off: 1, len: size + 5, wantN: size - 1, wantEOF: true},
		{off: size, len: 10, wantN: 0, wantEOF: true},
		{off: size + 100, len: 10, wantN: 0, wantEOF: true},
	}
	for _, tt := range tests {
		buf := make([]byte, tt.len)
		n, err := ra.ReadAt(buf, int64(tt.off))
		switch {
		case tt.wantEOF && !errors.Is(err, io.EOF):
			t.Errorf("ReadAt(%d bytes at %d): error %v, want io.EOF", tt.len, tt.off, err)
		case !tt.wantEOF && err != nil && !(tt.eofOK && errors.Is(err, io.EOF)):
			t.Errorf("ReadAt(%d bytes at %d): %v", tt.len, tt.off, err)
		}
		if n != tt.wantN {
			t.Errorf("ReadAt(%d bytes at %d) read %d bytes, want %d", tt.len, tt.off, n, tt.wantN)
			continue
		}
		if !bytes.Equal(buf[:n], data[min(tt.off, size):min(tt.off, size)+n]) {
			t.Errorf("ReadAt(%d bytes at %d) returned the wrong bytes", tt.len, tt.off)
		}
	}
}

func testDelete(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	gone := commitBlob(t, s, "gone", randomBytes(13, 10_000), nil)
	keptData := randomBytes(14, 10_000)
	kept := commitBlob(t, s, "kept", keptData, nil)

	if err := s.Delete(ctx, gone); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNoBlob(t, s, gone)
	wantErr(t, "Delete twice", s.Delete(ctx, gone), errdefs.ErrNotFound)
	wantErr(t, "Delete of a blob never written", s.Delete(ctx, digest.FromString("never")), errdefs.ErrNotFound)
	if got, err := content.ReadBlob(ctx, s, kept); err != nil || !bytes.Equal(got, keptData) {
		t.Errorf("ReadBlob of the other blob = %d bytes, %v", len(got), err)
	}
	if diff := cmp.Diff([]digest.Digest{kept}, walkDigests(t, s)); diff != "" {
		t.Errorf("Walk after Delete mismatch (-want +got):\n%s", diff)
	}
}

func testAbort(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	const ref = "abort-me"
	data := randomBytes(15, 50_000)
	w := openWriter(t, s, content.WriterOpts{Ref: ref})
	writeChunks(t, w, data, 8192)
	closeWriter(t, w)

	if err := s.Abort(ctx, ref); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	wantNoIngest(t, s, ref)
	wantErr(t, "Abort twice", s.Abort(ctx, ref), errdefs.ErrNotFound)
	wantErr(t, "Abort of an ingest never started", s.Abort(ctx, "never"), errdefs.ErrNotFound)
	wantNoBlob(t, s, digest.FromBytes(data))

	w = openWriter(t, s, content.WriterOpts{Ref: ref})
	defer w.Close()
	if st, err := w.Status(); err != nil || st.Offset != 0 {
		t.Errorf("Writer.Status after Abort = %+v, %v; want offset 0", st, err)
	}
	if got, want := w.Digest(), digest.FromBytes(nil); got != want {
		t.Errorf("Writer.Digest after Abort = %s, want %s", got, want)
	}
}

func testListStatuses(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	expected := digest.FromString("list/a-1 content")
	ingests := []content.WriterOpts{
		{Ref: "list/a-1", Total: 16, Expected: expected},
		{Ref: "list/a-2"},
		{Ref: "list/b-1"},
	}
	for i, opts := range ingests {
		w := openWriter(t, s, opts)
		writeChunks(t, w, randomBytes(16, i+1), 10)
		closeWriter(t, w)
	}
	st, err := s.Status(ctx, "list/a-1")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Ref != "list/a-1" || st.Offset != 1 || st.Total != 16 || st.Expected != expected || st.StartedAt.IsZero() {
		t.Errorf("Status(list/a-1) = %+v, want offset 1, total 16, expected %s and a start time", st, expected)
	}

	tests := []struct {
		filters []string
		want    map[string]int64 // ref -> offset
	}{
		{nil, map[string]int64{"list/a-1": 1, "list/a-2": 2, "list/b-1": 3}},
		{[]string{"ref==list/a-1"}, map[string]int64{"list/a-1": 1}},
		{[]string{"ref~=^list/a-"}, map[string]int64{"list/a-1": 1, "list/a-2": 2}},
		{[]string{"ref==list/a-2", "ref==list/b-1"}, map[string]int64{"list/a-2": 2, "list/b-1": 3}},
		{[]string{"ref==nothing"}, map[string]int64{}},
	}
	for _, tt := range tests {
		sts, err := s.ListStatuses(ctx, tt.filters...)
		if err != nil {
			t.Errorf("ListStatuses(%q): %v", tt.filters, err)
			continue
		}
		got := map[string]int64{}
		for _, st := range sts {
			got[st.Ref] = st.Offset
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ListStatuses(%q) mismatch (-want +got):\n%s", tt.filters, diff)
		}
	}
	_, err = s.ListStatuses(ctx, "ref~=(")
	wantErr(t, "ListStatuses with a bad filter", err, errdefs.ErrInvalidArgument)
}

func testWalkFilters(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	small := commitBlob(t, s, "small", randomBytes(17, 10), nil)
	big1 := commitBlob(t, s, "big1", randomBytes(18, 20), nil)
	big2 := commitBlob(t, s, "big2", randomBytes(19, 20), nil)

	tests := []struct {
		filters []string
		want    []digest.Digest
	}{
		{nil, []digest.Digest{small, big1, big2}},
		{[]string{"digest==" + big1.String()}, []digest.Digest{big1}},
		{[]string{"size==20"}, []digest.Digest{big1, big2}},
		{[]string{"size==10", "digest==" + big2.String()}, []digest.Digest{small, big2}},
		{[]string{"size==20,digest!=" + big1.String()}, []digest.Digest{big2}},
		{[]string{"size==30"}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, walkDigests(t, s, tt.filters...), sortDigests); diff != "" {
			t.Errorf("Walk(%q) mismatch (-want +got):\n%s", tt.filters, diff)
		}
	}
	err := s.Walk(ctx, func(content.Info) error { return nil }, "digest~=(")
	wantErr(t, "Walk with a bad filter", err, errdefs.ErrInvalidArgument)

	stop := errors.New("stop walking")
	calls := 0
	err = s.Walk(ctx, func(content.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk whose function fails: %d calls, error %v; want 1 call and %v", calls, err, stop)
	}
}

func testInvalidDigests(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	invalid := []digest.Digest{
		"",
		"sha256:xyz",
		"md5:abc",
		"sha256:../../etc/passwd",
		"sha256:" + digest.Digest(strings.Repeat("a", 63)),
		"sha256:" + digest.Digest(strings.Repeat("A", 64)),
		"sha512:" + digest.Digest(strings.Repeat("a", 64)),
		"sha256:" + digest.Digest(strings.Repeat("a", 62)) + "/x",
		"../../../../etc/passwd",
	}
	for _, d := range invalid {
		_, err := s.Info(ctx, d)
		wantErr(t, "Info("+string(d)+")", err, errdefs.ErrInvalidArgument)
		ra, err := s.ReaderAt(ctx, d)
		if err == nil {
			ra.Close()
		}
		wantErr(t, "ReaderAt("+string(d)+")", err, errdefs.ErrInvalidArgument)
		wantErr(t, "Delete("+string(d)+")", s.Delete(ctx, d), errdefs.ErrInvalidArgument)
		if d == "" {
			continue // an empty Expected means unknown
		}
		w, err := s.Writer(ctx, content.WriterOpts{Ref: "invalid", Expected: d})
		if err == nil {
			w.Close()
		}
		wantErr(t, "Writer expecting "+string(d), err, errdefs.ErrInvalidArgument)
	}
}

func testSHA512(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)

	data := randomBytes(20, 1<<20)
	dgst := digest.SHA512.FromBytes(data)
	w := openWriter(t, s, content.WriterOpts{Ref: "sha512", Total: int64(len(data)), Expected: dgst})
	writeChunks(t, w, data, 64<<10)
	if got := w.Digest(); got != dgst {
		t.Errorf("Writer.Digest() = %s, want %s", got, dgst)
	}
	if err := w.Commit(ctx, int64(len(data)), dgst, nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if info, err := s.Info(ctx, dgst); err != nil || info.Size != int64(len(data)) {
		t.Errorf("Info = %+v, %v; want size %d", info, err, len(data))
	}
	if got, err := content.ReadBlob(ctx, s, dgst); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob = %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	if diff := cmp.Diff([]digest.Digest{dgst}, walkDigests(t, s)); diff != "" {
		t.Errorf("Walk mismatch (-want +got):\n%s", diff)
	}

	// The algorithm may be known only at Commit.
	late := randomBytes(21, 70_000)
	lateDgst := digest.SHA512.FromBytes(late)
	w = openWriter(t, s, content.WriterOpts{Ref: "sha512-late"})
	writeChunks(t, w, late, 64<<10)
	if err := w.Commit(ctx, int64(len(late)), lateDgst, nil); err != nil {
		t.Fatalf("Commit with a sha512 digest unknown to Writer: %v", err)
	}
	if got, err := content.ReadBlob(ctx, s, lateDgst); err != nil || !bytes.Equal(got, late) {
		t.Errorf("ReadBlob = %d bytes, %v; want the %d written", len(got), err, len(late))
	}

	w = openWriter(t, s, content.WriterOpts{Ref: "sha512-wrong"})
	writeChunks(t, w, data[:1000], 64<<10)
	err := w.Commit(ctx, 1000, digest.SHA512.FromBytes(data[:999]), nil)
	wantErr(t, "Commit with a wrong sha512 digest", err, errdefs.ErrFailedPrecondition)
	w.Close()
	wantNoBlob(t, s, digest.SHA512.FromBytes(data[:1000]))
}

// reader hides every method of an io.Reader but Read.
type reader struct{ io.Reader }

func testWriteBlobReadBlob(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)

	data := randomBytes(22, 200_000)
	dgst := digest.FromBytes(data)
	opts := content.WriterOpts{Ref: "helper", Total: int64(len(data)), Expected: dgst}
	if err := content.WriteBlob(ctx, s, opts, reader{bytes.NewReader(data)}, nil); err != nil {
		t.Fatalf("WriteBlob: %v", err)
	}
	if got, err := content.ReadBlob(ctx, s, dgst); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob = %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	if err := content.WriteBlob(ctx, s, opts, reader{bytes.NewReader(data)}, nil); err != nil {
		t.Errorf("WriteBlob of a blob already present: %v", err)
	}

	// A seekable reader resumes where the ingest stopped.
	seekable := randomBytes(23, 200_000)
	opts = content.WriterOpts{Ref: "helper-seek", Total: int64(len(seekable)), Expected: digest.FromBytes(seekable)}
	w := openWriter(t, s, opts)
	writeChunks(t, w, seekable[:80_000], 10_000)
	closeWriter(t, w)
	if err := content.WriteBlob(ctx, s, opts, bytes.NewReader(seekable), nil); err != nil {
		t.Fatalf("WriteBlob resuming with a seekable reader: %v", err)
	}
	if got, err := content.ReadBlob(ctx, s, opts.Expected); err != nil || !bytes.Equal(got, seekable) {
		t.Errorf("ReadBlob = %d bytes, %v; want the %d written", len(got), err, len(seekable))
	}

	// Any other reader restarts it, so a wrong prefix does no harm.
	plain := randomBytes(24, 200_000)
	opts = content.WriterOpts{Ref: "helper-restart", Total: int64(len(plain)), Expected: digest.FromBytes(plain)}
	w = openWriter(t, s, opts)
	writeChunks(t, w, randomBytes(25, 80_000), 10_000)
	closeWriter(t, w)
	if err := content.WriteBlob(ctx, s, opts, reader{bytes.NewReader(plain)}, nil); err != nil {
		t.Fatalf("WriteBlob restarting: %v", err)
	}
	if got, err := content.ReadBlob(ctx, s, opts.Expected); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("ReadBlob = %d bytes, %v; want the %d written", len(got), err, len(plain))
	}
	for _, ref := range []string{"helper", "helper-seek", "helper-restart"} {
		wantNoIngest(t, s, ref)
	}
}
