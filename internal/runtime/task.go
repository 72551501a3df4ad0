package runtime

import (
	"context"
	"errors"
	"syscall"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
	"github.com/berth-dev/berth/internal/errdefs"
)

// kill signals the init or an exec; all reaches every process of the task.
func (t *task) kill(ctx context.Context, execID string, sig syscall.Signal, all bool) error {
	if all && execID == "" {
		return fromShim(t.api.KillAll(ctx, sig))
	}
	return fromShim(t.api.Kill(ctx, execID, sig))
}

// wait waits for the init or an exec to exit.
func (t *task) wait(ctx context.Context, execID string) (Exit, error) {
	e, err := t.api.Wait(ctx, execID)
	if err != nil {
		return Exit{}, fromShim(err)
	}
	return exitFromShim(e), nil
}

func exitFromShim(e shimapi.Exit) Exit {
	return Exit{Status: int32(e.Status), ExitedAt: e.ExitedAt, Reason: e.Reason}
}

// shimKinds maps the shim protocol's errors to berth's error kinds.
var shimKinds = []struct{ shim, kind error }{
	{shimapi.ErrNotFound, errdefs.ErrNotFound},
	{shimapi.ErrAlreadyExists, errdefs.ErrAlreadyExists},
	{shimapi.ErrInvalidArgument, errdefs.ErrInvalidArgument},
	{shimapi.ErrFailedPrecondition, errdefs.ErrFailedPrecondition},
	{shimapi.ErrUnavailable, errdefs.ErrUnavailable},
	{shimapi.ErrNotImplemented, errdefs.ErrNotImplemented},
}

// fromShim gives an error from a shim call berth's error kind, keeping its
// message.
func fromShim(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range shimKinds {
		if errors.Is(err, k.shim) {
			return &shimError{err: err, kind: k.kind}
		}
	}
	return err
}

// shimError is a shim's error that also is of one of berth's kinds.
type shimError struct{ err, kind error }

func (e *shimError) Error() string   { return e.err.Error() }
func (e *shimError) Unwrap() []error { return []error{e.err, e.kind} }
