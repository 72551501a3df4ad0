package local_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/content/contenttest"
	"github.com/berth-dev/berth/internal/content/local"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

func factory(ctx context.Context, root string) (content.Store, func() error, error) {
	s, err := local.New(root)
	return s, func() error { return nil }, err
}

func TestConformance(t *testing.T) {
	contenttest.Run(t, factory)
}

func newStore(t *testing.T) (*local.Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func write(t *testing.T, s *local.Store, opts content.WriterOpts, p []byte) content.Writer {
	t.Helper()
	w, err := s.Writer(t.Context(), opts)
	if err != nil {
		t.Fatalf("Writer(%+v): %v", opts, err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return w
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func TestLayout(t *testing.T) {
	s, root := newStore(t)
	for _, dir := range []string{"blobs", "blobs/sha256", "blobs/sha512", "ingest"} {
		wantMode(t, filepath.Join(root, dir), 0o700)
	}

	data := []byte("layout")
	expected := digest.SHA512.FromBytes(data)
	const ref = "layout/ref"
	w := write(t, s, content.WriterOpts{Ref: ref, Total: int64(len(data)), Expected: expected}, data)
	ingest := filepath.Join(root, "ingest", digest.FromString(ref).Encoded())
	wantMode(t, ingest, 0o700)
	records := map[string]string{"data": string(data), "ref": ref, "total": "6", "expected": expected.String()}
	for name, want := range records {
		got, err := os.ReadFile(filepath.Join(ingest, name))
		if err != nil || string(got) != want {
			t.Errorf("ingest file %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(ingest, "startedat")); err != nil {
		t.Error(err)
	}

	if err := w.Commit(t.Context(), 0, "", nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	blob := filepath.Join(root, "blobs", "sha512", expected.Encoded())
	wantMode(t, blob, 0o444)
	if got, err := os.ReadFile(blob); err != nil || !bytes.Equal(got, data) {
		t.Errorf("blob file = %q, %v; want %q", got, err, data)
	}
	if _, err := os.Stat(ingest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ingest directory after Commit: %v, want it gone", err)
	}
}

func TestCommitChecksRecordedExpectations(t *testing.T) {
	s, _ := newStore(t)
	data := []byte("recorded")
	tests := []content.WriterOpts{
		{Ref: "wrong-digest", Expected: digest.FromString("other")},
		{Ref: "wrong-size", Total: 100},
	}
	for _, opts := range tests {
		w := write(t, s, opts, data)
		if err := w.Commit(t.Context(), 0, "", nil); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("%s: Commit with no arguments = %v, want %v", opts.Ref, err, errdefs.ErrFailedPrecondition)
		}
	}
	if _, err := s.Info(t.Context(), digest.FromBytes(data)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Info = %v, want %v", err, errdefs.ErrNotFound)
	}
}

func TestResumeKeepsExpectations(t *testing.T) {
	s, _ := newStore(t)
	const ref = "expectations"
	expected := digest.FromString("expected")
	w := write(t, s, content.WriterOpts{Ref: ref, Total: 8, Expected: expected}, []byte("exp"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	for _, opts := range []content.WriterOpts{
		{Ref: ref, Expected: digest.FromString("different")},
		{Ref: ref, Total: 9},
	} {
		w, err := s.Writer(t.Context(), opts)
		if err == nil {
			w.Close()
		}
		if !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("Writer(%+v) = %v, want %v", opts, err, errdefs.ErrFailedPrecondition)
		}
	}

	w, err := s.Writer(t.Context(), content.WriterOpts{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	st, err := w.Status()
	if err != nil || st.Offset != 3 || st.Total != 8 || st.Expected != expected {
		t.Errorf("Status = %+v, %v; want offset 3, total 8, expected %s", st, err, expected)
	}
}

func TestResumeRecordsLateExpectations(t *testing.T) {
	s, _ := newStore(t)
	const ref = "late"
	data := []byte("late expectations")
	w := write(t, s, content.WriterOpts{Ref: ref}, data[:4])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expected := digest.SHA512.FromBytes(data)
	w = write(t, s, content.WriterOpts{Ref: ref, Total: int64(len(data)), Expected: expected}, data[4:])
	if got := w.Digest(); got != expected {
		t.Errorf("Digest after resuming with a sha512 expectation = %s, want %s", got, expected)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(t.Context(), ref)
	if err != nil || st.Total != int64(len(data)) || st.Expected != expected {
		t.Errorf("Status = %+v, %v; want total %d, expected %s", st, err, len(data), expected)
	}
}

func TestAbortWhileWriterOpen(t *testing.T) {
	s, _ := newStore(t)
	const ref = "open"
	w := write(t, s, content.WriterOpts{Ref: ref}, []byte("x"))
	if err := s.Abort(t.Context(), ref); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Abort with an open Writer = %v, want %v", err, errdefs.ErrUnavailable)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(t.Context(), ref); err != nil {
		t.Errorf("Abort after Close: %v", err)
	}
}

func TestLockedMessage(t *testing.T) {
	s, _ := newStore(t)
	w := write(t, s, content.WriterOpts{Ref: "X"}, nil)
	defer w.Close()
	_, err := s.Writer(t.Context(), content.WriterOpts{Ref: "X"})
	if err == nil || !strings.Contains(err.Error(), `ingest ref "X": locked by another writer`) {
		t.Errorf("second Writer: %v", err)
	}
}

func TestTruncateOnlyToZero(t *testing.T) {
	s, _ := newStore(t)
	w := write(t, s, content.WriterOpts{Ref: "truncate"}, []byte("abc"))
	defer w.Close()
	if err := w.Truncate(1); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("Truncate(1) = %v, want %v", err, errdefs.ErrNotImplemented)
	}
}

func TestUpdateNotImplemented(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.Update(t.Context(), content.Info{Digest: digest.FromString("x")}, "labels")
	if !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("Update = %v, want %v", err, errdefs.ErrNotImplemented)
	}
}

func TestCommitIgnoresLabels(t *testing.T) {
	s, _ := newStore(t)
	data := []byte("labels")
	w := write(t, s, content.WriterOpts{Ref: "labels"}, data)
	if err := w.Commit(t.Context(), 0, "", map[string]string{"a": "1"}); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), digest.FromBytes(data))
	if err != nil || len(info.Labels) != 0 {
		t.Errorf("Info = %+v, %v; want no labels", info, err)
	}
}

func TestWalkIgnoresStrayFiles(t *testing.T) {
	s, root := newStore(t)
	data := []byte("real")
	w := write(t, s, content.WriterOpts{Ref: "real"}, data)
	if err := w.Commit(t.Context(), 0, "", nil); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(root, "blobs", "sha256", "not-a-digest")
	if err := os.WriteFile(stray, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "blobs", "sha256", strings.Repeat("a", 64)), 0o700); err != nil {
		t.Fatal(err)
	}
	var got []digest.Digest
	err := s.Walk(t.Context(), func(info content.Info) error {
		got = append(got, info.Digest)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]digest.Digest{digest.FromBytes(data)}, got); diff != "" {
		t.Errorf("Walk mismatch (-want +got):\n%s", diff)
	}
}

// A crash after Commit renamed the data but before it removed the ingest
// leaves an ingest directory without data.
func TestIngestWithoutData(t *testing.T) {
	s, root := newStore(t)
	const ref = "crashed"
	data := []byte("committed before the crash")
	w := write(t, s, content.WriterOpts{Ref: ref}, data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ingest := filepath.Join(root, "ingest", digest.FromString(ref).Encoded())
	if err := os.Remove(filepath.Join(ingest, "data")); err != nil {
		t.Fatal(err)
	}

	st, err := s.Status(t.Context(), ref)
	if err != nil || st.Offset != 0 {
		t.Errorf("Status = %+v, %v; want offset 0", st, err)
	}
	sts, err := s.ListStatuses(t.Context(), "ref=="+ref)
	if err != nil || len(sts) != 1 {
		t.Errorf("ListStatuses = %+v, %v; want the ingest", sts, err)
	}
	if err := s.Abort(t.Context(), ref); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if _, err := os.Stat(ingest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ingest directory after Abort: %v, want it gone", err)
	}
}

func BenchmarkIngestCommit(b *testing.B) {
	const size = 256 << 20
	for _, bc := range []struct {
		name  string
		chunk int
	}{{"chunk=32KiB", 32 << 10}, {"chunk=1MiB", 1 << 20}} {
		chunk := bc.chunk
		b.Run(bc.name, func(b *testing.B) {
			s, err := local.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, chunk)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			ctx := b.Context()
			b.SetBytes(size)
			for b.Loop() {
				w, err := s.Writer(ctx, content.WriterOpts{Ref: "bench", Total: size})
				if err != nil {
					b.Fatal(err)
				}
				for n := 0; n < size; n += chunk {
					if _, err := w.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				dgst := w.Digest()
				if err := w.Commit(ctx, size, "", nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Delete(ctx, dgst); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
