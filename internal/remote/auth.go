package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Auth is what a registry needs to authenticate a client. The zero value
// means anonymous.
type Auth struct {
	Username string
	Password string
	// IdentityToken is an OAuth2 refresh token, exchanged at the registry's
	// token service for access tokens (Docker's "identitytoken").
	IdentityToken string
	// RegistryToken is a bearer token sent as is (Docker's "registrytoken").
	RegistryToken string
}

// IsZero reports whether a carries no credentials.
func (a Auth) IsZero() bool { return a == Auth{} }

// authenticator turns a into go-containerregistry's Authenticator.
func (a Auth) authenticator() authn.Authenticator {
	if a.IsZero() {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	})
}

// Credentials supplies credentials for a registry host. host is the
// registry's name for its own server ("docker.io", "localhost:5000", even
// when hosts.toml points the server elsewhere) and the mirror's host[:port]
// for a mirror, so a login for a registry is never sent to its mirrors. A
// host without credentials gets the zero Auth and a nil error; an error
// aborts the request. Implementations must be safe for concurrent use.
//
// The Client asks when it first contacts a host for a set of repository
// scopes, and again after that host answers 401, so a changed login takes
// effect without a restart.
type Credentials interface {
	Credentials(ctx context.Context, host string) (Auth, error)
}

// CredentialsFunc adapts a function to Credentials.
type CredentialsFunc func(ctx context.Context, host string) (Auth, error)

// Credentials calls f.
func (f CredentialsFunc) Credentials(ctx context.Context, host string) (Auth, error) {
	return f(ctx, host)
}

// authKey names one authenticated transport of an endpoint.
type authKey struct {
	scopes string // sorted, space-separated
	source string // whom the Credentials are asked for (credentialsKey)
	hosts  Auth   // credentials from hosts.toml, if any
}

// authEntry is an authenticated transport being set up or ready.
type authEntry struct {
	done chan struct{} // closed once rt or err is set
	rt   http.RoundTripper
	err  error
}

// authTransport returns the transport that authenticates rq to host p:
// go-containerregistry's, which pinged the host and, for a bearer
// challenge, holds a token for rq's scopes that it replaces when the
// registry refuses it. Transports are kept per endpoint, scopes and
// credentials; concurrent requests share one set-up. forget drops the
// transport (after a 401), so the next request looks the credentials up
// again. A request with its own credentials (Login) gets a transport of
// its own.
func (c *Client) authTransport(ctx context.Context, p HostPlan, rq request) (http.RoundTripper, func(), error) {
	ep, err := c.endpoint(p)
	if err != nil {
		return nil, nil, err
	}
	if rq.auth != nil {
		rt, err := c.handshake(ctx, p, ep.base, *rq.auth, rq.scopes)
		return rt, func() {}, err
	}
	key := authKey{scopes: strings.Join(slices.Sorted(slices.Values(rq.scopes)), " "), source: credentialsKey(p)}
	if p.auth != nil {
		key.hosts = *p.auth
	}
	for {
		ep.mu.Lock()
		e, ok := ep.auth[key]
		if !ok {
			e = &authEntry{done: make(chan struct{})}
			ep.auth[key] = e
		}
		ep.mu.Unlock()
		forget := func() {
			ep.mu.Lock()
			if ep.auth[key] == e {
				delete(ep.auth, key)
			}
			ep.mu.Unlock()
		}
		if !ok {
			var a Auth
			if a, e.err = c.credentials(ctx, p, rq); e.err == nil {
				e.rt, e.err = c.handshake(ctx, p, ep.base, a, rq.scopes)
			}
			close(e.done)
			if e.err != nil {
				forget()
			}
			return e.rt, forget, e.err
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if (errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			continue // the request setting it up gave up, not this one
		}
		return e.rt, forget, e.err
	}
}

// handshake sets up go-containerregistry's authenticating transport for
// p over base, under the stall detector.
func (c *Client) handshake(ctx context.Context, p HostPlan, base http.RoundTripper, a Auth, scopes []string) (http.RoundTripper, error) {
	var opts []name.Option
	if p.PlainHTTP || p.HTTPFallback {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(p.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w: %w", p.Host, err, errdefs.ErrInvalidArgument)
	}
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	m := newMeter(c.stall, func() { cancel(stallError(p.Host, c.stall)) })
	m.begin()
	rt, err := transport.NewWithContext(hctx, reg, a.authenticator(), base, scopes)
	m.end()
	m.stop()
	if err != nil {
		if cause := context.Cause(hctx); errors.Is(cause, ErrStalled) {
			return nil, cause
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, authError(p, err)
	}
	return rt, nil
}

// authError turns an error of go-containerregistry's transport (the ping,
// or the token service answering) into an *Error. Other errors (network,
// TLS, a malformed challenge) are of kind ErrUnavailable.
func authError(p HostPlan, err error) error {
	var te *transport.Error
	if !errors.As(err, &te) || te.Request == nil {
		return fmt.Errorf("registry %s: %w: %w", p.Host, err, errdefs.ErrUnavailable)
	}
	e := &Error{Host: te.Request.URL.Host, Method: te.Request.Method, Path: te.Request.URL.Path, StatusCode: te.StatusCode}
	for _, d := range te.Errors {
		e.Errors = append(e.Errors, Diagnostic{Code: string(d.Code), Message: d.Message})
	}
	if e.Host == p.Host && e.Path == apiRoot(p) {
		return e // the ping
	}
	return fmt.Errorf("registry %s: get token: %w", p.Host, e)
}

// credentials picks the credentials for host p: an explicit override (rq),
// then hosts.toml, then the caller's Credentials.
func (c *Client) credentials(ctx context.Context, p HostPlan, rq request) (Auth, error) {
	switch {
	case rq.auth != nil:
		return *rq.auth, nil
	case p.auth != nil:
		return *p.auth, nil
	case c.creds == nil:
		return Auth{}, nil
	}
	key := credentialsKey(p)
	a, err := c.creds.Credentials(ctx, key)
	if err != nil {
		return Auth{}, fmt.Errorf("credentials for %s: %w", key, err)
	}
	return a, nil
}

// credentialsKey is the name Credentials are asked for: the registry for
// its server, the mirror's host for a mirror.
func credentialsKey(p HostPlan) string {
	if p.Mirror {
		return p.Host
	}
	return p.Registry
}

// Login checks a against registry's own server (never a mirror) by
// requesting the API root with it, as "docker login" does; it stores
// nothing. An *Error with status 401 means the registry refused a.
func (c *Client) Login(ctx context.Context, registry string, a Auth) error {
	op := fmt.Sprintf("log in to %s", registry)
	plans, err := c.hosts.plans(ctx, registry)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p := plans[len(plans)-1]
	resp, err := c.do(ctx, p, request{method: http.MethodGet, path: "/", auth: &a})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	resp.Body.Close()
	return nil
}

// repositoryScope is the token scope for actions ("pull" or "pull,push") on
// repo.
func repositoryScope(repo, actions string) string {
	return "repository:" + repo + ":" + actions
}
