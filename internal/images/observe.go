package images

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
)

// Observer records pulls and pushes (metrics.Metrics). op is OpPull or
// OpPush; reason is "" for a transfer that succeeded, else one of
// FailureReasons. Its methods are called from many goroutines at once.
type Observer interface {
	// TransferStarted counts a transfer in flight until TransferFinished.
	TransferStarted(op string)
	// TransferBytes adds n bytes fetched from or uploaded to a registry.
	TransferBytes(op string, n int64)
	// TransferFinished records a transfer's duration and outcome.
	TransferFinished(op string, d time.Duration, reason string)
}

// The transfers an Observer sees.
const (
	OpPull = "pull"
	OpPush = "push"
)

// FailureReasons are the reasons a transfer fails, as FailureReason gives
// them: a small fixed set, fit for a metric label.
var FailureReasons = []string{
	"canceled", "timeout", "unauthorized", "not_found", "digest_mismatch",
	"too_large", "unsupported", "missing_content", "network", "other",
}

// FailureReason sorts a pull's or push's error into one of FailureReasons:
//
//	canceled         the caller gave up (context canceled)
//	timeout          a deadline passed, or a transfer stalled
//	unauthorized     the registry answered 401 or 403
//	not_found        no such image, tag, platform or blob
//	digest_mismatch  bytes did not match their digest or size
//	too_large        a manifest or layer over a size limit
//	unsupported      a media type or feature berth does not handle
//	missing_content  a push or create found a blob missing locally
//	network          the registry was unreachable or answered 5xx
//	other            anything else
func FailureReason(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, remote.ErrStalled),
		errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case remote.IsUnauthorized(err):
		return "unauthorized"
	case errors.Is(err, errdefs.ErrNotFound):
		return "not_found"
	case errors.Is(err, errMissingContent):
		return "missing_content"
	case errors.Is(err, errdefs.ErrFailedPrecondition) && mentions(err, "digest", "truncated", "more than the expected", "expected size"):
		return "digest_mismatch"
	case mentions(err, "limit", "exceeds Limits."):
		return "too_large"
	case errors.Is(err, errdefs.ErrNotImplemented):
		return "unsupported"
	case errors.Is(err, errdefs.ErrUnavailable), errors.As(err, &netErr):
		return "network"
	}
	return "other"
}

func mentions(err error, words ...string) bool {
	msg := err.Error()
	for _, w := range words {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// track counts one transfer of kind op as started and returns the
// function that records its end with its error.
func (cfg *Config) track(op string) func(err error) {
	if cfg.Observer == nil {
		return func(error) {}
	}
	start := time.Now()
	cfg.Observer.TransferStarted(op)
	return func(err error) {
		reason := ""
		if err != nil {
			reason = FailureReason(err)
		}
		cfg.Observer.TransferFinished(op, time.Since(start), reason)
	}
}

// transferred counts n bytes moved by a transfer of kind op.
func (cfg *Config) transferred(op string, n int64) {
	if cfg.Observer != nil && n > 0 {
		cfg.Observer.TransferBytes(op, n)
	}
}
