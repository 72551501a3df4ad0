package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/opencontainers/go-digest"
)

func TestContentThroughCLI(t *testing.T) {
	d := newDaemon(t)
	d.start()
	data := []byte("hello from berth e2e\n")
	file := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(file, data, 0644); err != nil {
		t.Fatal(err)
	}
	want := digest.FromBytes(data).String()
	got := strings.TrimSpace(d.berth(nil, "content", "ingest", "--label", "owner=e2e", "hello", file).ok(t))
	if got != want {
		t.Fatalf("ingest printed %q, want %q", got, want)
	}
	if ls := d.berth(nil, "content", "ls", "-q").ok(t); strings.TrimSpace(ls) != want {
		t.Errorf("ls -q = %q", ls)
	}
	var infos []client.BlobInfo
	if err := json.Unmarshal([]byte(d.berth(nil, "content", "ls", "--format", "json").ok(t)), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Size != int64(len(data)) || infos[0].Labels["owner"] != "e2e" {
		t.Errorf("ls json = %+v", infos)
	}
	if out := d.berth(nil, "content", "get", want).ok(t); out != string(data) {
		t.Errorf("get = %q", out)
	}
	if out := d.berth(nil, "content", "get", "--offset", "6", "--size", "4", want).ok(t); out != "from" {
		t.Errorf("ranged get = %q", out)
	}
	d.berth(nil, "content", "label", want, "tier=gold", "owner=").ok(t)
	info, err := d.client("default").BlobInfo(context.Background(), want)
	if err != nil || info.Labels["tier"] != "gold" || info.Labels["owner"] != "" {
		t.Errorf("after label: %+v, %v", info, err)
	}
	d.berth(nil, "content", "rm", want).ok(t)
	d.berth(nil, "content", "get", want).fails(t, 1, "not found")
	d.berth(nil, "system", "prune").ok(t)
	if _, err := os.Stat(filepath.Join(d.root, "content", "blobs", "sha256", digest.Digest(want).Encoded())); !os.IsNotExist(err) {
		t.Errorf("removed blob still on disk after prune: %v", err)
	}
}

func TestCLIBadInputIsExplained(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.berth(nil, "content", "get", "sha256:xyz").fails(t, 1, `digest "sha256:xyz"`)
	d.berth(nil, "content", "rm", "md5:abc").fails(t, 1, "md5")
	d.berth(nil, "-n", "nosuch", "content", "ls").fails(t, 1, `namespace "nosuch"`)
	d.berth(nil, "namespace", "create", "Bad_Name").fails(t, 1, `namespace "Bad_Name"`)
	big := "k=" + strings.Repeat("v", 5000)
	d.berth(nil, "namespace", "create", "--label", big, "big").fails(t, 1, "limit of 4096")
	d.berth(nil, "content", "ingest", "--expected", "sha256:"+strings.Repeat("0", 64), "wrong", "-").fails(t, 1, "")
	d.berth(nil, "lease", "create", "--id", "a/b").fails(t, 1, "lease id")
	d.berth(nil, "no-such-verb").fails(t, 2, "unknown command")
	d.berth(nil, "content", "ls", "--no-such-flag").fails(t, 2, "unknown flag")
	d.berth(nil, "content", "ls", "--filter", "size~=(").fails(t, 1, "regular expression")
	// The daemon is still healthy after all of that.
	d.berth(nil, "info").ok(t)
}

func TestNamespacesAreIsolatedOverTheAPI(t *testing.T) {
	d := newDaemon(t)
	d.start()
	ctx := context.Background()
	a, b := d.client("team-a"), d.client("team-b")
	if _, err := b.CreateNamespace(ctx, "team-b", nil); err != nil {
		t.Fatal(err)
	}
	dgst, err := a.Ingest(ctx, strings.NewReader("only for a"), client.IngestOpts{Ref: "r1", Labels: map[string]string{"berth.io/gc.root": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.BlobInfo(ctx, dgst); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("team-b sees team-a's blob: %v", err)
	}
	if blobs, err := b.ListBlobs(ctx); err != nil || len(blobs) != 0 {
		t.Errorf("team-b lists %v, %v", blobs, err)
	}
	if _, err := b.ReadBlob(ctx, dgst, 0, 0, io.Discard); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("team-b reads team-a's blob: %v", err)
	}
	if err := b.DeleteBlob(ctx, dgst); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("team-b deletes team-a's blob: %v", err)
	}
	// Leases and ingests are per namespace too.
	if _, err := a.CreateLease(ctx, "same-id", 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateLease(ctx, "same-id", 0, nil); err != nil {
		t.Errorf("lease id taken across namespaces: %v", err)
	}
	if err := a.DeleteNamespace(ctx, "team-a"); !errors.Is(err, client.ErrFailedPrecondition) || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("deleting a non-empty namespace: %v", err)
	}
	r := d.berth(nil, "namespace", "rm", "team-a")
	r.fails(t, 1, "not empty")
	if out := d.berth(nil, "namespace", "ls", "-q").ok(t); !strings.Contains(out, "team-a") || !strings.Contains(out, "team-b") || !strings.Contains(out, "default") {
		t.Errorf("namespace ls -q = %q", out)
	}
}

func TestEventsForEveryMutation(t *testing.T) {
	d := newDaemon(t)
	d.start()
	c := d.client("ev")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evc, errc := c.Subscribe(ctx)
	if _, err := c.CreateNamespace(ctx, "ev", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case first := <-evc:
		if first.Topic != "/namespaces/create" {
			t.Fatalf("first event %+v", first)
		}
	case err := <-errc:
		t.Fatalf("stream failed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event for a mutation made after Subscribe returned")
	}
	dgst, err := c.Ingest(ctx, strings.NewReader("evented"), client.IngestOpts{Ref: "e1"})
	must(t, err)
	_, err = c.SetBlobLabels(ctx, dgst, map[string]string{"x": "y"})
	must(t, err)
	_, err = c.CreateLease(ctx, "l1", time.Hour, nil)
	must(t, err)
	must(t, c.AddLeaseResource(ctx, "l1", client.LeaseResource{Type: "content", ID: dgst}))
	must(t, c.DeleteLeaseResource(ctx, "l1", client.LeaseResource{Type: "content", ID: dgst}))
	must(t, c.DeleteLease(ctx, "l1", false))
	must(t, c.DeleteBlob(ctx, dgst))
	_, err = c.SetNamespaceLabels(ctx, "ev", map[string]string{"a": "b"})
	must(t, err)
	_, err = c.GarbageCollect(ctx)
	must(t, err)
	want := []string{"/content/create", "/content/update", "/leases/create", "/leases/resource/add", "/leases/resource/delete",
		"/leases/delete", "/content/delete", "/namespaces/update", "/gc/collect"}
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case ev := <-evc:
			if ev.Topic == "/gc/collect" && len(got) < len(want)-1 {
				continue // automatic collections after deletes may come early
			}
			if ev.Namespace != "ev" && ev.Topic != "/gc/collect" {
				t.Errorf("event %s in namespace %q", ev.Topic, ev.Namespace)
			}
			got = append(got, ev.Topic)
		case err := <-errc:
			t.Fatalf("stream failed: %v", err)
		case <-timeout:
			t.Fatalf("got events %v, want %v", got, want)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
}

func TestEventsCLIStreams(t *testing.T) {
	d := newDaemon(t)
	d.start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, filepath.Join(binDir, "berth"), "--address", d.sock, "events", "--format", "json")
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	dec := json.NewDecoder(stdout)
	// Keep creating namespaces until the subscription is live and reports one.
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			d.berth(nil, "lease", "create", "--id", "probe-"+string(rune('a'+i%26))+time.Now().Format("150405.000000"))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var ev client.Event
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	if ev.Topic != "/leases/create" || ev.Namespace != "default" || ev.Type != "berth.services.events.v1.LeaseCreate" || !bytes.Contains(ev.Payload, []byte("probe-")) {
		t.Errorf("event = %+v (payload %s)", ev, ev.Payload)
	}
	cancel()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// slowReader yields n random bytes, then blocks until release is closed,
// then yields the rest.
type slowReader struct {
	data    []byte
	off     int
	pauseAt int
	release chan struct{}
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.off == r.pauseAt {
		<-r.release
	}
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	end := min(len(r.data), r.off+len(p))
	if r.off < r.pauseAt {
		end = min(end, r.pauseAt)
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

func TestIngestResumesAfterDaemonKilled(t *testing.T) {
	d := newDaemon(t)
	d.start()
	data := make([]byte, 24<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	want := digest.FromBytes(data).String()
	c := d.client("default")
	src := &slowReader{data: data, pauseAt: 10 << 20, release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := c.Ingest(context.Background(), src, client.IngestOpts{Ref: "big", Size: int64(len(data)), Expected: want})
		done <- err
	}()
	// Kill the daemon once it has written most of the first part.
	for deadline := time.Now().Add(20 * time.Second); ; {
		st, err := c.IngestStatus(context.Background(), "big")
		if err == nil && st.Offset >= 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest did not progress: %+v, %v", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.kill()
	close(src.release) // the client notices the dead daemon on its next send
	if err := <-done; err == nil {
		t.Fatal("ingest succeeded although the daemon was killed")
	}

	d.start()
	c = d.client("default")
	st, err := c.IngestStatus(context.Background(), "big")
	if err != nil || st.Offset < 8<<20 || st.Offset > 10<<20 {
		t.Fatalf("status after restart = %+v, %v; want the offset reached before the kill", st, err)
	}
	if _, err := c.BlobInfo(context.Background(), want); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a blob exists before the ingest finished: %v", err)
	}
	var resumedAt int64 = -1
	got, err := c.Ingest(context.Background(), bytes.NewReader(data), client.IngestOpts{Ref: "big", Size: int64(len(data)), Expected: want,
		Progress: func(off int64) {
			if resumedAt < 0 {
				resumedAt = off
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got != want || resumedAt != st.Offset {
		t.Errorf("resumed at %d (daemon had %d), digest %s want %s", resumedAt, st.Offset, got, want)
	}
	var buf bytes.Buffer
	if _, err := c.ReadBlob(context.Background(), want, 0, 0, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("blob read back differs (err %v)", err)
	}
}
