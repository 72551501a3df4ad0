package shim

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// receiveConsole listens on the socket name (relative to the working
// directory, the bundle, so that its length never matters) and returns a
// function that waits for the runtime to send a terminal master over it. The
// caller runs the runtime between the two and must call the returned
// function exactly once; cancel true stops waiting (the runtime failed).
func receiveConsole(name string) (func(cancel bool) (*os.File, error), error) {
	os.Remove(name)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on console socket: %w", err)
	}
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := acceptConsole(l)
		ch <- result{f, err}
	}()
	return func(cancel bool) (*os.File, error) {
		if cancel {
			l.Close()
		}
		res := <-ch
		l.Close()
		if cancel && res.f != nil {
			res.f.Close()
			res.f = nil
		}
		return res.f, res.err
	}, nil
}

// acceptConsole accepts one connection on l and receives a terminal master
// descriptor from it (SCM_RIGHTS). The descriptor is made non-blocking so the
// returned file is served by Go's poller.
func acceptConsole(l *net.UnixListener) (*os.File, error) {
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("accept on console socket: %w", err)
	}
	defer conn.Close()
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive terminal: bad control message (%d, %v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive terminal: want one descriptor, got %d (%v)", len(fds), err)
	}
	unix.CloseOnExec(fds[0])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}
