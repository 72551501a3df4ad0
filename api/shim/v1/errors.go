package shim

import (
	"errors"
	"fmt"
)

// Code classifies a failed call. The daemon maps codes to its own error kinds.
type Code string

// The error codes of the protocol.
const (
	CodeNotFound           Code = "not_found"           // no such process, or it is not running
	CodeAlreadyExists      Code = "already_exists"      // exec ID in use
	CodeInvalidArgument    Code = "invalid_argument"    // malformed request
	CodeFailedPrecondition Code = "failed_precondition" // wrong status for the call
	CodeUnavailable        Code = "unavailable"         // shim shutting down or unreachable
	CodeNotImplemented     Code = "not_implemented"     // unknown method
	CodeUnknown            Code = "unknown"             // anything else, e.g. the runtime failed
)

// Sentinel errors, one per code (except CodeUnknown). An *Error matches the
// sentinel of its code with errors.Is, and the shim wraps these to choose the
// code it sends.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not implemented")
)

var codeErrors = []struct {
	code Code
	err  error
}{
	{CodeNotFound, ErrNotFound},
	{CodeAlreadyExists, ErrAlreadyExists},
	{CodeInvalidArgument, ErrInvalidArgument},
	{CodeFailedPrecondition, ErrFailedPrecondition},
	{CodeUnavailable, ErrUnavailable},
	{CodeNotImplemented, ErrNotImplemented},
}

// Error is a failed call as it travels on the wire.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is the sentinel error of e's code.
func (e *Error) Is(target error) bool {
	for _, ce := range codeErrors {
		if ce.code == e.Code {
			return target == ce.err
		}
	}
	return false
}

// ToError converts err into its wire form: the code of the first sentinel it
// wraps (CodeUnknown if none) and its text.
func ToError(err error) *Error {
	var we *Error
	if errors.As(err, &we) {
		return we
	}
	code := CodeUnknown
	for _, ce := range codeErrors {
		if errors.Is(err, ce.err) {
			code = ce.code
			break
		}
	}
	return &Error{Code: code, Message: err.Error()}
}

// unavailablef returns an error of code CodeUnavailable.
func unavailablef(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrUnavailable)...)
}
