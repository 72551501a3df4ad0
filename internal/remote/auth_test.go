package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote/remotetest"
)

func staticCredentials(host string, a Auth) Credentials {
	return CredentialsFunc(func(_ context.Context, h string) (Auth, error) {
		if h == host {
			return a, nil
		}
		return Auth{}, nil
	})
}

// otherChallengeFirst puts a challenge of an unknown scheme, with quoted
// commas and escapes, before the registry's own.
type otherChallengeFirst struct{ http.ResponseWriter }

func (w otherChallengeFirst) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		h := w.Header()
		own := h.Values("WWW-Authenticate")
		h.Set("WWW-Authenticate", `Newauth realm="apps, and more", type=1, title="Login to \"apps\""`)
		for _, v := range own {
			h.Add("WWW-Authenticate", v)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func TestBearerChallengeAmongOthersIsAnswered(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{Auth: remotetest.AuthBearer, Username: "robot", Password: "s3cret"}, 100)
	s.reg.Inject(remotetest.Fault{Path: "/v2/", Action: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		next.ServeHTTP(otherChallengeFirst{w}, r)
	}})
	c, _ := newTestClient(t, Config{Credentials: staticCredentials(s.reg.Host, Auth{Username: "robot", Password: "s3cret"})})
	if _, _, err := c.Resolve(ctx, s.ref); err != nil {
		t.Fatal(err)
	}
	if n := s.reg.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestAnonymousPull(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{}, 100)
	c, _ := newTestClient(t, Config{Credentials: staticCredentials("nobody", Auth{Username: "x", Password: "y"})})
	if _, _, err := c.Resolve(ctx, s.ref); err != nil {
		t.Fatal(err)
	}
	for _, q := range s.reg.Requests() {
		if q.Header.Get("Authorization") != "" {
			t.Errorf("%s %s sent credentials to an anonymous registry", q.Method, q.Path)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	s := seed(t, remotetest.Options{Auth: remotetest.AuthBasic, Username: "robot", Password: "s3cret"}, 100)

	t.Run("good password from docker config", func(t *testing.T) {
		ctx := testContext(t)
		p := filepath.Join(t.TempDir(), "config.json")
		d := DockerConfigCredentials(p)
		if err := d.Save(ctx, s.reg.Host, Auth{Username: "robot", Password: "s3cret"}); err != nil {
			t.Fatal(err)
		}
		c, _ := newTestClient(t, Config{Credentials: d})
		if _, _, err := c.Resolve(ctx, s.ref); err != nil {
			t.Fatal(err)
		}
		rc, err := c.Fetch(ctx, s.ref, s.layer)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, rc)
	})

	for _, creds := range []Credentials{staticCredentials(s.reg.Host, Auth{Username: "robot", Password: "wrong"}), nil} {
		t.Run(fmt.Sprintf("refused with %T", creds), func(t *testing.T) {
			ctx := testContext(t)
			c, slept := newTestClient(t, Config{Credentials: creds})
			_, _, err := c.Resolve(ctx, s.ref)
			if !IsUnauthorized(err) || !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), "unauthorized (401)") || !strings.Contains(err.Error(), "registry "+s.reg.Host) {
				t.Errorf("%q does not say unauthorized naming the registry", err)
			}
			if len(slept.all()) != 0 {
				t.Errorf("retried a 401: %v", slept.all())
			}
		})
	}
}

func TestBearerAuth(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{Auth: remotetest.AuthBearer, Username: "robot", Password: "s3cret"}, 100)
	c, _ := newTestClient(t, Config{Credentials: staticCredentials(s.reg.Host, Auth{Username: "robot", Password: "s3cret"})})

	if _, _, err := c.Resolve(ctx, s.ref); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			rc, err := c.Fetch(ctx, s.ref, s.layer)
			if err != nil {
				t.Error(err)
				return
			}
			readAll(t, rc)
		})
	}
	wg.Wait()
	if n := s.reg.TokenRequests(); n != 1 {
		t.Errorf("%d token requests for one scope, want 1", n)
	}
	if _, err := c.Copy(ctx, s.ref, mustParse(t, s.reg.Host+"/library/other:1")); err != nil {
		t.Fatal(err)
	}
	if n := s.reg.TokenRequests(); n != 3 {
		t.Errorf("%d token requests after a push, want 3 (pull on app, push on other, push on other with a mount from app)", n)
	}

	bad, _ := newTestClient(t, Config{Credentials: staticCredentials(s.reg.Host, Auth{Username: "robot", Password: "nope"})})
	_, _, err := bad.Resolve(ctx, s.ref)
	if !IsUnauthorized(err) || !strings.Contains(err.Error(), "registry "+s.reg.Host+": get token") || !strings.Contains(err.Error(), "unauthorized (401)") {
		t.Errorf("bad password: %v", err)
	}
}

