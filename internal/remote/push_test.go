package remote

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/remote/remotetest"
)

func TestCopySkipsBlobsTheTargetHas(t *testing.T) {
	ctx := testContext(t)
	src := remotetest.New(t, remotetest.Options{})
	dst := remotetest.New(t, remotetest.Options{})
	img := remotetest.RandomImage(t, 2, 2000)
	want := src.PushImage(t, "app:1", img)
	c, _ := newTestClient(t, Config{})
	from, to := mustParse(t, src.Host+"/app:1"), mustParse(t, dst.Host+"/copy:1")

	got, err := c.Copy(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want.Digest {
		t.Errorf("copied %s, want %s", got.Digest, want.Digest)
	}
	if n := dst.Count(http.MethodPost, "/blobs/uploads"); n != 3 {
		t.Errorf("first copy started %d uploads, want 3 (2 layers, config)", n)
	}
	_, desc, err := c.Resolve(ctx, to)
	if err != nil || desc.Digest != want.Digest {
		t.Fatalf("target resolves to %+v, %v", desc, err)
	}

	dst.ResetRequests()
	if _, err := c.Copy(ctx, from, to); err != nil {
		t.Fatal(err)
	}
	if n := dst.Count(http.MethodHead, "/blobs/"); n != 3 {
		t.Errorf("second copy made %d blob HEADs, want 3", n)
	}
	if n := dst.Count(http.MethodPost, "") + dst.Count(http.MethodPatch, "") + dst.Count(http.MethodPut, "/blobs/"); n != 0 {
		t.Errorf("second copy uploaded again: %v", dst.Requests())
	}
	if n := dst.Count(http.MethodPut, "/manifests/1"); n != 1 {
		t.Errorf("second copy put the tag %d times, want 1", n)
	}
}

func TestCopyMountsFromSourceRepository(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{Auth: remotetest.AuthBearer})
	img := remotetest.RandomImage(t, 2, 1000)
	reg.PushImage(t, "team/base:1", img)
	c, _ := newTestClient(t, Config{})
	reg.ResetRequests()
	if _, err := c.Copy(ctx, mustParse(t, reg.Host+"/team/base:1"), mustParse(t, reg.Host+"/team/app:1")); err != nil {
		t.Fatal(err)
	}
	var mounts []string
	for _, q := range reg.Requests() {
		if q.Method == http.MethodPost && strings.Contains(q.RawQuery, "mount=") && strings.Contains(q.RawQuery, "from=team%2Fbase") {
			mounts = append(mounts, q.RawQuery)
		}
	}
	if len(mounts) != 3 {
		t.Errorf("mount requests %v, want 3", mounts)
	}
	if n := reg.Count(http.MethodPut, "/blobs/uploads") + reg.Count(http.MethodPatch, ""); n != 0 {
		t.Errorf("%d uploads despite mounts", n)
	}
	for _, l := range layerDescs(t, img) {
		if !reg.HasBlob("team/app", l.Digest) {
			t.Errorf("layer %s not in team/app", l.Digest)
		}
	}
}

