package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/opencontainers/go-digest"
)

// unique returns name with a random suffix, so tests pass with -count=N
// against the one daemon.
func unique(name string) string {
	var b [4]byte
	rand.Read(b[:])
	return name + "-" + hex.EncodeToString(b[:])
}

func connect(t *testing.T, ns string) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), socket, client.WithNamespace(unique(ns)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNewReportsMissingDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := client.New(context.Background(), sock)
	if err == nil || !strings.Contains(err.Error(), "cannot connect to berthd at "+sock+": is it running?") {
		t.Fatalf("got %v", err)
	}
	if _, err := client.New(context.Background(), socket, client.WithNamespace("Not Valid")); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("invalid namespace accepted: %v", err)
	}
}

func TestErrorKindsCrossTheWire(t *testing.T) {
	ctx := context.Background()
	c := connect(t, "kinds")
	tests := []struct {
		name string
		err  error
		kind error
		msg  string
	}{
		{"invalid digest", func() error { _, err := c.BlobInfo(ctx, "sha256:xyz"); return err }(), client.ErrInvalidArgument, `digest "sha256:xyz"`},
		{"unsupported algorithm", func() error { _, err := c.BlobInfo(ctx, "md5:d41d8cd98f00b204e9800998ecf8427e"); return err }(), client.ErrInvalidArgument, "md5"},
		{"unknown namespace", func() error { _, err := connect(t, "never-created").ListBlobs(ctx); return err }(), client.ErrNotFound, `namespace "never-created-`},
		{"missing blob", func() error { _, err := c.BlobInfo(ctx, digest.FromString("absent").String()); return err }(), client.ErrNotFound, "not found"},
		{"oversized label", func() error {
			_, err := c.CreateNamespace(ctx, "big-labels", map[string]string{"k": strings.Repeat("v", 5000)})
			return err
		}(), client.ErrInvalidArgument, "limit of 4096"},
		{"bad filter", func() error { _, err := c.ListNamespaces(ctx, "name~=("); return err }(), client.ErrInvalidArgument, "regular expression"},
		{"read outside blob", func() error {
			dgst, err := c.Ingest(ctx, strings.NewReader("short"), client.IngestOpts{Ref: "short", Labels: map[string]string{"berth.io/gc.root": "t"}})
			if err != nil {
				return err
			}
			_, err = c.ReadBlob(ctx, dgst, 99, 0, io.Discard)
			return err
		}(), client.ErrInvalidArgument, "outside"},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.kind) || !strings.Contains(tt.err.Error(), tt.msg) {
			t.Errorf("%s: got %v, want kind %v with %q", tt.name, tt.err, tt.kind, tt.msg)
		}
	}
	twice := unique("twice")
	if _, err := c.CreateNamespace(ctx, twice, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNamespace(ctx, twice, nil); !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("second create: %v", err)
	}
}

func TestCommitMismatchLeavesNoBlob(t *testing.T) {
	ctx := context.Background()
	c := connect(t, "mismatch")
	wrong := digest.FromString("something else").String()
	_, err := c.Ingest(ctx, strings.NewReader("actual bytes"), client.IngestOpts{Ref: "m", Expected: wrong})
	if !errors.Is(err, client.ErrFailedPrecondition) {
		t.Fatalf("got %v", err)
	}
	if blobs, err := c.ListBlobs(ctx); err != nil || len(blobs) != 0 {
		t.Errorf("blobs after failed commit: %v, %v", blobs, err)
	}
	if ingests, err := c.ListIngests(ctx); err != nil || len(ingests) != 0 {
		t.Errorf("ingests after failed commit: %v, %v", ingests, err)
	}
}

// failingReader returns its data, then an error.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("source went away")
	}
	return n, err
}

func TestIngestRestartsWhenInputCannotSeek(t *testing.T) {
	ctx := context.Background()
	c := connect(t, "restart")
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000) // ~4.6 MiB, several chunks
	_, err := c.Ingest(ctx, &failingReader{bytes.NewReader(data[:3<<20])}, client.IngestOpts{Ref: "r"})
	if err == nil || !strings.Contains(err.Error(), "source went away") {
		t.Fatalf("interrupted ingest: %v", err)
	}
	st, err := c.IngestStatus(ctx, "r")
	if err != nil || st.Offset != 3<<20 {
		t.Fatalf("status = %+v, %v", st, err)
	}
	// io.MultiReader cannot seek: the ingest must start over, not append.
	got, err := c.Ingest(ctx, io.MultiReader(bytes.NewReader(data)), client.IngestOpts{Ref: "r", Expected: digest.FromBytes(data).String()})
	if err != nil || got != digest.FromBytes(data).String() {
		t.Fatalf("restarted ingest = %s, %v", got, err)
	}
}

func TestCallNamespaceOverridesClientNamespace(t *testing.T) {
	ctx := context.Background()
	c := connect(t, "first")
	other := client.WithCallNamespace(ctx, unique("second"))
	if _, err := c.CreateLease(other, "only-in-second", 0, nil); err != nil {
		t.Fatal(err)
	}
	in2, err := c.ListLeases(other)
	if err != nil || len(in2) != 1 {
		t.Fatalf("second: %v, %v", in2, err)
	}
	if _, err := c.ListLeases(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("lease visible in first namespace (or first exists): %v", err)
	}
}

// BenchmarkIngest measures ingest and commit of 64 MiB through the API of
// the in-process daemon (socket, gRPC, content store, metadata).
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	c, err := client.New(ctx, socket, client.WithNamespace(unique("bench")))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 64<<20)
	rand.Read(data)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		data[0] = byte(i) // a new blob each time
		dgst, err := c.Ingest(ctx, bytes.NewReader(data), client.IngestOpts{Ref: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.DeleteBlob(ctx, dgst); err != nil {
			b.Fatal(err)
		}
	}
}