func TestBearerTokenReplacedWhenRefused(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{Auth: remotetest.AuthBearer}, 100)
	c, _ := newTestClient(t, Config{})
	if _, _, err := c.Resolve(ctx, s.ref); err != nil {
		t.Fatal(err)
	}
	// A token the registry stopped accepting (expired or revoked) is
	// replaced after one 401.
	s.reg.RevokeTokens()
	if _, _, err := c.Resolve(ctx, s.ref); err != nil {
		t.Fatal(err)
	}
	if n := s.reg.TokenRequests(); n != 2 {
		t.Errorf("%d token requests after revocation, want 2", n)
	}

	// An upload refused that way is sent again with its body.
	push := func(data []byte) {
		t.Helper()
		desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
		err := c.Push(ctx, s.ref, desc, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !s.reg.HasBlob("library/app", desc.Digest) {
			t.Errorf("blob %s not stored", desc.Digest)
		}
	}
	push([]byte("first"))
	s.reg.Inject(remotetest.Fault{Method: http.MethodPost, Path: "/blobs/uploads/", Times: 1, Action: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		next.ServeHTTP(w, r)
		s.reg.RevokeTokens() // the PUT that follows is refused
	}})
	push([]byte("second, after the token was revoked"))
	if n := s.reg.TokenRequests(); n != 4 {
		t.Errorf("%d token requests, want 4 (pull, pull again, push, push again)", n)
	}
	for _, q := range s.reg.Requests() {
		if q.Header.Get("Authorization") == "" && q.Path != "/v2/" {
			t.Errorf("%s %s sent without a token", q.Method, q.Path)
		}
	}
}

func TestBearerIdentityToken(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{Auth: remotetest.AuthBearer, Username: "robot", Password: "pw", RefreshToken: "refresh-me"}, 100)
	c, _ := newTestClient(t, Config{Credentials: staticCredentials(s.reg.Host, Auth{IdentityToken: "refresh-me"})})
	if _, _, err := c.Resolve(ctx, s.ref); err != nil {
		t.Fatal(err)
	}
}

func TestLogin(t *testing.T) {
	ctx := testContext(t)
	for _, mode := range []remotetest.AuthMode{remotetest.AuthBasic, remotetest.AuthBearer} {
		reg := remotetest.New(t, remotetest.Options{Auth: mode, Username: "robot", Password: "s3cret"})
		c, _ := newTestClient(t, Config{})
		if err := c.Login(ctx, reg.Host, Auth{Username: "robot", Password: "s3cret"}); err != nil {
			t.Errorf("mode %d: good login: %v", mode, err)
		}
		err := c.Login(ctx, reg.Host, Auth{Username: "robot", Password: "wrong"})
		if !IsUnauthorized(err) || !strings.Contains(err.Error(), "log in to "+reg.Host) {
			t.Errorf("mode %d: bad login: %v", mode, err)
		}
	}
}

func TestHostsFileCredentialsStayWithTheirMirror(t *testing.T) {
	ctx := testContext(t)
	up := seed(t, remotetest.Options{Auth: remotetest.AuthBearer, Username: "upstream-user", Password: "up"}, 100)
	mirror := remotetest.New(t, remotetest.Options{Auth: remotetest.AuthBasic, Username: "mirror-user", Password: "m"})
	mirror.PushImage(t, "library/app:1", remotetest.RandomImage(t, 1, 10))
	mirror.PutBlob(t, "library/app", up.data)

	var mu sync.Mutex
	var asked []string
	creds := CredentialsFunc(func(_ context.Context, host string) (Auth, error) {
		mu.Lock()
		asked = append(asked, host)
		mu.Unlock()
		if host == "registry.test" {
			return Auth{Username: "upstream-user", Password: "up"}, nil
		}
		return Auth{}, nil
	})
	c, _, ref := mirroredClient(t, up.reg, Config{Credentials: creds},
		fmt.Sprintf("[host.%q]\ncapabilities = [\"pull\"]\nusername = \"mirror-user\"\npassword = \"m\"", mirror.URL))
	if _, _, err := c.Resolve(ctx, ref); err != nil { // upstream: resolve is not the mirror's
		t.Fatal(err)
	}
	rc, err := c.Fetch(ctx, ref, up.layer) // mirror, with its own credentials
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, rc)
	if up.reg.Count(http.MethodGet, "/blobs/") != 0 {
		t.Errorf("upstream served the blob, not the mirror")
	}
	if mirror.Requests()[len(mirror.Requests())-1].Header.Get("Authorization") == "" {
		t.Errorf("mirror credentials not sent")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range asked {
		if h != "registry.test" {
			t.Errorf("credentials asked for %q", h)
		}
	}
	for _, q := range mirror.Requests() {
		if strings.HasPrefix(q.Header.Get("Authorization"), "Bearer ") {
			t.Errorf("upstream token sent to the mirror")
		}
	}
}

func TestCredentialsErrorAbortsRequest(t *testing.T) {
	ctx := testContext(t)
	s := seed(t, remotetest.Options{Auth: remotetest.AuthBasic, Username: "u", Password: "p"}, 100)
	boom := fmt.Errorf("keychain locked: %w", errdefs.ErrUnavailable)
	c, _ := newTestClient(t, Config{Credentials: CredentialsFunc(func(context.Context, string) (Auth, error) { return Auth{}, boom })})
	_, _, err := c.Resolve(ctx, s.ref)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "credentials for "+s.reg.Host) {
		t.Errorf("err = %v", err)
	}
}
