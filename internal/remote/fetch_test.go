package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote/remotetest"
)

// seeded is a registry holding one image with one layer.
type seeded struct {
	reg   *remotetest.Registry
	ref   Reference
	layer ocispec.Descriptor
	data  []byte
}

func seed(t *testing.T, opts remotetest.Options, layerSize int64) seeded {
	t.Helper()
	reg := remotetest.New(t, opts)
	img := remotetest.RandomImage(t, 1, layerSize)
	reg.PushImage(t, "library/app:1", img)
	return seeded{reg: reg, ref: mustParse(t, reg.Host+"/library/app:1"), layer: layerDescs(t, img)[0], data: layerBytes(t, img, 0)}
}

func TestFetchBlobAndManifest(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 5000)
	c, _ := newTestClient(t, Config{})
	rc, err := c.Fetch(ctx, s.ref, s.layer)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, s.data) {
		t.Errorf("fetched %d bytes, want the layer's %d", len(got), len(s.data))
	}
	_, desc, err := c.Resolve(ctx, s.ref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.FetchManifest(ctx, s.ref, desc)
	if err != nil || digest.FromBytes(m) != desc.Digest {
		t.Errorf("manifest: %v", err)
	}
	missing := s.layer
	missing.Digest = digest.FromString("nothing")
	if _, err := c.Fetch(ctx, s.ref, missing); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), missing.Digest.String()) {
		t.Errorf("missing blob: %v", err)
	}
}

func TestFetchResumesAfterTruncation(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 10000)
	s.reg.Inject(remotetest.Fault{Method: http.MethodGet, Path: "/blobs/" + s.layer.Digest.String(), Times: 1, Action: remotetest.Truncate(4000)})
	c, slept := newTestClient(t, Config{})
	rc, err := c.Fetch(ctx, s.ref, s.layer)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, s.data) {
		t.Fatalf("fetched %d bytes, want %d identical ones", len(got), len(s.data))
	}
	var ranges []string
	for _, q := range s.reg.Requests() {
		if q.Method == http.MethodGet && strings.Contains(q.Path, "/blobs/") {
			ranges = append(ranges, q.Header.Get("Range"))
		}
	}
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != fmt.Sprintf("bytes=4000-%d", s.layer.Size-1) {
		t.Errorf("blob GETs with Range %q, want a resume from byte 4000", ranges)
	}
	if len(slept.all()) != 1 {
		t.Errorf("backoffs %v, want one", slept.all())
	}
}

func TestFetchResumeSkipsBytesWhenRangeIgnored(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 10000)
	path := "/blobs/" + s.layer.Digest.String()
	s.reg.Inject(remotetest.Fault{Method: http.MethodGet, Path: path, Times: 1, Action: remotetest.Truncate(3000)})
	s.reg.Inject(remotetest.Fault{Method: http.MethodGet, Path: path, Times: 1, Action: remotetest.IgnoreRange()})
	c, _ := newTestClient(t, Config{})
	rc, err := c.Fetch(ctx, s.ref, s.layer)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, s.data) {
		t.Fatalf("fetched %d bytes, want %d identical ones", len(got), len(s.data))
	}
}

func TestFetchRange(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 10000)
	c, _ := newTestClient(t, Config{})

	rc, err := c.FetchRange(ctx, s.ref, s.layer, 3000)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, s.data[3000:]) {
		t.Errorf("range fetch returned %d bytes, want the last %d", len(got), len(s.data)-3000)
	}

	rc, err = c.FetchRange(ctx, s.ref, s.layer, s.layer.Size)
	if err != nil || len(readAll(t, rc)) != 0 {
		t.Errorf("range at the end: %v", err)
	}
	if _, err := c.FetchRange(ctx, s.ref, s.layer, s.layer.Size+1); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("range past the end: %v", err)
	}

	s.reg.Inject(remotetest.Fault{Method: http.MethodGet, Path: "/blobs/", Action: remotetest.IgnoreRange()})
	_, err = c.FetchRange(ctx, s.ref, s.layer, 3000)
	if !errors.Is(err, ErrRangeUnsupported) || !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "restart from offset 0") {
		t.Errorf("range ignored: %v", err)
	}
}

func TestVerifyReaderDetectsTamperedBlob(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 5000)
	s.reg.Inject(remotetest.Fault{Method: http.MethodGet, Path: "/blobs/" + s.layer.Digest.String(), Action: remotetest.Tamper()})
	c, _ := newTestClient(t, Config{})
	rc, err := c.Fetch(ctx, s.ref, s.layer)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(VerifyReader(rc, s.layer))
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("err = %v", err)
	}
}

