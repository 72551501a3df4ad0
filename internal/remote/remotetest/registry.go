// Package remotetest runs real, in-process OCI registries for tests of
// package remote and its users: go-containerregistry's registry on an
// httptest server on loopback, with repository-scoped blobs and
// cross-repository mounts, optionally behind basic auth or a small bearer
// token service, with fault injection (errors, 429, truncated, tampered,
// slow or HTML answers, ignored Range) and helpers to build and seed test
// images. It must not import package remote, so remote's own tests can use
// it.
package remotetest

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// AuthMode selects how a Registry authenticates clients.
type AuthMode int

// Authentication modes.
const (
	AuthNone   AuthMode = iota // anonymous access
	AuthBasic                  // HTTP basic with Options.Username and Password
	AuthBearer                 // bearer tokens from the registry's /token service
)

// Options configures a Registry. The zero value is an anonymous registry.
type Options struct {
	Auth AuthMode
	// Username and Password are the only credentials accepted (basic), or
	// required by the token service (bearer; empty Username: anonymous
	// tokens).
	Username, Password string
	// RefreshToken, when set, is accepted by the token service as an OAuth2
	// refresh token (identity token) instead of a password.
	RefreshToken string
	// TokenTTL is the lifetime of issued tokens (rounded up to seconds in
	// expires_in); 0 means five minutes.
	TokenTTL time.Duration
	// TLS serves HTTPS with httptest's self-signed certificate (see CAFile).
	TLS bool
	// Logf receives the registry's request log; nil discards it.
	Logf func(format string, args ...any)
}

// Request is one request the registry received (token requests excepted).
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
}

// Registry is a running in-process registry. Its methods are safe for
// concurrent use; New registers its shutdown with t.Cleanup.
type Registry struct {
	URL  string // "http://127.0.0.1:port"
	Host string // "127.0.0.1:port"

	opts  Options
	srv   *httptest.Server
	inner http.Handler // registry without auth or faults
	blobs *blobStore

	mu            sync.Mutex
	requests      []Request
	faults        []*fault
	tokens        map[string]grant
	tokenRequests int
}

// New starts a registry on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB, opts Options) *Registry {
	t.Helper()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	r := &Registry{opts: opts, blobs: &blobStore{m: map[string][]byte{}}, tokens: map[string]grant{}}
	reg := registry.New(
		registry.Logger(stdlog.New(logWriter(logf), "", 0)),
		registry.WithBlobHandler(r.blobs),
	)
	r.inner = r.mounts(reg)
	if opts.TLS {
		r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	} else {
		r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	}
	r.URL = r.srv.URL
	r.Host = strings.TrimPrefix(strings.TrimPrefix(r.srv.URL, "http://"), "https://")
	t.Cleanup(r.srv.Close)
	return r
}

type logWriter func(format string, args ...any)

func (f logWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// CAFile writes the certificate of a TLS registry to a PEM file in a
// temporary directory and returns its path, for hosts.toml's ca key.
func (r *Registry) CAFile(t testing.TB) string {
	t.Helper()
	if r.srv.Certificate() == nil {
		t.Fatal("remotetest: CAFile of a registry without TLS")
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Close stops the registry at once (for tests of an unreachable host).
func (r *Registry) Close() { r.srv.Close() }

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/token" {
		r.serveToken(w, req)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery, Header: req.Header.Clone()})
	var action Action
	for _, f := range r.faults {
		if f.active() && f.matches(req) {
			action = f.Action
			f.used++
			break
		}
	}
	r.mu.Unlock()
	next := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.authorized(w, req) {
			r.inner.ServeHTTP(w, req)
		}
	})
	if action != nil {
		action(w, req, next)
		return
	}
	next.ServeHTTP(w, req)
}

