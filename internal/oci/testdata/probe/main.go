// Command probe makes the syscalls named by its arguments and prints one
// line per syscall, NAME=RESULT, where RESULT is "ok" or the errno's name.
// The runc tests of package oci run it inside containers to see what the
// seccomp profile and the capabilities let through. Each call is made so
// that, when allowed, it fails harmlessly or changes nothing.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

var checks = map[string]func() error{
	// keyctl(KEYCTL_GET_KEYRING_ID, session keyring, no create).
	"keyctl": func() error {
		_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
		return err
	},
	// ptrace(PTRACE_ATTACH) to a pid that does not exist: ESRCH when allowed.
	"ptrace": func() error { return unix.PtraceAttach(0x3ffffff0) },
	// unshare(0) does nothing when allowed.
	"unshare": func() error { return unix.Unshare(0) },
	// mount on a missing directory: ENOENT when allowed and capable.
	"mount": func() error { return unix.Mount("none", "/nonexistent-probe-dir", "tmpfs", 0, "") },
	// personality(READ_IMPLIES_EXEC), refused by the profile.
	"personality": func() error {
		_, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, 0x0400000, 0, 0)
		return errnoErr(e)
	},
	// personality(0xffffffff) only queries.
	"personality-query": func() error {
		_, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
		return errnoErr(e)
	},
	"vsock": func() error {
		fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	},
	"inet": func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	},
	// clone3 with a zero size: EINVAL when allowed, before anything is cloned.
	"clone3": func() error {
		_, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
		return errnoErr(e)
	},
	// clone(CLONE_NEWUTS) through fork and exec of busybox true.
	"clone-newuts": func() error {
		cmd := exec.Command("/bin/busybox", "true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUTS}
		return cmd.Run()
	},
	// clone without namespace flags.
	"exec": func() error { return exec.Command("/bin/busybox", "true").Run() },
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func main() {
	for _, name := range os.Args[1:] {
		check, ok := checks[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "probe: unknown check %q\n", name)
			os.Exit(2)
		}
		result := "ok"
		if err := check(); err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) {
				result = unix.ErrnoName(errno)
			} else {
				result = err.Error()
			}
		}
		fmt.Printf("%s=%s\n", name, result)
	}
}
