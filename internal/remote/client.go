package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/log"
)

// Config configures a Client. The zero value is usable: hosts.toml files
// from DefaultHostsDir, anonymous access, default retry and stall policies,
// monolithic uploads.
type Config struct {
	// HostsDir holds <registry>/hosts.toml files; "" means DefaultHostsDir.
	// A directory that does not exist means no configuration.
	HostsDir string
	// Credentials supplies credentials per host; nil means anonymous
	// (except where hosts.toml sets credentials).
	Credentials Credentials
	// UserAgent starts the User-Agent of every request, which
	// go-containerregistry's version follows; "" means "berth".
	UserAgent string
	Retry     RetryPolicy
	Stall     StallPolicy
	// ChunkSize, when positive, makes Push upload blobs larger than it in
	// chunks of this many bytes (each held in memory for a retry); 0 means
	// one monolithic PUT per blob.
	ChunkSize int64
}

// RetryPolicy says how often and how long a Client retries one host before
// failing over to the next. Retries happen on 429, 500, 502, 503, 504 and
// on connections reset or closed mid-request; a refused connection, a TLS
// error or a stall fails over at once.
type RetryPolicy struct {
	Attempts      int           // retries per host after the first try; 0 means 3, negative means none
	Initial       time.Duration // first backoff; 0 means 200ms. Backoff doubles, with jitter
	Max           time.Duration // longest backoff; 0 means 10s
	MaxRetryAfter time.Duration // longest 429 Retry-After honoured; 0 means 60s; longer ones fail over
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	switch {
	case p.Attempts == 0:
		p.Attempts = 3
	case p.Attempts < 0:
		p.Attempts = 0
	}
	if p.Initial <= 0 {
		p.Initial = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 10 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 60 * time.Second
	}
	return p
}