// Requests returns the requests received so far, oldest first.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Count returns how many requests had method (any if "") and a path
// containing pathPart.
func (r *Registry) Count(method, pathPart string) int {
	n := 0
	for _, q := range r.Requests() {
		if (method == "" || q.Method == method) && strings.Contains(q.Path, pathPart) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the requests received so far.
func (r *Registry) ResetRequests() {
	r.mu.Lock()
	r.requests = nil
	r.mu.Unlock()
}

// mounts adds cross-repository mounts (POST …/blobs/uploads/?mount=D&from=R)
// to the registry, which go-containerregistry's does not implement: a blob
// present in R is linked into the target repository and 201 returned.
func (r *Registry) mounts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		mount, from := q.Get("mount"), q.Get("from")
		if req.Method == http.MethodPost && mount != "" && from != "" && strings.HasSuffix(strings.TrimSuffix(req.URL.Path, "/"), "/blobs/uploads") {
			repo := strings.TrimPrefix(strings.TrimSuffix(strings.TrimSuffix(req.URL.Path, "/"), "/blobs/uploads"), "/v2/")
			if r.blobs.link(from, repo, mount) {
				w.Header().Set("Location", "/v2/"+repo+"/blobs/"+mount)
				w.Header().Set("Docker-Content-Digest", mount)
				w.WriteHeader(http.StatusCreated)
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// blobStore keeps blobs per repository, unlike the registry's default
// store, so that HEAD, GET and mounts behave as in a real registry.
type blobStore struct {
	mu sync.Mutex
	m  map[string][]byte // repo + "@" + digest
}

// repoName undoes a quirk of the registry: uploads finish at
// /v2/<repo>/blobs/uploads/<id>, which it reports as repository
// "<repo>/blobs".
func repoName(repo string) string { return strings.TrimSuffix(repo, "/blobs") }

func (b *blobStore) Get(_ context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[repoName(repo)+"@"+h.String()]
	if !ok {
		return nil, registry.ErrNotFound
	}
	return readSeekCloser{bytes.NewReader(data)}, nil
}

func (b *blobStore) Stat(_ context.Context, repo string, h v1.Hash) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[repoName(repo)+"@"+h.String()]
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(data)), nil
}

func (b *blobStore) Put(_ context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.m[repoName(repo)+"@"+h.String()] = data
	b.mu.Unlock()
	return nil
}

func (b *blobStore) Delete(_ context.Context, repo string, h v1.Hash) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := repoName(repo) + "@" + h.String()
	if _, ok := b.m[key]; !ok {
		return registry.ErrNotFound
	}
	delete(b.m, key)
	return nil
}

func (b *blobStore) link(from, to, dgst string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.m[from+"@"+dgst]
	if ok {
		b.m[to+"@"+dgst] = data
	}
	return ok
}

type readSeekCloser struct{ *bytes.Reader }

func (readSeekCloser) Close() error { return nil }

// HasBlob reports whether repo holds the blob d.
func (r *Registry) HasBlob(repo string, d digest.Digest) bool {
	r.blobs.mu.Lock()
	defer r.blobs.mu.Unlock()
	_, ok := r.blobs.m[repo+"@"+d.String()]
	return ok
}

// call sends a request straight to the registry, past auth and faults.
func (r *Registry) call(t testing.TB, method, target, contentType string, body []byte) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)
	resp := rec.Result()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("remotetest: %s %s: %d %s", method, target, resp.StatusCode, msg)
	}
	return resp
}

// PutBlob stores data as a blob of repo and returns its digest.
func (r *Registry) PutBlob(t testing.TB, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	r.call(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+url.QueryEscape(d.String()), "application/octet-stream", data)
	return d
}

// PutManifest stores body as a manifest of repo under ref (a tag or a
// digest), with the given Content-Type, as is: use it for manifests
// package remote must refuse.
func (r *Registry) PutManifest(t testing.TB, repo, ref, mediaType string, body []byte) digest.Digest {
	t.Helper()
	r.call(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mediaType, body)
	return digest.FromBytes(body)
}

func splitRepoTag(t testing.TB, repoTag string) (repo, tag string) {
	t.Helper()
	i := strings.LastIndexByte(repoTag, ':')
	if i < 0 || i < strings.LastIndexByte(repoTag, '/') {
		t.Fatalf("remotetest: %q is not repository:tag", repoTag)
	}
	return repoTag[:i], repoTag[i+1:]
}
