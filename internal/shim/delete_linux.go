package shim

import (
	"errors"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// ForceDelete kills every process of container id and removes it from the
// runtime whose binary is runtimePath and state directory root. It is for a
// container whose shim died (berth-shim runs it as "berth-shim delete") and
// drives the runtime exactly as the shim does. A container the runtime does
// not know is not an error.
func ForceDelete(runtimePath, root, id string) error {
	rt, err := newOCIRuntime(runtimePath, root, os.TempDir(), spawnAndWait)
	if err != nil {
		return err
	}
	defer rt.close()
	return rt.forceDelete(id)
}

// spawnAndWait starts cmd and waits for it with os/exec, for a process that
// has no reaper.
func spawnAndWait(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	go func() {
		err := cmd.Wait()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			ch <- unix.WaitStatus(255 << 8)
			return
		}
		ch <- unix.WaitStatus(cmd.ProcessState.Sys().(syscall.WaitStatus))
	}()
	return ch, nil
}