// Client talks to registries through the hosts configured for them. It is
// safe for concurrent use by any number of goroutines: pulls of many blobs
// share its connections and its authenticated transports (with their
// bearer tokens). Readers it returns are for one goroutine each.
type Client struct {
	hosts     *hostsConfig
	creds     Credentials
	userAgent string
	retry     RetryPolicy
	stall     StallPolicy
	chunkSize int64

	mu        sync.Mutex
	endpoints map[string]*endpoint // by HostPlan.URL

	// Seams for tests in this package.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Client for cfg. It does no I/O.
func New(cfg Config) *Client {
	dir := cfg.HostsDir
	if dir == "" {
		dir = DefaultHostsDir
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "berth"
	}
	return &Client{
		hosts:     newHostsConfig(dir),
		creds:     cfg.Credentials,
		userAgent: ua,
		retry:     cfg.Retry.withDefaults(),
		stall:     cfg.Stall.withDefaults(),
		chunkSize: cfg.ChunkSize,
		endpoints: map[string]*endpoint{},
		now:       time.Now,
		sleep:     sleepCtx,
	}
}

// Close releases idle connections. Readers still open keep working.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ep := range c.endpoints {
		ep.tr.CloseIdleConnections()
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Explain returns the hosts that would be tried for ref with capability,
// in order, with their TLS settings and where their credentials come from.
// It reads the hosts configuration and asks the Credentials (which may run
// a credential helper) but contacts no registry.
func (c *Client) Explain(ctx context.Context, ref Reference, capability Capability) ([]HostPlan, error) {
	plans, err := c.hostsFor(ctx, ref.Registry, capability)
	if err != nil {
		return nil, err
	}
	for i := range plans {
		p := &plans[i]
		if p.auth != nil {
			continue
		}
		p.Credentials = CredentialsNone
		a, err := c.credentials(ctx, *p, request{})
		if err != nil {
			return nil, fmt.Errorf("explain %q: %w", ref.String(), err)
		}
		if !a.IsZero() {
			p.Credentials = CredentialsProvider
		}
	}
	return plans, nil
}

// hostsFor returns registry's hosts that have capability, in order.
func (c *Client) hostsFor(ctx context.Context, registry string, capability Capability) ([]HostPlan, error) {
	all, err := c.hosts.plans(ctx, registry)
	if err != nil {
		return nil, err
	}
	var plans []HostPlan
	for _, p := range all {
		if p.Capabilities&capability == capability {
			plans = append(plans, p)
		}
	}
	if len(plans) == 0 {
		src := "built-in defaults"
		if all[0].Source != "" {
			src = all[0].Source
		}
		return nil, fmt.Errorf("registry %s: no host has the %s capability (hosts from %s): %w", registry, capability, src, errdefs.ErrFailedPrecondition)
	}
	return plans, nil
}

// request is one registry API call, relative to a host's API root.
type request struct {
	method string
	path   string   // below the API root, e.g. "/library/busybox/manifests/latest"
	abs    *url.URL // absolute URL (upload locations, next pages); overrides path
	query  url.Values
	header http.Header
	body   func() (io.ReadCloser, error) // nil: no body; called again for each retry
	size   int64                         // body length; -1 when unknown
	scopes []string                      // bearer token scopes
	auth   *Auth                         // overrides the credentials lookup
}

func (rq request) url(p HostPlan) *url.URL {
	if rq.abs != nil {
		return rq.abs
	}
	u := *p.base
	u.Path = strings.TrimSuffix(u.Path, "/") + rq.path
	u.RawPath = ""
	if len(rq.query) > 0 {
		u.RawQuery = rq.query.Encode()
	}
	return &u
}

// failover runs fn on each host in order until one succeeds. The error is
// the last host's (registries listed last are the authoritative upstream),
// noting what earlier hosts said; op names the operation.
func (c *Client) failover(ctx context.Context, op string, hosts []HostPlan, fn func(i int, p HostPlan) error) error {
	var earlier []string
	for i, p := range hosts {
		err := fn(i, p)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || i == len(hosts)-1 {
			if len(earlier) > 0 && ctx.Err() == nil {
				return fmt.Errorf("%s: %w (earlier hosts: %s)", op, err, strings.Join(earlier, "; "))
			}
			return fmt.Errorf("%s: %w", op, err)
		}
		level := slog.LevelWarn
		if errdefs.IsNotFound(err) {
			level = slog.LevelDebug
		}
		log.G(ctx).Log(ctx, level, "registry host failed, trying the next one", "host", p.Host, "next_host", hosts[i+1].Host, "error", err)
		earlier = append(earlier, err.Error())
	}
	return fmt.Errorf("%s: no hosts: %w", op, errdefs.ErrFailedPrecondition)
}

// do sends rq to host p, retrying with backoff on 429, 5xx and transient
// connection errors. These are the only retries: go-containerregistry's
// retrying transport is not used, so they are not multiplied. It returns a
// 2xx response (the caller closes its body) or an error: *Error for other
// statuses.
func (c *Client) do(ctx context.Context, p HostPlan, rq request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, p, rq)
		var wait time.Duration
		if err == nil {
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return resp, nil
			}
			if resp.StatusCode == http.StatusTooManyRequests {
				wait = retryAfter(resp.Header.Get("Retry-After"), c.now())
			}
			err = newError(p.Host, resp)
		}
		if ctx.Err() != nil || !retryable(err) {
			return nil, err
		}
		if wait > c.retry.MaxRetryAfter {
			return nil, fmt.Errorf("%w (Retry-After %s is over the %s limit)", err, wait, c.retry.MaxRetryAfter)
		}
		if attempt >= c.retry.Attempts {
			return nil, err
		}
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		log.G(ctx).Debug("retrying registry request", "host", p.Host, "attempt", attempt+1, "wait", wait, "error", err)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// retryable reports whether a failed request is worth retrying on the same
// host: the registry (or its token service) answered 429, 500, 502, 503 or
// 504, or the connection broke (isTransient).
func retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		switch e.StatusCode {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	return isTransient(err)
}

// backoff is the wait before retry number attempt+1: Initial doubled per
// attempt, capped at Max, with jitter in [d/2, d).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.Initial << min(attempt, 30)
	if d <= 0 || d > c.retry.Max {
		d = c.retry.Max
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After value (seconds or an HTTP date); 0 when
// absent or unparseable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// send makes one attempt of rq through p's authenticated transport, which
// answers a bearer challenge by fetching a new token and sending the
// request once more. A 401 that stands, or a token service refusing,
// drops the transport so that the next attempt starts afresh.
func (c *Client) send(ctx context.Context, p HostPlan, rq request) (*http.Response, error) {
	rt, forget, err := c.authTransport(ctx, p, rq)
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(p, rq)
	if err != nil {
		return nil, err
	}
	resp, err := c.roundTrip(ctx, rt, p, req)
	var e *Error
	if (err == nil && resp.StatusCode == http.StatusUnauthorized) || errors.As(err, &e) {
		forget()
	}
	return resp, err
}

func (c *Client) newRequest(p HostPlan, rq request) (*http.Request, error) {
	var body io.ReadCloser
	if rq.body != nil && rq.size != 0 {
		b, err := rq.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	req, err := http.NewRequest(rq.method, rq.url(p).String(), body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, fmt.Errorf("registry %s: %w: %w", p.Host, err, errdefs.ErrInvalidArgument)
	}
	if body != nil {
		req.ContentLength = rq.size
		req.GetBody = rq.body
	}
	for k, vs := range p.Header {
		req.Header[k] = vs
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	return req, nil
}

// roundTrip sends req through rt under the stall detector. The response
// body, if any, must be closed; closing it releases the request's context.
func (c *Client) roundTrip(ctx context.Context, rt http.RoundTripper, p HostPlan, req *http.Request) (*http.Response, error) {
	actx, cancel := context.WithCancelCause(ctx)
	m := newMeter(c.stall, func() { cancel(stallError(p.Host, c.stall)) })
	req = req.WithContext(actx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &countingBody{rc: req.Body, m: m}
		if gb := req.GetBody; gb != nil {
			req.GetBody = func() (io.ReadCloser, error) {
				b, err := gb()
				if err != nil {
					return nil, err
				}
				return &countingBody{rc: b, m: m}, nil
			}
		}
	}
	m.begin()
	resp, err := (&http.Client{Transport: rt}).Do(req)
	m.endRequest()
	if err != nil {
		m.stop()
		cause := context.Cause(actx)
		cancel(nil)
		if errors.Is(cause, ErrStalled) {
			return nil, cause
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, authError(p, err)
	}
	resp.Body = &meteredBody{rc: resp.Body, m: m, ctx: actx, cancel: cancel}
	return resp, nil
}

// isTransient reports whether a request error is worth retrying on the
// same host: a reset or closed connection or a timeout, but not a refused
// connection (the host is down), a TLS failure or a stall.
func isTransient(err error) bool {
	if errors.Is(err, ErrStalled) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var certErr *tls.CertificateVerificationError
	var uaErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &uaErr) || errors.As(err, &hostErr) {
		return false
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// endpoint is one host's connections and the authenticated transports
// built on them.
type endpoint struct {
	key  string            // the settings and certificate file times it was built from
	tr   *http.Transport   // connections
	base http.RoundTripper // tr for go-containerregistry: hostTransport, sending the User-Agent

	mu   sync.Mutex
	auth map[authKey]*authEntry
}

// endpoint returns p's endpoint. A new one, with new connections and no
// authenticated transports, replaces it when p's settings or certificate
// files change, so hosts.toml edits take effect on the next request.
func (c *Client) endpoint(p HostPlan) (*endpoint, error) {
	key := endpointKey(p)
	c.mu.Lock()
	ep, ok := c.endpoints[p.URL]
	c.mu.Unlock()
	if ok && ep.key == key {
		return ep, nil
	}
	tr, err := newTransport(p)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.endpoints[p.URL]; ok {
		if cur.key == key { // another request was first
			tr.CloseIdleConnections()
			return cur, nil
		}
		cur.tr.CloseIdleConnections()
	}
	ep = &endpoint{
		key:  key,
		tr:   tr,
		base: transport.NewUserAgent(newHostTransport(p, tr), c.userAgent),
		auth: map[authKey]*authEntry{},
	}
	c.endpoints[p.URL] = ep
	return ep, nil
}

func endpointKey(p HostPlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "skip=%t fallback=%t header=%v", p.SkipVerify, p.HTTPFallback, p.Header)
	stamp := func(f string) {
		fmt.Fprintf(&b, " %q", f)
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "@%d/%d", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	for _, f := range p.CAs {
		stamp(f)
	}
	for _, cc := range p.ClientCerts {
		stamp(cc.Cert)
		stamp(cc.Key)
	}
	return b.String()
}

func newTransport(p HostPlan) (*http.Transport, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: p.SkipVerify} //nolint:gosec // an explicit hosts.toml choice
	if len(p.CAs) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, f := range p.CAs {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("hosts file %q: ca: %w: %w", p.Source, err, errdefs.ErrInvalidArgument)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("hosts file %q: ca: %q holds no PEM certificate: %w", p.Source, f, errdefs.ErrInvalidArgument)
			}
		}
		cfg.RootCAs = pool
	}
	for _, cc := range p.ClientCerts {
		key := cc.Key
		if key == "" {
			key = cc.Cert
		}
		cert, err := tls.LoadX509KeyPair(cc.Cert, key)
		if err != nil {
			return nil, fmt.Errorf("hosts file %q: client: %w: %w", p.Source, err, errdefs.ErrInvalidArgument)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       cfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}, nil
}

// apiRoot is the path of p's API root, ending in "/".
func apiRoot(p HostPlan) string {
	return strings.TrimSuffix(p.base.Path, "/") + "/"
}

// hostTransport carries the requests of go-containerregistry's
// authenticating transport, which knows a registry only by its host name,
// to the host of one HostPlan:
//
//   - Requests for the host use the plan's scheme. go-containerregistry's
//     ping also tries http for loopback and private addresses, which must
//     not downgrade a host configured as https. A loopback host without
//     configuration (HTTPFallback) is tried over https and falls back to
//     plain http once it answers TLS with HTTP, as containerd and Docker do;
//     that is remembered per host.
//   - The ping of <host>/v2/ goes to the plan's API root.
//   - The plan's extra headers are added to requests for the host that do
//     not set them.
//   - A request sent again with its body spent (the bearer transport sends a
//     request once more after replacing a refused token) gets a new body
//     from GetBody.
type hostTransport struct {
	base     http.RoundTripper
	host     string
	scheme   string // the plan's: "https" or "http"
	fallback bool   // HTTPFallback
	root     string // apiRoot
	header   http.Header

	mu    sync.Mutex
	plain map[string]bool // hosts found to answer TLS with plain HTTP
}

func newHostTransport(p HostPlan, base http.RoundTripper) *hostTransport {
	return &hostTransport{
		base:     base,
		host:     p.Host,
		scheme:   p.base.Scheme,
		fallback: p.HTTPFallback,
		root:     apiRoot(p),
		header:   p.Header,
		plain:    map[string]bool{},
	}
}

func (t *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if b, ok := req.Body.(*countingBody); ok && b.spent.Load() && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			req.Body.Close()
			return nil, err
		}
		r.Body = body
	}
	if r.URL.Host == t.host {
		if !t.fallback || r.URL.Scheme != "http" {
			r.URL.Scheme = t.scheme
		}
		if r.URL.Path == "/v2/" {
			r.URL.Path, r.URL.RawPath = t.root, ""
		}
		for k, vs := range t.header {
			if _, ok := r.Header[k]; !ok {
				r.Header[k] = slices.Clone(vs)
			}
		}
	}
	if !t.fallback || r.URL.Scheme != "https" {
		return t.base.RoundTrip(r)
	}
	t.mu.Lock()
	plain := t.plain[r.URL.Host]
	t.mu.Unlock()
	hasBody := r.Body != nil && r.Body != http.NoBody
	if !plain {
		resp, err := t.base.RoundTrip(r)
		if err == nil || !answeredPlainHTTP(err) || (hasBody && r.GetBody == nil) {
			return resp, err
		}
		t.mu.Lock()
		t.plain[r.URL.Host] = true
		t.mu.Unlock()
	}
	h := r.Clone(r.Context())
	h.URL.Scheme = "http"
	if hasBody && !plain {
		b, err := r.GetBody()
		if err != nil {
			return nil, err
		}
		h.Body = b
	}
	return t.base.RoundTrip(h)
}

func answeredPlainHTTP(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}
