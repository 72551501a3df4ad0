package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

var (
	// ErrStalled is wrapped by the error of a transfer that the stall
	// detector aborted (see StallPolicy). It is of kind ErrUnavailable.
	ErrStalled = fmt.Errorf("transfer stalled: %w", errdefs.ErrUnavailable)

	// ErrRangeUnsupported is wrapped by FetchRange's error when no host
	// honoured the Range request: the caller must restart from offset 0. It
	// is of kind ErrNotImplemented.
	ErrRangeUnsupported = fmt.Errorf("range request ignored; restart from offset 0: %w", errdefs.ErrNotImplemented)
)

// Error is a registry's answer to a request that did not succeed: the host,
// the request and the HTTP status, with the error codes of the distribution
// spec when the registry sent them. It wraps the errdefs kind of its status:
//
//	400, 416      ErrInvalidArgument
//	401, 403      ErrFailedPrecondition (missing or wrong credentials)
//	404           ErrNotFound
//	405, 501      ErrNotImplemented
//	409           ErrConflict
//	429, 5xx      ErrUnavailable
type Error struct {
	Host       string // host[:port] that answered
	Method     string
	Path       string // request path, without the query
	StatusCode int
	Errors     []Diagnostic // from the JSON error body, if any
}

// Diagnostic is one entry of a registry's JSON error body.
type Diagnostic struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registry %s: %s %s: %s (%d)", e.Host, e.Method, e.Path, statusText(e.StatusCode), e.StatusCode)
	for _, d := range e.Errors {
		b.WriteString(": ")
		b.WriteString(d.Code)
		if d.Message != "" {
			b.WriteString(": " + d.Message)
		}
	}
	return b.String()
}

// Unwrap returns the errdefs kind for the status (nil for unmapped ones).
func (e *Error) Unwrap() error {
	switch s := e.StatusCode; {
	case s == http.StatusBadRequest, s == http.StatusRequestedRangeNotSatisfiable:
		return errdefs.ErrInvalidArgument
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		return errdefs.ErrFailedPrecondition
	case s == http.StatusNotFound:
		return errdefs.ErrNotFound
	case s == http.StatusMethodNotAllowed, s == http.StatusNotImplemented:
		return errdefs.ErrNotImplemented
	case s == http.StatusConflict:
		return errdefs.ErrConflict
	case s == http.StatusTooManyRequests, s >= 500:
		return errdefs.ErrUnavailable
	}
	return nil
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strings.ToLower(t)
	}
	return "unexpected status"
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// newError builds an Error from a failed response and closes its body.
func newError(host string, resp *http.Response) *Error {
	e := &Error{Host: host, Method: resp.Request.Method, Path: resp.Request.URL.Path, StatusCode: resp.StatusCode}
	defer resp.Body.Close()
	if resp.Request.Method == http.MethodHead {
		return e
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var doc struct {
		Errors []Diagnostic `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil {
		e.Errors = doc.Errors
	}
	return e
}

// IsUnauthorized reports whether err carries a registry's 401 or 403: the
// credentials are missing or wrong, and the caller may suggest "berth login".
func IsUnauthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}
