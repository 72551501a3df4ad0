package remotetest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Fault makes the registry misbehave on matching requests. The first
// injected fault that matches a request and has uses left handles it.
type Fault struct {
	Method string // "" matches any method
	// Path matches requests whose path contains it; "" matches every API
	// request except the version check (/v2/) and token requests.
	Path   string
	Times  int // how many matching requests it affects; 0 means all
	Action Action
}

// Action handles a request in place of the registry; next is the registry
// (behind its authentication), for actions that alter its answer.
type Action func(w http.ResponseWriter, r *http.Request, next http.Handler)

type fault struct {
	Fault
	used int
}

func (f *fault) active() bool { return f.Times == 0 || f.used < f.Times }

func (f *fault) matches(r *http.Request) bool {
	if f.Method != "" && f.Method != r.Method {
		return false
	}
	if f.Path == "" {
		return strings.TrimSuffix(r.URL.Path, "/") != "/v2"
	}
	return strings.Contains(r.URL.Path, f.Path)
}

// Inject adds a fault.
func (r *Registry) Inject(f Fault) {
	r.mu.Lock()
	r.faults = append(r.faults, &fault{Fault: f})
	r.mu.Unlock()
}

// ClearFaults removes every fault.
func (r *Registry) ClearFaults() {
	r.mu.Lock()
	r.faults = nil
	r.mu.Unlock()
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

// Status answers with status and a distribution-spec JSON error body.
func Status(status int) Action {
	return func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		writeError(w, status, "UNAVAILABLE", "injected fault")
	}
}

// TooManyRequests answers 429 with the given Retry-After header value.
func TooManyRequests(retryAfter string) Action {
	return func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "slow down")
	}
}

// HTML answers 200 with an HTML page, like a captive portal or a web
// server that is not a registry.
func HTML() Action {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		const page = "<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body>Please log in to the network.</body></html>\n"
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", fmt.Sprint(len(page)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			fmt.Fprint(w, page)
		}
	}
}

// IgnoreRange serves the request as if it had no Range header (200 with
// the whole body).
func IgnoreRange() Action {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		r.Header.Del("Range")
		next.ServeHTTP(w, r)
	}
}

// Truncate lets the registry answer but cuts the connection after the
// first n body bytes; the Content-Length header still promises them all.
func Truncate(n int64) Action {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		next.ServeHTTP(&truncatingWriter{ResponseWriter: w, left: n}, r)
	}
}

type truncatingWriter struct {
	http.ResponseWriter
	left int64
}

func (t *truncatingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) < t.left {
		t.left -= int64(len(p))
		return t.ResponseWriter.Write(p)
	}
	_, _ = t.ResponseWriter.Write(p[:t.left])
	_ = http.NewResponseController(t.ResponseWriter).Flush()
	panic(http.ErrAbortHandler) // drops the connection mid-body
}

// Tamper lets the registry answer but flips the bits of the first body
// byte, keeping the length.
func Tamper() Action {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		next.ServeHTTP(&tamperingWriter{ResponseWriter: w}, r)
	}
}

type tamperingWriter struct {
	http.ResponseWriter
	done bool
}

func (t *tamperingWriter) Write(p []byte) (int, error) {
	if t.done || len(p) == 0 {
		return t.ResponseWriter.Write(p)
	}
	t.done = true
	q := append([]byte(nil), p...)
	q[0] ^= 0xff
	return t.ResponseWriter.Write(q)
}

// Slow lets the registry answer but sends the body chunk bytes at a time,
// one chunk per interval (the headers at once). chunk 0 sends no body at
// all until the client gives up.
func Slow(chunk int, interval time.Duration) Action {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		next.ServeHTTP(&slowWriter{ResponseWriter: w, r: r, chunk: chunk, interval: interval}, r)
	}
}

type slowWriter struct {
	http.ResponseWriter
	r        *http.Request
	chunk    int
	interval time.Duration
}

func (s *slowWriter) WriteHeader(code int) {
	s.ResponseWriter.WriteHeader(code)
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *slowWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(s.chunk, len(p))
		if n > 0 {
			if _, err := s.ResponseWriter.Write(p[:n]); err != nil {
				return written, err
			}
			_ = http.NewResponseController(s.ResponseWriter).Flush()
			written += n
			p = p[n:]
		}
		t := time.NewTimer(s.interval)
		select {
		case <-t.C:
		case <-s.r.Context().Done():
			t.Stop()
			return written, s.r.Context().Err()
		}
	}
	return written, nil
}
