package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/remote/remotetest"
)

// testContext carries a logger that writes to t.Log.
func testContext(t *testing.T) context.Context {
	t.Helper()
	h := slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return log.WithLogger(ctx, slog.New(h))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// sleeps records the waits a Client asked for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// newTestClient returns a Client whose hosts directory is empty unless cfg
// names one, and whose retries do not wait.
func newTestClient(t *testing.T, cfg Config) (*Client, *sleeps) {
	t.Helper()
	if cfg.HostsDir == "" {
		cfg.HostsDir = t.TempDir()
	}
	c := New(cfg)
	s := &sleeps{}
	c.sleep = s.sleep
	t.Cleanup(func() { c.Close() })
	return c, s
}

// writeHosts writes dir/<registry>/hosts.toml.
func writeHosts(t *testing.T, dir, registry, content string) string {
	t.Helper()
	p := filepath.Join(dir, registry, "hosts.toml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustParse(t *testing.T, s string) Reference {
	t.Helper()
	ref, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func readAll(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoopbackRegistryWithoutConfigFallsBackToHTTP(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{}) // plain HTTP only
	want := reg.PushImage(t, "library/app:1", remotetest.RandomImage(t, 2, 1000))
	c, _ := newTestClient(t, Config{})
	ref := mustParse(t, reg.Host+"/library/app:1")
	plans, err := c.Explain(ctx, ref, CapResolve)
	if err != nil || len(plans) != 1 || !plans[0].HTTPFallback || plans[0].PlainHTTP {
		t.Fatalf("plans %+v, %v", plans, err)
	}
	for range 2 { // the second time, straight to http
		_, desc, err := c.Resolve(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != want.Digest {
			t.Fatalf("resolved %+v, want %+v", desc, want)
		}
	}
	if _, err := c.FetchManifest(ctx, ref, want); err != nil {
		t.Fatal(err)
	}
}

func TestTLSRegistry(t *testing.T) {
	reg := remotetest.New(t, remotetest.Options{TLS: true})
	reg.PushImage(t, "app:1", remotetest.RandomImage(t, 1, 100))
	ref := mustParse(t, "registry.test/app:1")
	resolve := func(hosts string) error {
		t.Helper()
		dir := t.TempDir()
		writeHosts(t, dir, "registry.test", hosts)
		c, slept := newTestClient(t, Config{HostsDir: dir})
		_, _, err := c.Resolve(testContext(t), ref)
		if len(slept.all()) != 0 {
			t.Errorf("retried a TLS failure: %v", slept.all())
		}
		return err
	}
	server := fmt.Sprintf("server = %q\n", reg.URL)
	if err := resolve(server); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
	if err := resolve(server + fmt.Sprintf("ca = %q\n", reg.CAFile(t))); err != nil {
		t.Errorf("with ca: %v", err)
	}
	if err := resolve(server + "skip_verify = true\n"); err != nil {
		t.Errorf("with skip_verify: %v", err)
	}
	err := resolve(server + "ca = \"missing.pem\"\n")
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing ca file: %v", err)
	}
}

func TestHTTPSHostIsNotDowngraded(t *testing.T) {
	reg := remotetest.New(t, remotetest.Options{}) // plain HTTP only
	reg.PushImage(t, "app:1", remotetest.RandomImage(t, 1, 100))
	dir := t.TempDir()
	writeHosts(t, dir, "registry.test", fmt.Sprintf("server = %q\n", "https://"+reg.Host))
	c, _ := newTestClient(t, Config{HostsDir: dir})
	if _, _, err := c.Resolve(testContext(t), mustParse(t, "registry.test/app:1")); err == nil {
		t.Error("resolved over plain HTTP from a host configured as https")
	}
	for _, q := range reg.Requests() {
		t.Errorf("%s %s sent over plain HTTP", q.Method, q.Path)
	}
}

func TestHostBelowAPathGetsEveryRequestWithItsHeaders(t *testing.T) {
	ctx := testContext(t)
	reg := remotetest.New(t, remotetest.Options{Auth: remotetest.AuthBasic, Username: "robot", Password: "s3cret"})
	want := reg.PushImage(t, "app:1", remotetest.RandomImage(t, 1, 100))
	target, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var seen []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s x-team=%s", r.Method, r.URL.Path, r.Header.Get("X-Team")))
		mu.Unlock()
		rest, ok := strings.CutPrefix(r.URL.Path, "/mirror")
		if !ok {
			http.NotFound(w, r)
			return
		}
		r.URL.Path, r.URL.RawPath = rest, ""
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	dir := t.TempDir()
	writeHosts(t, dir, "registry.test", fmt.Sprintf("server = %q\nusername = \"robot\"\npassword = \"s3cret\"\n[header]\nx-team = \"build\"\n", front.URL+"/mirror"))
	c, _ := newTestClient(t, Config{HostsDir: dir})
	ref := mustParse(t, "registry.test/app:1")
	if _, desc, err := c.Resolve(ctx, ref); err != nil || desc.Digest != want.Digest {
		t.Fatalf("resolved %+v, %v", desc, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 {
		t.Errorf("requests %q, want the ping and the manifest", seen)
	}
	for _, s := range seen {
		if !strings.Contains(s, " /mirror/v2/") || !strings.HasSuffix(s, "x-team=build") {
			t.Errorf("request %q not below the API root /mirror/v2 with the host's header", s)
		}
	}
}