func TestVerifyReader(t *testing.T) {
	data := []byte("hello, berth")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	tests := []struct {
		name string
		in   io.Reader
		desc ocispec.Descriptor
		want string // "" means success
		n    int    // bytes returned
	}{
		{"exact", bytes.NewReader(data), desc, "", len(data)},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data)), desc, "", len(data)},
		{"data error at end", iotest.DataErrReader(bytes.NewReader(data)), desc, "", len(data)},
		{"truncated", bytes.NewReader(data[:5]), desc, "truncated: got 5 of 12 bytes", 5},
		{"too long", bytes.NewReader(append(data, '!')), desc, "more than the expected 12 bytes", len(data)},
		{"wrong content", bytes.NewReader([]byte("HELLO, BERTH")), desc, "digest mismatch", len(data)},
		{"empty blob", bytes.NewReader(nil), ocispec.Descriptor{Digest: digest.FromBytes(nil)}, "", 0},
		{"bad digest", bytes.NewReader(data), ocispec.Descriptor{Digest: "sha256:zz", Size: 1}, "invalid checksum digest", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(VerifyReader(tt.in, tt.desc))
			if len(got) != tt.n {
				t.Errorf("returned %d bytes, want %d", len(got), tt.n)
			}
			if tt.want == "" {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if tt.name != "bad digest" && !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("err = %v, want ErrFailedPrecondition", err)
			}
		})
	}
}

func TestRetryOn5xxThenSucceed(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 1000)
	s.reg.Inject(remotetest.Fault{Path: "/blobs/", Times: 2, Action: remotetest.Status(http.StatusServiceUnavailable)})
	c, slept := newTestClient(t, Config{Retry: RetryPolicy{Initial: time.Millisecond, Max: 4 * time.Millisecond}})
	rc, err := c.Fetch(ctx, s.ref, s.layer)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, rc)
	if n := s.reg.Count(http.MethodGet, "/blobs/"); n != 3 {
		t.Errorf("%d GETs, want 3", n)
	}
	waits := slept.all()
	if len(waits) != 2 || waits[0] > time.Millisecond || waits[1] > 2*time.Millisecond || waits[1] < time.Millisecond {
		t.Errorf("backoffs %v, want ~1ms then ~2ms", waits)
	}
}

func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 1000)
	s.reg.Inject(remotetest.Fault{Path: "/manifests/", Times: 1, Action: remotetest.TooManyRequests("1")})
	c, slept := newTestClient(t, Config{})
	if _, _, err := c.Resolve(ctx, s.ref); err != nil {
		t.Fatal(err)
	}
	if waits := slept.all(); len(waits) != 1 || waits[0] != time.Second {
		t.Errorf("waits %v, want [1s] from Retry-After", waits)
	}

	s.reg.Inject(remotetest.Fault{Path: "/manifests/", Action: remotetest.TooManyRequests("3600")})
	_, _, err := c.Resolve(ctx, s.ref)
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "too many requests (429)") || !strings.Contains(err.Error(), "Retry-After 1h0m0s is over the 1m0s limit") {
		t.Errorf("long Retry-After: %v", err)
	}
	if waits := slept.all(); len(waits) != 1 {
		t.Errorf("waited %v for a Retry-After over the limit", waits)
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := retryAfter(now.Add(7*time.Second).Format(http.TimeFormat), now); got != 7*time.Second {
		t.Errorf("date: %v", got)
	}
	if got := retryAfter("soon", now); got != 0 {
		t.Errorf("garbage: %v", got)
	}
}

// mirrored is a registry "registry.test" served by upstream, with hosts.toml
// listing mirrors first.
func mirroredClient(t *testing.T, upstream *remotetest.Registry, cfg Config, mirrors ...string) (*Client, *sleeps, Reference) {
	t.Helper()
	dir := t.TempDir()
	file := fmt.Sprintf("server = %q\n", upstream.URL)
	for _, m := range mirrors {
		file += m + "\n"
	}
	writeHosts(t, dir, "registry.test", file)
	cfg.HostsDir = dir
	c, s := newTestClient(t, cfg)
	return c, s, mustParse(t, "registry.test/library/app:1")
}

