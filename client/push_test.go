package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/internal/remote/remotetest"
)

// phases collects the last phase of each item of a pull or push.
type phases struct {
	mu   sync.Mutex
	last map[string]string
}

func (p *phases) push(r client.PushProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]string{}
	}
	if r.Kind == "layer" || r.Kind == "config" {
		p.last[r.Kind+" "+r.Digest] = r.Phase
	}
}

func (p *phases) all(want string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ph := range p.last {
		if ph != want {
			return false
		}
	}
	return len(p.last) > 0
}

func TestPushUploadsThenSkips(t *testing.T) {
	ctx := context.Background()
	c := connect(t, "push")
	src := remotetest.New(t, remotetest.Options{})
	src.PushImage(t, "app:v1", remotetest.RandomImage(t, 2, 4096))
	img, err := c.Pull(ctx, src.Host+"/app:v1", client.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := remotetest.New(t, remotetest.Options{})
	var first phases
	desc, err := c.Push(ctx, img.Name, dst.Host+"/copy:v1", client.PushOptions{Progress: first.push})
	if err != nil {
		t.Fatal(err)
	}
	if desc != img.Target {
		t.Errorf("pushed %+v, want %+v", desc, img.Target)
	}
	if !first.all("done") {
		t.Errorf("first push phases %v, want all done", first.last)
	}
	var second phases
	if _, err := c.Push(ctx, img.Name, dst.Host+"/copy:v1", client.PushOptions{Progress: second.push}); err != nil {
		t.Fatal(err)
	}
	if !second.all("exists") {
		t.Errorf("second push phases %v, want all exists", second.last)
	}
	if _, err := c.Push(ctx, "never/pulled:v1", "", client.PushOptions{}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("push of an unknown image: %v", err)
	}
	priv := remotetest.New(t, remotetest.Options{Auth: remotetest.AuthBasic, Username: "u", Password: "p"})
	if _, err := c.Push(ctx, img.Name, priv.Host+"/copy:v1", client.PushOptions{}); !errors.Is(err, client.ErrFailedPrecondition) || !strings.Contains(err.Error(), "no credentials were sent") {
		t.Errorf("anonymous push to a private registry: %v", err)
	}
	if _, err := c.Push(ctx, img.Name, priv.Host+"/copy:v1", client.PushOptions{Auth: client.RegistryAuth{Username: "u", Password: "p"}}); err != nil {
		t.Errorf("push with credentials: %v", err)
	}
	if _, err := c.Pull(ctx, priv.Host+"/copy:v1", client.PullOptions{Auth: client.RegistryAuth{Username: "u", Password: "p"}}); err != nil {
		t.Errorf("pull with credentials: %v", err)
	}
}

// copyBlobs ingests into dst, under a lease, the blobs of img that src has
// (all but skip) and returns the lease's context.
func copyBlobs(t *testing.T, src, dst *client.Client, img client.Image, skip string) context.Context {
	t.Helper()
	ctx := context.Background()
	l, err := dst.CreateLease(ctx, "", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	lctx := client.WithLease(ctx, l.ID)
	read := func(d string) []byte {
		var buf bytes.Buffer
		if _, err := src.ReadBlob(ctx, d, 0, 0, &buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	put := func(d string, data []byte) {
		if d == skip {
			return
		}
		if _, err := dst.Ingest(lctx, bytes.NewReader(data), client.IngestOpts{Ref: "load-" + d, Size: int64(len(data)), Expected: d}); err != nil {
			t.Fatal(err)
		}
	}
	manifest := read(img.Target.Digest)
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	put(m.Config.Digest, read(m.Config.Digest))
	for _, l := range m.Layers {
		put(l.Digest, read(l.Digest))
	}
	put(img.Target.Digest, manifest)
	return lctx
}

func TestCreateImageFromIngestedContent(t *testing.T) {
	ctx := context.Background()
	src := connect(t, "create-src")
	reg := remotetest.New(t, remotetest.Options{})
	reg.PushImage(t, "app:v1", remotetest.RandomImage(t, 2, 4096))
	img, err := src.Pull(ctx, reg.Host+"/app:v1", client.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}

	dst := connect(t, "create-dst")
	lctx := copyBlobs(t, src, dst, img, "")
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, _ := dst.Subscribe(sctx, "namespace=="+dst.Namespace()+",topic~=^/images/")
	got, err := dst.CreateImage(lctx, "loaded/app:v1", img.Target, client.CreateImageOptions{Unpack: true, Labels: map[string]string{"origin": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "docker.io/loaded/app:v1" || got.Target != img.Target || got.Snapshot != img.Snapshot || got.Snapshot == "" || got.Labels["origin"] != "test" {
		t.Errorf("created %+v; pulled %+v", got, img)
	}
	select {
	case ev := <-events:
		if ev.Topic != "/images/create" || !strings.Contains(string(ev.Payload), "docker.io/loaded/app:v1") {
			t.Errorf("event %+v, want /images/create of the image", ev)
		}
	case <-time.After(10 * time.Second):
		t.Error("no event for the created image")
	}

	// One layer short: refused, naming it, and nothing recorded.
	var m struct{ Layers []struct{ Digest string } }
	var buf bytes.Buffer
	if _, err := src.ReadBlob(ctx, img.Target.Digest, 0, 0, &buf); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	partial := connect(t, "create-partial")
	lctx = copyBlobs(t, src, partial, img, m.Layers[1].Digest)
	_, err = partial.CreateImage(lctx, "loaded/app:v1", img.Target, client.CreateImageOptions{Unpack: true})
	if !errors.Is(err, client.ErrFailedPrecondition) || !strings.Contains(err.Error(), m.Layers[1].Digest) {
		t.Errorf("create without a layer: %v", err)
	}
	if _, err := partial.GetImage(ctx, "loaded/app:v1"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("image recorded after a failed create: %v", err)
	}
}
