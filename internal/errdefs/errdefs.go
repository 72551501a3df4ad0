// Package errdefs defines the error kinds berth uses across packages and the
// single mapping between those kinds and gRPC status codes.
//
// Packages wrap a kind with context, for example
//
//	fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
//
// and callers test with errors.Is. This package must not import any other
// berth package.
package errdefs

import "errors"

// The error kinds. Each maps to exactly one gRPC code (see ToGRPC).
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrConflict           = errors.New("conflict")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not implemented")
)

// IsNotFound reports whether err is of kind ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsAlreadyExists reports whether err is of kind ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }
