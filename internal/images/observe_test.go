package images

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/remote"
)

func TestFailureReasonSortsRemoteErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("pull x: %w", context.Canceled), "canceled"},
		{fmt.Errorf("pull x: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("fetch: %w", remote.ErrStalled), "timeout"},
		{fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: timeoutError{}}), "timeout"},
		{fmt.Errorf("resolve x: %w", &remote.Error{StatusCode: 401}), "unauthorized"},
		{fmt.Errorf("resolve x: %w", &remote.Error{StatusCode: 403}), "unauthorized"},
		{fmt.Errorf("resolve x: %w", &remote.Error{StatusCode: 404}), "not_found"},
		{fmt.Errorf("no manifest for platform linux/s390x: %w", errdefs.ErrNotFound), "not_found"},
		{fmt.Errorf("push: layer sha256:ab: %w", errMissingContent), "missing_content"},
		{fmt.Errorf("verify sha256:ab: digest mismatch: content has sha256:cd: %w", errdefs.ErrFailedPrecondition), "digest_mismatch"},
		{fmt.Errorf("commit ingest ref \"r\": expected size 3, got 2: %w", errdefs.ErrFailedPrecondition), "digest_mismatch"},
		{fmt.Errorf("unpack layer 0: its uncompressed digest is sha256:a but the image config says sha256:b: %w", errdefs.ErrFailedPrecondition), "digest_mismatch"},
		{fmt.Errorf("registry r: manifest m is 5000000 bytes, over the 4 MiB manifest size limit: %w", errdefs.ErrInvalidArgument), "too_large"},
		{fmt.Errorf("unpack layer 0: usr/big: exceeds Limits.MaxBytes (10): %w", errdefs.ErrInvalidArgument), "too_large"},
		{fmt.Errorf("manifest has unsupported media type: %w", errdefs.ErrNotImplemented), "unsupported"},
		{fmt.Errorf("resolve x: %w", &remote.Error{StatusCode: 503}), "network"},
		{fmt.Errorf("registry r: connection refused: %w", errdefs.ErrUnavailable), "network"},
		{fmt.Errorf("image config: bad json: %w", errdefs.ErrInvalidArgument), "other"},
	} {
		got := FailureReason(tc.err)
		if got != tc.want {
			t.Errorf("FailureReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
		if !slices.Contains(FailureReasons, got) {
			t.Errorf("FailureReason(%v) = %q, not one of FailureReasons", tc.err, got)
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