func TestMirrorsInOrder(t *testing.T) {
	up := seed(t, remotetest.Options{}, 2000)
	img := remotetest.RandomImage(t, 1, 10) // the mirrors' own copy is irrelevant here

	t.Run("first mirror serves", func(t *testing.T) {
		ctx := testContext(t)
		mirror := remotetest.New(t, remotetest.Options{})
		mirror.PushImage(t, "library/app:1", img)
		second := remotetest.New(t, remotetest.Options{})
		up.reg.ResetRequests()
		c, _, ref := mirroredClient(t, up.reg, Config{},
			fmt.Sprintf("[host.%q]\ncapabilities = [\"pull\", \"resolve\"]", mirror.URL),
			fmt.Sprintf("[host.%q]\ncapabilities = [\"pull\", \"resolve\"]", second.URL))
		if _, _, err := c.Resolve(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if len(mirror.Requests()) == 0 || len(second.Requests()) != 0 || len(up.reg.Requests()) != 0 {
			t.Errorf("requests: mirror %d, second %d, upstream %d", len(mirror.Requests()), len(second.Requests()), len(up.reg.Requests()))
		}
	})

	t.Run("down mirror is skipped at once", func(t *testing.T) {
		ctx := testContext(t)
		down := remotetest.New(t, remotetest.Options{})
		down.Close()
		c, slept, ref := mirroredClient(t, up.reg, Config{}, fmt.Sprintf("[host.%q]", down.URL))
		if _, _, err := c.Resolve(ctx, ref); err != nil {
			t.Fatal(err)
		}
		rc, err := c.Fetch(ctx, ref, up.layer)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, rc), up.data) {
			t.Error("wrong layer bytes")
		}
		if len(slept.all()) != 0 {
			t.Errorf("waited %v for a refused connection", slept.all())
		}
	})

	t.Run("mirror without the image falls back", func(t *testing.T) {
		ctx := testContext(t)
		empty := remotetest.New(t, remotetest.Options{})
		c, _, ref := mirroredClient(t, up.reg, Config{}, fmt.Sprintf("[host.%q]", empty.URL))
		rc, err := c.Fetch(ctx, ref, up.layer)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, rc)
		if empty.Count(http.MethodGet, "/blobs/") != 1 {
			t.Errorf("mirror not tried first: %v", empty.Requests())
		}
	})

	t.Run("failing mirror retried then skipped", func(t *testing.T) {
		ctx := testContext(t)
		bad := remotetest.New(t, remotetest.Options{})
		bad.Inject(remotetest.Fault{Action: remotetest.Status(http.StatusBadGateway)})
		c, slept, ref := mirroredClient(t, up.reg, Config{Retry: RetryPolicy{Attempts: 2}}, fmt.Sprintf("[host.%q]", bad.URL))
		rc, err := c.Fetch(ctx, ref, up.layer)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, rc)
		if n := bad.Count(http.MethodGet, "/blobs/"); n != 3 {
			t.Errorf("bad mirror got %d tries, want 3", n)
		}
		if len(slept.all()) != 2 {
			t.Errorf("backoffs %v, want 2", slept.all())
		}
	})

	t.Run("all hosts fail", func(t *testing.T) {
		ctx := testContext(t)
		bad := remotetest.New(t, remotetest.Options{})
		bad.Inject(remotetest.Fault{Action: remotetest.Status(http.StatusInternalServerError)})
		down := remotetest.New(t, remotetest.Options{})
		down.Close()
		c, _, ref := mirroredClient(t, down, Config{Retry: RetryPolicy{Attempts: -1}}, fmt.Sprintf("[host.%q]", bad.URL))
		_, _, err := c.Resolve(ctx, ref)
		if !errors.Is(err, errdefs.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
		for _, s := range []string{`resolve "registry.test/library/app:1"`, down.Host, "earlier hosts", bad.Host, "internal server error (500)"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%q does not say %q", err, s)
			}
		}
	})
}

func TestStalledMirrorFailsOverAndResumes(t *testing.T) {
	ctx := testContext(t)
	up := seed(t, remotetest.Options{}, 64<<10)
	mirror := remotetest.New(t, remotetest.Options{})
	mirror.PushImage(t, "library/app:1", remotetest.RandomImage(t, 1, 10))
	mirror.PutBlob(t, "library/app", up.data)
	mirror.Inject(remotetest.Fault{Method: http.MethodGet, Path: "/blobs/", Action: remotetest.Slow(256, 50*time.Millisecond)})
	stall := StallPolicy{MinRate: 50 << 10, Window: 300 * time.Millisecond}
	c, _, ref := mirroredClient(t, up.reg, Config{Stall: stall}, fmt.Sprintf("[host.%q]", mirror.URL))

	rc, err := c.Fetch(ctx, ref, up.layer)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, up.data) {
		t.Fatalf("fetched %d bytes, want %d identical ones", len(got), len(up.data))
	}
	var resumed string
	for _, q := range up.reg.Requests() {
		if q.Method == http.MethodGet && strings.Contains(q.Path, "/blobs/") {
			resumed = q.Header.Get("Range")
		}
	}
	if !strings.HasPrefix(resumed, "bytes=") || strings.HasPrefix(resumed, "bytes=0-") {
		t.Errorf("upstream GET had Range %q, want a resume past the mirror's bytes", resumed)
	}
}

func TestStallWithoutAnotherHostFails(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 4000)
	s.reg.Inject(remotetest.Fault{Method: http.MethodGet, Path: "/blobs/", Action: remotetest.Slow(0, 10*time.Millisecond)})
	c, _ := newTestClient(t, Config{Stall: StallPolicy{MinRate: 1000, Window: 300 * time.Millisecond}})
	rc, err := c.Fetch(ctx, s.ref, s.layer)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	if !errors.Is(err, ErrStalled) || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"stalled", s.reg.Host, "less than 1000 bytes/s over 300ms", s.layer.Digest.String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

func TestStallDetectorIgnoresSlowConsumer(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 4000)
	c, _ := newTestClient(t, Config{Stall: StallPolicy{MinRate: 1 << 20, Window: 200 * time.Millisecond}})
	rc, err := c.Fetch(ctx, s.ref, s.layer)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []byte
	buf := make([]byte, 2000)
	for {
		time.Sleep(250 * time.Millisecond) // longer than the window, between reads
		n, err := rc.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, s.data) {
		t.Error("wrong bytes")
	}
}