func TestCopyIndexPushesManifestsLast(t *testing.T) {
	ctx := testContext(t)
	src := remotetest.New(t, remotetest.Options{})
	dst := remotetest.New(t, remotetest.Options{})
	want := src.PushIndex(t, "multi:1", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	c, _ := newTestClient(t, Config{})
	if _, err := c.Copy(ctx, mustParse(t, src.Host+"/multi:1"), mustParse(t, dst.Host+"/multi:2")); err != nil {
		t.Fatal(err)
	}
	var puts []string
	for _, q := range dst.Requests() {
		if q.Method == http.MethodPut {
			puts = append(puts, q.Path)
		}
	}
	// 2 images x (1 layer + config) uploads, 2 child manifests, the index.
	if len(puts) != 7 {
		t.Fatalf("PUTs %v, want 7", puts)
	}
	if last := puts[len(puts)-1]; last != "/v2/multi/manifests/2" {
		t.Errorf("last PUT %s, want the tagged index", last)
	}
	// Each image: its layer and config uploads, then its manifest.
	for i := 0; i < 2; i++ {
		if !strings.Contains(puts[2+3*i], "/manifests/sha256:") || !strings.Contains(puts[3*i], "/blobs/uploads/") || !strings.Contains(puts[1+3*i], "/blobs/uploads/") {
			t.Errorf("image %d not pushed blobs first: %v", i, puts)
		}
	}
	_, desc, err := c.Resolve(ctx, mustParse(t, dst.Host+"/multi:2"))
	if err != nil || desc.Digest != want.Digest {
		t.Errorf("target resolves to %+v, %v", desc, err)
	}
}

func TestPushChunked(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{})
	c, _ := newTestClient(t, Config{ChunkSize: 1000})
	data := bytes.Repeat([]byte("0123456789"), 450)
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	ref := mustParse(t, reg.Host+"/chunks:1")
	opened := 0
	err := c.Push(ctx, ref, desc, func() (io.ReadCloser, error) {
		opened++
		return io.NopCloser(bytes.NewReader(data)), nil
	}, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ranges []string
	for _, q := range reg.Requests() {
		if q.Method == http.MethodPatch {
			ranges = append(ranges, q.Header.Get("Content-Range"))
		}
	}
	if strings.Join(ranges, " ") != "0-999 1000-1999 2000-2999 3000-3999 4000-4499" {
		t.Errorf("chunks %v", ranges)
	}
	if !reg.HasBlob("chunks", desc.Digest) || opened != 1 {
		t.Errorf("blob stored %t, content opened %d times", reg.HasBlob("chunks", desc.Digest), opened)
	}
}

func TestPushManifestByDigestSkipsExisting(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{})
	img := remotetest.RandomImage(t, 1, 100)
	want := reg.PushImage(t, "app:1", img)
	raw, _ := img.RawManifest()
	c, _ := newTestClient(t, Config{})
	reg.ResetRequests()
	ref := mustParse(t, reg.Host+"/app@"+want.Digest.String())
	err := c.Push(ctx, ref, want, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := reg.Count(http.MethodPut, ""); n != 0 {
		t.Errorf("%d PUTs for a manifest the registry has", n)
	}
}

func TestPushUsesOnlyPushCapableHosts(t *testing.T) {
	ctx := testContext(t)
	src := remotetest.New(t, remotetest.Options{})
	src.PushImage(t, "app:1", remotetest.RandomImage(t, 1, 100))
	upstream := remotetest.New(t, remotetest.Options{})
	readOnly := remotetest.New(t, remotetest.Options{})
	c, _, ref := mirroredClient(t, upstream, Config{}, fmt.Sprintf("[host.%q]\ncapabilities = [\"pull\", \"resolve\"]", readOnly.URL))
	if _, err := c.Copy(ctx, mustParse(t, src.Host+"/app:1"), ref); err != nil {
		t.Fatal(err)
	}
	for _, q := range readOnly.Requests() {
		if q.Method != http.MethodGet && q.Method != http.MethodHead {
			t.Errorf("resolve-only mirror got %s %s", q.Method, q.Path)
		}
	}
	if upstream.Count(http.MethodPut, "/manifests/1") != 1 {
		t.Errorf("upstream did not get the manifest: %v", upstream.Requests())
	}

	pushMirror := remotetest.New(t, remotetest.Options{})
	upstream.ResetRequests()
	c, _, ref = mirroredClient(t, upstream, Config{},
		fmt.Sprintf("[host.%q]\ncapabilities = [\"pull\", \"resolve\"]", readOnly.URL),
		fmt.Sprintf("[host.%q]\ncapabilities = [\"push\"]", pushMirror.URL))
	if _, err := c.Copy(ctx, mustParse(t, src.Host+"/app:1"), ref); err != nil {
		t.Fatal(err)
	}
	if pushMirror.Count(http.MethodPut, "/manifests/1") != 1 || len(upstream.Requests()) != 0 {
		t.Errorf("push went to upstream %v instead of the push host", upstream.Requests())
	}
}

func TestPushUploadsWhenMountDeclined(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{})
	c, _ := newTestClient(t, Config{})
	data := []byte("layer bytes")
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	err := c.Push(ctx, mustParse(t, reg.Host+"/app:1"), desc, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, PushOptions{From: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Count(http.MethodPost, "/blobs/uploads") != 1 || reg.Count(http.MethodPut, "/blobs/uploads") != 1 || !reg.HasBlob("app", desc.Digest) {
		t.Errorf("requests %v", reg.Requests())
	}
}
