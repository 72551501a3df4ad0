package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRoundTripKeepsKindAndMessage(t *testing.T) {
	kinds := []error{ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrFailedPrecondition,
		ErrConflict, ErrUnavailable, ErrNotImplemented, context.Canceled, context.DeadlineExceeded}
	for _, kind := range kinds {
		orig := fmt.Errorf("blob %q: %w", "sha256:abc", kind)
		got := FromGRPC(ToGRPC(orig))
		if !errors.Is(got, kind) {
			t.Errorf("%v: round trip lost the kind: %v", kind, got)
		}
		if got.Error() != orig.Error() {
			t.Errorf("%v: message %q, want %q", kind, got.Error(), orig.Error())
		}
	}
}

func TestToGRPCCodes(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", ErrConflict), codes.Aborted},
		{errors.New("plain"), codes.Unknown},
		{status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
	}
	for _, tt := range tests {
		if got := status.Code(ToGRPC(tt.err)); got != tt.want {
			t.Errorf("ToGRPC(%v) code = %v, want %v", tt.err, got, tt.want)
		}
	}
	if ToGRPC(nil) != nil || FromGRPC(nil) != nil {
		t.Error("nil must stay nil")
	}
}

func TestFromGRPCUnknownCodeKeepsMessage(t *testing.T) {
	err := FromGRPC(status.Error(codes.Internal, "boom"))
	if err.Error() != "boom" {
		t.Fatalf("got %q", err)
	}
}
