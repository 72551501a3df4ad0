package errdefs

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var kindCodes = []struct {
	kind error
	code codes.Code
}{
	{ErrNotFound, codes.NotFound},
	{ErrAlreadyExists, codes.AlreadyExists},
	{ErrInvalidArgument, codes.InvalidArgument},
	{ErrFailedPrecondition, codes.FailedPrecondition},
	{ErrConflict, codes.Aborted},
	{ErrUnavailable, codes.Unavailable},
	{ErrNotImplemented, codes.Unimplemented},
}

// ToGRPC converts err into a gRPC status error carrying the code of its kind.
// The message is err's text unchanged. Errors that already are gRPC status
// errors pass through; context errors map to Canceled and DeadlineExceeded;
// anything else becomes Unknown.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		for _, kc := range kindCodes {
			if errors.Is(err, kc.kind) {
				code = kc.code
				break
			}
		}
	}
	return status.Error(code, err.Error())
}

// FromGRPC converts a gRPC status error back into an error wrapping the kind
// that matches its code, keeping the server's message. The returned text is
// the server's message alone, so wrapping it again does not repeat the kind.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	var kind error
	switch st.Code() {
	case codes.Canceled:
		kind = context.Canceled
	case codes.DeadlineExceeded:
		kind = context.DeadlineExceeded
	default:
		for _, kc := range kindCodes {
			if kc.code == st.Code() {
				kind = kc.kind
				break
			}
		}
	}
	if kind == nil {
		return errors.New(st.Message())
	}
	return &remoteError{msg: st.Message(), kind: kind}
}

// remoteError is an error received from the daemon: its text is the daemon's
// message and it matches its kind with errors.Is.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }
