package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

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

// Credentials supplies credentials for a registry host. host is the
// registry's name for its own server ("docker.io", "localhost:5000", even
// when hosts.toml points the server elsewhere) and the mirror's host[:port]
// for a mirror, so a login for a registry is never sent to its mirrors. A
// host without credentials gets the zero Auth and a nil error; an error
// aborts the request. Implementations
// must be safe for concurrent use. The Client asks only when a registry
// challenges it, and again after a 401, so a changed login takes effect
// without a restart.
type Credentials interface {
	Credentials(ctx context.Context, host string) (Auth, error)
}

// CredentialsFunc adapts a function to Credentials.
type CredentialsFunc func(ctx context.Context, host string) (Auth, error)

// Credentials calls f.
func (f CredentialsFunc) Credentials(ctx context.Context, host string) (Auth, error) {
	return f(ctx, host)
}

// authCache remembers, per host, how the host authenticates (learnt from
// its WWW-Authenticate challenge) and the bearer tokens obtained, by scope.
// Safe for concurrent use; concurrent requests for the same token share one
// token request.
type authCache struct {
	mu    sync.Mutex
	hosts map[string]*hostAuth
}

type hostAuth struct {
	scheme  string // "basic" or "bearer"; "" until challenged
	realm   string
	service string
	basic   Auth
	tokens  map[string]*tokenEntry // by scope key
}

type tokenEntry struct {
	done    chan struct{} // closed once value, expires and err are set
	value   string
	expires time.Time
	err     error
}

func newAuthCache() *authCache { return &authCache{hosts: map[string]*hostAuth{}} }

func (a *authCache) host(name string) *hostAuth {
	h := a.hosts[name]
	if h == nil {
		h = &hostAuth{tokens: map[string]*tokenEntry{}}
		a.hosts[name] = h
	}
	return h
}

// authorize adds an Authorization header to req when the host's scheme is
// already known: basic credentials, or a bearer token for rq's scopes
// (fetched now if not cached or about to expire).
func (c *Client) authorize(ctx context.Context, ac *authCache, hc *http.Client, p HostPlan, rq request, req *http.Request) error {
	ac.mu.Lock()
	h := ac.host(p.Host)
	scheme, basic := h.scheme, h.basic
	ac.mu.Unlock()
	switch scheme {
	case "basic":
		req.SetBasicAuth(basic.Username, basic.Password)
	case "bearer":
		tok, err := c.token(ctx, ac, hc, p, rq, rq.scopes, false)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

// challenged handles a 401: it records the host's scheme and gets fresh
// credentials or a fresh token, and returns the scopes the retry must ask
// for (rq's plus any the challenge adds). retry is false when nothing can be
// done (no usable challenge, or basic auth without credentials): the 401
// stands.
func (c *Client) challenged(ctx context.Context, ac *authCache, hc *http.Client, p HostPlan, rq request, resp *http.Response) (scopes []string, retry bool, err error) {
	challenges := parseChallenges(resp.Header.Values("WWW-Authenticate"))
	var ch *challenge
	for _, scheme := range []string{"bearer", "basic"} {
		if i := slices.IndexFunc(challenges, func(c challenge) bool { return c.scheme == scheme }); i >= 0 {
			ch = &challenges[i]
			break
		}
	}
	if ch == nil {
		return nil, false, nil
	}
	if ch.scheme == "basic" {
		creds, err := c.credentials(ctx, p, rq)
		if err != nil || creds.Username == "" {
			return nil, false, err
		}
		ac.mu.Lock()
		h := ac.host(p.Host)
		h.scheme, h.basic = "basic", creds
		ac.mu.Unlock()
		return rq.scopes, true, nil
	}
	realm := ch.params["realm"]
	if realm == "" {
		return nil, false, fmt.Errorf("registry %s: bearer challenge without a realm: %w", p.Host, errBadChallenge)
	}
	scopes = slices.Clone(rq.scopes)
	for _, s := range strings.Fields(ch.params["scope"]) {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	ac.mu.Lock()
	h := ac.host(p.Host)
	h.scheme, h.realm, h.service = "bearer", realm, ch.params["service"]
	ac.mu.Unlock()
	if _, err := c.token(ctx, ac, hc, p, rq, scopes, true); err != nil {
		return nil, false, err
	}
	return scopes, true, nil
}

var errBadChallenge = fmt.Errorf("malformed authentication challenge: %w", errdefs.ErrUnavailable)

// token returns a bearer token for scopes from the cache, or fetches one.
// force skips a cached token (the registry just refused it).
func (c *Client) token(ctx context.Context, ac *authCache, hc *http.Client, p HostPlan, rq request, scopes []string, force bool) (string, error) {
	key := strings.Join(slices.Sorted(slices.Values(scopes)), " ")
	for range 2 {
		ac.mu.Lock()
		h := ac.host(p.Host)
		e := h.tokens[key]
		if e != nil {
			select {
			case <-e.done:
				if e.err == nil && !force && c.now().Before(e.expires) {
					ac.mu.Unlock()
					return e.value, nil
				}
			default:
				// Another request is fetching this token: share its result.
				ac.mu.Unlock()
				select {
				case <-e.done:
				case <-ctx.Done():
					return "", ctx.Err()
				}
				if e.err == nil {
					return e.value, nil
				}
				if errors.Is(e.err, context.Canceled) && ctx.Err() == nil {
					continue // the fetching request gave up, not this one
				}
				return "", e.err
			}
		}
		e = &tokenEntry{done: make(chan struct{})}
		h.tokens[key] = e
		realm, service := h.realm, h.service
		ac.mu.Unlock()

		var ttl time.Duration
		e.value, ttl, e.err = c.fetchToken(ctx, hc, p, rq, realm, service, scopes)
		e.expires = c.now().Add(ttl - min(ttl/10, 10*time.Second))
		close(e.done)
		if e.err != nil {
			ac.mu.Lock()
			if h.tokens[key] == e {
				delete(h.tokens, key)
			}
			ac.mu.Unlock()
		}
		return e.value, e.err
	}
	return "", ctx.Err()
}

// defaultTokenTTL is used when the token service does not say, as in the
// distribution token spec.
const defaultTokenTTL = 60 * time.Second

// fetchToken asks the token service at realm for a token covering scopes:
// a GET with basic credentials (or anonymous), or, with an identity token,
// the OAuth2 refresh-token POST.
func (c *Client) fetchToken(ctx context.Context, hc *http.Client, p HostPlan, rq request, realm, service string, scopes []string) (string, time.Duration, error) {
	creds, err := c.credentials(ctx, p, rq)
	if err != nil {
		return "", 0, err
	}
	if creds.RegistryToken != "" {
		return creds.RegistryToken, time.Hour, nil
	}
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", 0, fmt.Errorf("registry %s: token realm %q is not an http(s) URL: %w", p.Host, realm, errBadChallenge)
	}
	var req *http.Request
	if creds.IdentityToken != "" {
		form := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {creds.IdentityToken},
			"client_id":     {"berth"},
		}
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err = http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return "", 0, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := u.Query()
		if service != "" {
			q.Set("service", service)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		if creds.Username != "" {
			q.Set("account", creds.Username)
		}
		u.RawQuery = q.Encode()
		req, err = http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return "", 0, err
		}
		if creds.Username != "" {
			req.SetBasicAuth(creds.Username, creds.Password)
		}
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.roundTrip(ctx, hc, p.Host, req)
	if err != nil {
		return "", 0, fmt.Errorf("registry %s: get token: %w", p.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("registry %s: get token: %w", p.Host, newError(u.Host, resp))
	}
	defer resp.Body.Close()
	var body struct {
		Token       string    `json:"token"`
		AccessToken string    `json:"access_token"`
		ExpiresIn   int64     `json:"expires_in"`
		IssuedAt    time.Time `json:"issued_at"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", 0, fmt.Errorf("registry %s: token service %s: decode answer: %w", p.Host, u.Host, err)
	}
	tok := body.Token
	if tok == "" {
		tok = body.AccessToken
	}
	if tok == "" {
		return "", 0, fmt.Errorf("registry %s: token service %s answered without a token: %w", p.Host, u.Host, errBadChallenge)
	}
	ttl := defaultTokenTTL
	if body.ExpiresIn > 0 {
		ttl = time.Duration(body.ExpiresIn) * time.Second
	}
	return tok, ttl, nil
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
	resp, err := c.do(ctx, p, request{method: http.MethodGet, path: "/", auth: &a, ac: newAuthCache()})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	resp.Body.Close()
	return nil
}

// challenge is one parsed WWW-Authenticate challenge.
type challenge struct {
	scheme string // lowercase
	params map[string]string
}

// parseChallenges parses WWW-Authenticate header values (RFC 7235): each
// may hold several challenges, each a scheme followed by comma-separated
// key=value or key="quoted value" parameters.
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		s := v
		var cur *challenge
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			tok, rest := scanToken(s)
			if tok == "" {
				break // unparseable: keep what we have
			}
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "=") && cur != nil {
				var val string
				val, rest = scanValue(strings.TrimLeft(rest[1:], " \t"))
				cur.params[strings.ToLower(tok)] = val
				s = rest
				continue
			}
			out = append(out, challenge{scheme: strings.ToLower(tok), params: map[string]string{}})
			cur = &out[len(out)-1]
			s = rest
		}
	}
	return out
}

func scanToken(s string) (tok, rest string) {
	i := strings.IndexFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || r == '=' || r == '"'
	})
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func scanValue(s string) (val, rest string) {
	if !strings.HasPrefix(s, `"`) {
		return scanToken(s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

// repositoryScope is the token scope for actions ("pull" or "pull,push") on
// repo.
func repositoryScope(repo, actions string) string {
	return "repository:" + repo + ":" + actions
}
