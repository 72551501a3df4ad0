package shim

import (
	"errors"
	"testing"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
)

func TestLifecycle(t *testing.T) {
	const (
		created = shimapi.StatusCreated
		running = shimapi.StatusRunning
		paused  = shimapi.StatusPaused
		stopped = shimapi.StatusStopped
	)
	ok, pre, nf := error(nil), shimapi.ErrFailedPrecondition, shimapi.ErrNotFound
	for _, tc := range []struct {
		from  shimapi.Status
		op    op
		err   error
		after shimapi.Status
	}{
		{created, opStart, ok, running},
		{running, opStart, pre, running},
		{paused, opStart, pre, paused},
		{stopped, opStart, pre, stopped},

		{created, opPause, pre, created},
		{running, opPause, ok, paused},
		{paused, opPause, pre, paused},
		{stopped, opPause, pre, stopped},

		{created, opResume, pre, created},
		{running, opResume, pre, running},
		{paused, opResume, ok, running},
		{stopped, opResume, pre, stopped},

		{created, opKill, ok, created},
		{running, opKill, ok, running},
		{paused, opKill, ok, paused},
		{stopped, opKill, nf, stopped},

		{created, opExec, pre, created},
		{running, opExec, ok, running},
		{paused, opExec, pre, paused},
		{stopped, opExec, pre, stopped},

		{created, opUpdate, ok, created},
		{running, opUpdate, ok, running},
		{paused, opUpdate, ok, paused},
		{stopped, opUpdate, pre, stopped},

		{created, opDelete, ok, created},
		{running, opDelete, pre, running},
		{paused, opDelete, pre, paused},
		{stopped, opDelete, ok, stopped},
	} {
		err := allowed(tc.from, tc.op)
		if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s on %s: error %v, want %v", tc.op, tc.from, err, tc.err)
		}
		if err == nil {
			if got := after(tc.from, tc.op); got != tc.after {
				t.Errorf("%s on %s: status %s after, want %s", tc.op, tc.from, got, tc.after)
			}
		}
	}
}

// An exit reaped while a runtime call was in flight wins over the call's
// success.
func TestExitWinsOverConcurrentOp(t *testing.T) {
	for _, o := range []op{opStart, opPause, opResume} {
		if got := after(shimapi.StatusStopped, o); got != shimapi.StatusStopped {
			t.Errorf("%s after the exit: %s, want stopped", o, got)
		}
	}
}

func TestValidExecID(t *testing.T) {
	for id, want := range map[string]bool{
		"e1": true, "probe-1.2_x": true, "A": true,
		"": false, ".hidden": false, "-x": false, "a/b": false, "a b": false, "é": false,
		"0123456789012345678901234567890123456789012345678901234567890123":  true,
		"01234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if got := validExecID(id); got != want {
			t.Errorf("validExecID(%q) = %v, want %v", id, got, want)
		}
	}
}
