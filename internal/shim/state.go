package shim

import (
	"fmt"

	shimapi "github.com/berth-dev/berth/api/shim/v1"
)

// op is a lifecycle operation on a process, checked against its status
// before the runtime is asked to perform it.
type op int

const (
	opStart  op = iota // start a created process
	opPause            // freeze the container
	opResume           // thaw the container
	opKill             // signal the process
	opExec             // add an exec process (checked on the init)
	opUpdate           // change the container's resources
	opDelete           // remove the process
)

var opNames = [...]string{"start", "pause", "resume", "kill", "exec", "update", "delete"}

func (o op) String() string { return opNames[o] }

// allowed reports whether o may be performed on a process in status s. The
// error wraps the kind the caller sees: ErrNotFound for a signal to a process
// that exited, ErrFailedPrecondition for any other wrong status; callers
// prefix it with the operation and the process.
func allowed(s shimapi.Status, o op) error {
	ok := false
	switch o {
	case opStart:
		ok = s == shimapi.StatusCreated
	case opPause, opExec:
		ok = s == shimapi.StatusRunning
	case opResume:
		ok = s == shimapi.StatusPaused
	case opKill:
		if s == shimapi.StatusStopped {
			return fmt.Errorf("process already exited: %w", shimapi.ErrNotFound)
		}
		ok = true
	case opUpdate:
		ok = s != shimapi.StatusStopped
	case opDelete:
		ok = s == shimapi.StatusStopped || s == shimapi.StatusCreated
	}
	if !ok {
		return fmt.Errorf("process is %s: %w", s, shimapi.ErrFailedPrecondition)
	}
	return nil
}

// after returns the status of a process in status s once o succeeded. An exit
// reaped meanwhile wins: a stopped process stays stopped.
func after(s shimapi.Status, o op) shimapi.Status {
	switch {
	case s == shimapi.StatusStopped:
		return s
	case o == opStart && s == shimapi.StatusCreated:
		return shimapi.StatusRunning
	case o == opPause && s == shimapi.StatusRunning:
		return shimapi.StatusPaused
	case o == opResume && s == shimapi.StatusPaused:
		return shimapi.StatusRunning
	}
	return s
}
