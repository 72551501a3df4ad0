package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote/remotetest"
)

// layerDescs returns the descriptors of img's layers.
func layerDescs(t *testing.T, img v1.Image) []ocispec.Descriptor {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []ocispec.Descriptor
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		mt, _ := l.MediaType()
		out = append(out, ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(d.String()), Size: size})
	}
	return out
}

func layerBytes(t *testing.T, img v1.Image, i int) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[i].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, rc)
}

func TestResolveByTagDigestAndBoth(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{})
	want := reg.PushImage(t, "library/app:1", remotetest.RandomImage(t, 1, 100))
	c, _ := newTestClient(t, Config{})
	for _, s := range []string{
		reg.Host + "/library/app:1",
		reg.Host + "/library/app@" + want.Digest.String(),
		reg.Host + "/library/app:ignored@" + want.Digest.String(),
	} {
		ref := mustParse(t, s)
		name, desc, err := c.Resolve(ctx, ref)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if name != ref.String() || desc.Digest != want.Digest || desc.MediaType != MediaTypeDockerManifest || desc.Size != want.Size {
			t.Errorf("%s: %s %+v, want %+v", s, name, desc, want)
		}
	}
	if n := reg.Count(http.MethodGet, "/manifests/"); n != 0 {
		t.Errorf("resolve used %d GETs; HEAD is enough", n)
	}
}

func TestResolveIndexAndPlatforms(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{})
	want := reg.PushIndex(t, "multi:1", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	reg.PushImage(t, "single:1", remotetest.ImageFromDir(t, t.TempDir()))
	c, _ := newTestClient(t, Config{})

	_, desc, err := c.Resolve(ctx, mustParse(t, reg.Host+"/multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	if !IsIndex(desc.MediaType) || desc.Digest != want.Digest {
		t.Fatalf("index resolved to %+v", desc)
	}
	got, err := c.Platforms(ctx, mustParse(t, reg.Host+"/multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, FormatPlatform(*d.Platform))
	}
	if strings.Join(names, " ") != "linux/amd64 linux/arm64/v8" {
		t.Errorf("index platforms %v", names)
	}
	arm, err := MatchPlatform(ocispec.Index{Manifests: got}, ocispec.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil || arm.Digest != got[1].Digest {
		t.Errorf("match arm64: %+v, %v", arm, err)
	}

	got, err = c.Platforms(ctx, mustParse(t, reg.Host+"/single:1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Platform == nil || FormatPlatform(*got[0].Platform) != "linux/amd64" || !IsManifest(got[0].MediaType) {
		t.Errorf("single-image platforms %+v", got)
	}
}

func TestResolveFallsBackToGetAndSniffsGenericType(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{})
	img := remotetest.RandomImage(t, 1, 100)
	raw, _ := img.RawManifest()
	// A registry that answers HEAD with 405 and serves the manifest as
	// plain JSON.
	reg.PutManifest(t, "app", "1", "application/json", raw)
	reg.Inject(remotetest.Fault{Method: http.MethodHead, Action: remotetest.Status(http.StatusMethodNotAllowed)})
	c, _ := newTestClient(t, Config{})
	_, desc, err := c.Resolve(ctx, mustParse(t, reg.Host+"/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != MediaTypeDockerManifest || desc.Digest != digest.FromBytes(raw) || desc.Size != int64(len(raw)) {
		t.Errorf("desc %+v", desc)
	}
}

func TestResolveRefuses(t *testing.T) {
	schema1 := []byte(`{"schemaVersion": 1, "name": "app", "tag": "old", "fsLayers": [], "history": []}`)
	big := bytes.Repeat([]byte(" "), MaxManifestSize+1)
	copy(big, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`)
	tests := []struct {
		name      string
		mediaType string
		body      []byte
		fault     *remotetest.Fault
		kind      error
		want      string
	}{
		{"schema1 signed", "application/vnd.docker.distribution.manifest.v1+prettyjws", schema1, nil, errdefs.ErrNotImplemented, "Docker schema 1 manifest"},
		{"schema1 as json", "application/json", schema1, nil, errdefs.ErrNotImplemented, "Docker schema 1 manifest"},
		{"over 4 MiB", ocispec.MediaTypeImageManifest, big, nil, errdefs.ErrInvalidArgument, "over the 4 MiB manifest size limit"},
		{"unknown media type", "application/vnd.example.thing+json", []byte(`{"x":1}`), nil, errdefs.ErrNotImplemented, `unsupported media type "application/vnd.example.thing+json"`},
		{"html page", ocispec.MediaTypeImageManifest, []byte(`{}`), &remotetest.Fault{Path: "/manifests/", Action: remotetest.HTML()}, errdefs.ErrUnavailable, "HTML page"},
		{"html without content type", "", []byte("<html><body>hi</body></html>"), nil, errdefs.ErrUnavailable, "HTML page"},
		{"not json", "text/plain", []byte("hello"), nil, errdefs.ErrUnavailable, "not a JSON manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			reg := remotetest.New(t, remotetest.Options{})
			reg.PutManifest(t, "app", "1", tt.mediaType, tt.body)
			if tt.fault != nil {
				reg.Inject(*tt.fault)
			}
			c, _ := newTestClient(t, Config{})
			ref := mustParse(t, reg.Host+"/app:1")
			_, _, err := c.Resolve(ctx, ref)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			for _, s := range []string{tt.want, ref.String(), reg.Host} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
}

func TestResolveMissingTagIsNotFound(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{})
	reg.PushImage(t, "app:1", remotetest.RandomImage(t, 1, 10))
	c, _ := newTestClient(t, Config{})
	for _, s := range []string{reg.Host + "/app:2", reg.Host + "/nothing:1"} {
		ref := mustParse(t, s)
		_, _, err := c.Resolve(ctx, ref)
		if !errdefs.IsNotFound(err) {
			t.Fatalf("%s: err = %v", s, err)
		}
		if !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), `resolve "`+ref.String()+`"`) {
			t.Errorf("%q does not say not found naming the ref", err)
		}
	}
}

func TestTagsFollowsPagination(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{})
	img := remotetest.RandomImage(t, 1, 10)
	want := []string{"a", "b", "c", "d", "e"}
	for _, tag := range want {
		reg.PushImage(t, "app:"+tag, img)
	}
	// The in-process registry does not paginate by itself: serve pages of
	// two with a Link header, as Docker Hub does.
	reg.Inject(remotetest.Fault{Path: "/tags/list", Action: paginate(2)})
	c, _ := newTestClient(t, Config{})
	got, err := c.Tags(ctx, mustParse(t, reg.Host+"/app"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("tags %v, want %v", got, want)
	}
	if n := reg.Count(http.MethodGet, "/tags/list"); n != 3 {
		t.Errorf("%d pages fetched, want 3", n)
	}
	if _, err := c.Tags(ctx, mustParse(t, reg.Host+"/nothing")); !errdefs.IsNotFound(err) {
		t.Errorf("tags of a missing repository: %v", err)
	}
}

// paginate makes tag lists come in pages of n with a rel="next" Link.
func paginate(n int) remotetest.Action {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		q := r.URL.Query()
		q.Set("n", "2")
		r.URL.RawQuery = q.Encode()
		rec := &recorder{header: http.Header{}}
		next.ServeHTTP(rec, r)
		var doc struct {
			Tags []string `json:"tags"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &doc)
		if len(doc.Tags) == n {
			w.Header().Set("Link", `</v2/app/tags/list?n=2&last=`+doc.Tags[n-1]+`>; rel="next"`)
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
